"""Large identities: 500 Okta groups do not fit a 4 KB cookie, so they live in the store.

The cookie then only says so; every worker sharing the store sees the whole identity. When that
data is gone (a flushed Redis), the person signs in again instead of being let in without groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import redis.asyncio

from saml_gate.session.sessions import MAX_COOKIE_BYTES
from saml_gate.store import MemoryStore
from tests.conftest import TEST_REDIS_URL
from tests.support import Harness

pytestmark = pytest.mark.anyio

# Names that compress about as badly as real ones: even zlib-compressed they need ~6 KB.
GROUPS = [
    f"{('eng', 'ops', 'sales', 'hr')[i % 4]}-{hashlib.sha256(str(i).encode()).hexdigest()[:12]}"
    for i in range(500)
]
JSON = {"accept": "application/json"}


def big_identity(**extra: list[str]) -> dict[str, list[str]]:
    return {
        "email": ["alice@example.com"],
        "displayName": ["Alice Admin"],
        "groups": GROUPS,
        "department": ["Engineering"],
        **extra,
    }


def session_cookie(response_headers: list[str]) -> str:
    cookie = next(c for c in response_headers if c.startswith("saml_gate_session="))
    return cookie.split(";")[0].split("=", 1)[1]


async def test_500_groups_keep_working_with_the_memory_store(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(authorized_groups=[GROUPS[499]])
    r = await h.login(attributes=big_identity())
    assert r.status_code == 303, r.text
    cookie = session_cookie(r.headers.get_list("set-cookie"))
    assert len(cookie) < MAX_COOKIE_BYTES
    me = (await h.client.get("/saml/session")).json()
    assert me["groups"] == GROUPS and me["attributes"]["department"] == ["Engineering"]
    page = await h.client.get("/private/x", headers=JSON)  # authorized by the 500th group
    assert page.status_code == 200 and page.json()["groups"] == GROUPS
    h.clock.advance(120)  # the refreshed cookie still points at the stored data
    refreshed = await h.client.get("/private/x", headers=JSON)
    assert refreshed.json()["groups"] == GROUPS
    assert len(session_cookie(refreshed.headers.get_list("set-cookie"))) < MAX_COOKIE_BYTES


async def test_small_identities_stay_in_the_cookie(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    await h.login()
    store = h.gate.core.store
    assert isinstance(store, MemoryStore)
    # the assertion, the request, the subject and email indexes: no session data
    assert len(store) == 4


async def test_another_worker_sharing_redis_sees_all_500_groups(
    make_harness: Callable[..., Harness], redis_prefix: str
) -> None:
    first = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    second = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    r = await first.login(attributes=big_identity())
    second.client.cookies.set("saml_gate_session", session_cookie(r.headers.get_list("set-cookie")))
    me = (await second.client.get("/saml/session")).json()
    assert me["groups"] == GROUPS and me["email"] == "alice@example.com"


async def test_lost_session_data_means_signing_in_again_not_entering_without_groups(
    make_harness: Callable[..., Harness], redis_prefix: str
) -> None:
    first = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    r = await first.login(attributes=big_identity())
    cookie = session_cookie(r.headers.get_list("set-cookie"))
    client = redis.asyncio.Redis.from_url(TEST_REDIS_URL)
    keys = [k async for k in client.scan_iter(match=redis_prefix + "session:*")]
    assert len(keys) == 1
    await client.delete(*keys)
    await client.aclose()
    fresh = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)  # nothing cached
    fresh.client.cookies.set("saml_gate_session", cookie)
    assert (await fresh.client.get("/private/x", headers=JSON)).status_code == 401
    page = await fresh.client.get("/private/x", headers={"accept": "text/html"})
    assert page.status_code == 303 and "saml_gate_session=;" in page.headers["set-cookie"]
