"""Store round trips with Redis, counted (never timed) by the benchmark's counting wrapper.

A sign-in: the replay check (one pipeline of ``SET NX``) and one pipeline of its writes. An
authenticated request: none, once the worker's revocation view is loaded; while it is not
(the subscription down), each request asks Redis, so a revocation is never missed.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from saml_gate.store.base import Announce
from saml_gate.store.redis import RedisStore
from tests.conftest import TEST_REDIS_URL
from tests.support import FrozenClock, Harness

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_scaleout import CountingStore

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}


def counting_store(prefix: str, clock: FrozenClock) -> CountingStore:
    inner = RedisStore.from_url(TEST_REDIS_URL, prefix=prefix, timeout=2.0)
    inner.clock = clock
    return CountingStore(inner)


async def live(h: Harness) -> None:
    """Wait (hang guard only) until the gate's revocation view has loaded from Redis."""
    with anyio.fail_after(30):
        while not h.gate.core.revocations.view.live:
            await anyio.sleep(0.01)


async def agreed(store: CountingStore) -> None:
    """Wait (hang guard only) until the gate's first agreement round, which runs in the
    background after start-up, has announced its record and read the other gates'."""
    with anyio.fail_after(30):
        while not store.calls.get("expiring"):
            await anyio.sleep(0.01)


async def status(h: Harness, cookie: str) -> int:
    h.client.cookies.delete("saml_gate_session")  # one session cookie: two would be refused
    h.client.cookies.set("saml_gate_session", cookie)
    return (await h.client.get("/private/p", headers=JSON)).status_code


async def test_sign_in_is_two_round_trips_and_a_request_none(
    make_harness: Callable[..., Harness], redis_prefix: str, clock: FrozenClock
) -> None:
    store = counting_store(redis_prefix, clock)
    h = make_harness(store=store)
    request_id, relay = await h.start_login()
    await agreed(store)  # else its round trips may land among the sign-in's
    store.calls.clear()
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=request_id)), relay)
    assert r.status_code == 303
    assert store.calls == {"add_once_each": 1, "write": 1}
    cookie = h.client.cookies["saml_gate_session"]
    await live(h)
    store.calls.clear()
    for _ in range(20):
        assert await status(h, cookie) == 200
    assert store.total == 0


async def test_large_identity_is_fetched_once_per_worker(
    make_harness: Callable[..., Harness], redis_prefix: str, clock: FrozenClock
) -> None:
    first = make_harness(store=counting_store(redis_prefix, clock))
    groups = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(500)]
    r = await first.login(attributes={"email": ["alice@example.com"], "groups": groups})
    assert r.status_code == 303
    cookie = first.client.cookies["saml_gate_session"]
    store = counting_store(redis_prefix, clock)
    other = make_harness(store=store)
    assert (await other.client.get("/saml/health")).status_code == 200  # starts its feed
    await live(other)
    store.calls.clear()
    for _ in range(10):
        assert await status(other, cookie) == 200
    assert store.calls == {"get": 1}


async def test_a_down_subscription_falls_back_to_asking_redis(
    make_harness: Callable[..., Harness], redis_prefix: str, clock: FrozenClock
) -> None:
    """A revocation the view never heard of (written without being published) is still refused
    while the view is not trusted; the view is what makes requests free."""
    store = counting_store(redis_prefix, clock)
    h = make_harness(store=store)
    await h.login()
    cookie = h.client.cookies["saml_gate_session"]
    await live(h)
    session = h.gate.core.sessions.decode(cookie)
    assert session is not None
    unannounced = Announce("revoked", session.user.session_id, clock() + 3600, publish=False)
    await store.inner.write([unannounced])
    h.gate.core.revocations.view.lost()  # as when the subscription breaks
    store.calls.clear()
    assert await status(h, cookie) == 401
    assert store.calls == {"expiry": 1}


async def test_a_new_worker_loads_earlier_revocations_before_trusting_its_view(
    make_harness: Callable[..., Harness], redis_prefix: str, clock: FrozenClock
) -> None:
    one = make_harness(store=counting_store(redis_prefix, clock))
    await one.login()
    cookie = one.client.cookies["saml_gate_session"]
    page = await one.client.get("/saml/logout")
    token = page.text.split("name=token value='")[1].split("'")[0]
    assert (await one.client.post("/saml/logout", data={"token": token})).status_code in (200, 303)
    store = counting_store(redis_prefix, clock)
    later: Any = make_harness(store=store)
    assert (await later.client.get("/saml/health")).status_code == 200
    await live(later)
    store.calls.clear()
    assert await status(later, cookie) == 401  # from the loaded view
    assert store.total == 0
