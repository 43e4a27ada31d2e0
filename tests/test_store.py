"""The store: one contract for the memory and the Redis store, the guard around networked stores,
how the ``store`` setting builds one, and what the gate keeps there (replay keys and their TTLs).

Redis tests use the real server at 127.0.0.1:6379 with a key prefix of their own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio

from saml_gate import SamlGate
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.store import (
    GuardedStore,
    MemoryStore,
    RedisStore,
    Store,
    StoreUnavailable,
    open_store,
)
from saml_gate.store.redis import redacted
from tests.conftest import TEST_REDIS_URL
from tests.support import (
    BASE_URL,
    IDP_ENTITY_ID,
    SECRET,
    FrozenClock,
    Harness,
    gate_options,
    idp_metadata,
    make_app,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, clock: FrozenClock, redis_prefix: str
) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    s = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix, timeout=2.0)
    s.clock = clock  # which members of an expiring set have expired
    yield s
    await s.close()


# ------------------------------------------------------------------------------------ contract
async def test_add_once_is_true_only_the_first_time(store: Store) -> None:
    assert await store.add_once("assertion:a", 60)
    assert not await store.add_once("assertion:a", 60)
    assert await store.contains("assertion:a")
    assert await store.add_once("assertion:b", 60)
    assert not await store.contains("assertion:c")


async def test_put_get_contains(store: Store) -> None:
    assert await store.get("session:x") is None
    await store.put("session:x", '{"g": ["a"]}', 60)
    assert await store.get("session:x") == '{"g": ["a"]}'
    assert await store.contains("session:x")
    await store.put("session:x", "replaced", 60)
    assert await store.get("session:x") == "replaced"


async def test_sets(store: Store) -> None:
    assert await store.members("subject:s") == frozenset()
    await store.add_member("subject:s", "one", 60)
    await store.add_member("subject:s", "two", 60)
    await store.add_member("subject:s", "one", 60)
    assert await store.members("subject:s") == {"one", "two"}
    await store.remove_members("subject:s", ["one", "absent"])
    assert await store.members("subject:s") == {"two"}
    await store.remove_members("subject:s", [])
    assert await store.members("subject:s") == {"two"}


async def test_memory_store_expires_entries(clock: FrozenClock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.add_once("k", 10)
    await store.put("v", "value", 10)
    await store.add_member("set", "m", 10)
    await store.add_member("set", "n", 30)  # the set lives as long as its longest member needs
    clock.advance(10)
    assert not await store.contains("k") and await store.get("v") is None
    assert await store.add_once("k", 10)  # expired: a new entry
    assert await store.members("set") == {"m", "n"}
    clock.advance(20)
    assert await store.members("set") == frozenset()
    await store.add_once("fresh", 10)  # writes prune what has expired
    assert len(store) == 1


async def test_redis_store_sets_the_ttl_it_is_given(
    redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    store = RedisStore(redis_client, prefix=redis_prefix)
    await store.add_once("a", 90.5)
    await store.put("b", "x", 30)
    await store.add_member("s", "m1", 100)
    await store.add_member("s", "m2", 10)  # never shortens the set's life
    ttl = {k: await redis_client.pttl(redis_prefix + k) for k in ("a", "b", "s")}
    assert 89_000 < ttl["a"] <= 90_500
    assert 29_000 < ttl["b"] <= 30_000
    assert 99_000 < ttl["s"] <= 100_000
    await store.add_member("s", "m3", 500)
    assert 499_000 < await redis_client.pttl(redis_prefix + "s") <= 500_000


async def test_redis_add_once_is_atomic_across_clients(redis_prefix: str) -> None:
    """Two pools, as two workers have: of 40 concurrent attempts exactly one wins."""
    stores = [
        RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix, timeout=5.0) for _ in range(2)
    ]
    results: list[bool] = []

    async def attempt(store: RedisStore) -> None:
        results.append(await store.add_once("assertion:idp:same-id", 60))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(attempt, stores[i % 2])
    for s in stores:
        await s.close()
    assert results.count(True) == 1 and len(results) == 40


async def test_prefixes_keep_gates_apart(redis_prefix: str) -> None:
    one = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix + "one:", timeout=2.0)
    two = RedisStore.from_url(TEST_REDIS_URL, prefix=redis_prefix + "two:", timeout=2.0)
    assert await one.add_once("assertion:x", 60)
    assert await two.add_once("assertion:x", 60)
    assert not await two.contains("assertion:y") and not await one.add_once("assertion:x", 60)
    await one.close()
    await two.close()


async def test_memory_store_is_bounded(clock: FrozenClock, caplog: Any) -> None:
    store = MemoryStore(max_entries=100, clock=clock, max_members=3)
    for i in range(250):
        await store.add_once(f"k{i}", 60 + i)  # k0 expires first
    assert len(store) == 100
    assert not await store.contains("k0") and await store.contains("k249")
    assert caplog.text.count("dropped") == 1  # one warning a minute, not one per entry
    small = MemoryStore(clock=clock, max_members=3)
    for member in "abcde":
        await small.add_member("subject", member, 600)
    assert await small.members("subject") == {"c", "d", "e"}
    assert caplog.text.count("has over 3 sessions") == 1  # two dropped, one warning a minute
    clock.advance(61)
    await small.add_member("subject", "f", 600)
    assert caplog.text.count("has over 3 sessions") == 2


# ------------------------------------------------------------------------------------ the guard
class FlakyStore(MemoryStore):
    """A memory store that can be made to hang or fail, and counts what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.calls = 0

    async def contains(self, key: str) -> bool:
        self.calls += 1
        if self.mode == "hang":
            await anyio.sleep_forever()
        if self.mode == "fail":
            raise StoreUnavailable("ConnectionError: refused")
        return await super().contains(key)


async def test_guard_bounds_calls_fails_fast_and_logs_the_outage_once(caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="saml_gate")
    now = [1000.0]
    inner = FlakyStore()
    guard = GuardedStore(
        inner,
        timeout=0.05,
        description="redis://127.0.0.1:1/0",
        outage_policy="serve",
        monotonic=lambda: now[0],
    )
    assert await guard.contains("k") is False and not guard.is_down
    inner.mode = "hang"
    with pytest.raises(StoreUnavailable):  # bounded by the timeout, not hanging
        await guard.contains("k")
    assert guard.is_down and inner.calls == 2
    for _ in range(5):  # within retry_after: no call reaches the dead store
        with pytest.raises(StoreUnavailable):
            await guard.contains("k")
    assert inner.calls == 2
    inner.mode = "fail"
    now[0] += 1.5
    with pytest.raises(StoreUnavailable):
        await guard.contains("k")
    assert inner.calls == 3
    inner.mode = "ok"
    now[0] += 1.5
    assert await guard.contains("k") is False and not guard.is_down
    down = [r for r in caplog.records if getattr(r, "event", "") == "store_down"]
    up = [r for r in caplog.records if getattr(r, "event", "") == "store_up"]
    assert len(down) == 1 and len(up) == 1
    assert "new sign-ins are refused with 503" in down[0].getMessage()
    # what is not enforced, exactly (store_outage=serve)
    assert "NOT sign-outs made on other gates or workers during the outage" in down[0].getMessage()
    assert "reachable again" in up[0].getMessage()


# ------------------------------------------------------------------------------------ settings
def settings(tmp_path: Any, idp_keys: Any, **values: Any) -> GateSettings:
    return GateSettings.load(
        environ={},
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=idp_metadata(idp_keys),
        state_dir=str(tmp_path),
        **values,
    )


async def test_store_setting_builds_the_store(
    tmp_path: Any, idp_keys: Any, redis_client: redis.asyncio.Redis
) -> None:
    assert isinstance(open_store(settings(tmp_path, idp_keys)), MemoryStore)
    from_url = open_store(settings(tmp_path, idp_keys, store="redis://:pw@127.0.0.1:6379/3"))
    assert isinstance(from_url, GuardedStore) and isinstance(from_url.inner, RedisStore)
    from_client = open_store(settings(tmp_path, idp_keys), redis_client)
    assert isinstance(from_client, GuardedStore) and isinstance(from_client.inner, RedisStore)
    mine = MemoryStore()
    assert open_store(settings(tmp_path, idp_keys), mine) is mine
    assert redacted("redis://user:secret@h:1/0") == "redis://user:***@h:1/0"


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"store": "memcached://127.0.0.1"}, "store"),
        ({"store": "redis"}, "store"),
        ({"store_timeout": 0}, "store_timeout"),
        ({"store_timeout": 120}, "store_timeout"),
        ({"store_outage": "ignore"}, "store_outage"),
        ({"store_prefix": ""}, "store_prefix"),
    ],
)
def test_bad_store_settings_fail_at_construction(
    tmp_path: Any, idp_keys: Any, values: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, idp_keys, **values)
    assert caught.value.setting == setting


def test_store_objects_that_cannot_work_are_refused(tmp_path: Any, idp_keys: Any) -> None:
    with pytest.raises(ConfigError, match="synchronous"):
        open_store(settings(tmp_path, idp_keys), redis.Redis())
    with pytest.raises(ConfigError, match="neither a Store"):
        open_store(settings(tmp_path, idp_keys), object())


def test_store_setting_from_the_environment(tmp_path: Any, idp_keys: Any) -> None:
    s = GateSettings.load(
        environ={
            "SAML_GATE_STORE": "redis://127.0.0.1:6379/0",
            "SAML_GATE_STORE_TIMEOUT": "0.25",
            "SAML_GATE_STORE_OUTAGE": "refuse",
        },
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=idp_metadata(idp_keys),
        state_dir=str(tmp_path),
    )
    assert s.store == "redis://127.0.0.1:6379/0"
    assert (s.store_timeout, s.store_outage) == (0.25, "refuse")


# ------------------------------------------------------------------------------------ the gate
async def test_replay_keys_live_as_long_as_the_assertion_could_be_accepted(
    make_harness: Callable[..., Harness],
    redis_prefix: str,
    redis_client: redis.asyncio.Redis,
) -> None:
    h = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    request_id, relay = await h.start_login()
    spec = h.spec(in_response_to=request_id, assertion_id="id-assertion-1")
    r = await h.post_acs(h.response_b64(spec), relay)
    assert r.status_code == 303
    # The dev IdP's assertions are valid 5 minutes; plus clock_skew (90 s).
    ttl = await redis_client.pttl(f"{redis_prefix}assertion:{IDP_ENTITY_ID}:id-assertion-1")
    assert 385_000 < ttl <= 390_000
    ttl = await redis_client.pttl(f"{redis_prefix}request:{request_id}")
    assert 685_000 < ttl <= 690_000  # login_timeout + clock_skew


async def test_a_response_replayed_to_another_gate_sharing_redis_is_refused(
    make_harness: Callable[..., Harness], redis_prefix: str
) -> None:
    """Two gates on one Redis are two workers (the multi-process test does it for real)."""
    first = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    second = make_harness(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    request_id, relay = await first.start_login()
    for cookie in first.client.cookies.jar:  # the attacker copied the browser's cookies too
        second.client.cookies.set(cookie.name, cookie.value or "", path=cookie.path)
    posted = first.response_b64(first.spec(in_response_to=request_id))
    assert (await first.post_acs(posted, relay)).status_code == 303
    replay = await second.post_acs(posted, relay)
    assert replay.status_code == 400 and "replayed" in replay.text


async def test_gate_accepts_a_redis_client_object(
    make_harness: Callable[..., Harness], redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    h = make_harness(store=redis_client, store_prefix=redis_prefix)
    assert (await h.login()).status_code == 303
    keys = [k async for k in redis_client.scan_iter(match=redis_prefix + "*")]
    assert any(k.startswith(f"{redis_prefix}assertion:".encode()) for k in keys)


async def test_unreachable_store_url_does_not_stop_construction(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Any
) -> None:
    gate = SamlGate(
        make_app(),
        **gate_options(idp_keys, sp_keys, clock, str(tmp_path), store="redis://127.0.0.1:1/0"),
    )
    assert isinstance(gate.core.store, GuardedStore)
