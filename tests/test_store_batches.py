"""The batch and expiring-set operations, the same contract for the memory store and Redis; and
Redis's feed: what is announced reaches a follower, after the set it loaded on subscribing."""

from __future__ import annotations

import anyio
import pytest

from saml_gate.store import MemoryStore, Store
from saml_gate.store.base import AddMember, Announce, Put, RemoveMembers
from saml_gate.store.redis import RedisStore
from tests.conftest import TEST_REDIS_URL
from tests.support import FrozenClock
from tests.test_store import store

__all__ = ["store"]  # the fixture: a memory store and a Redis store, one clock

pytestmark = pytest.mark.anyio


def redis_store(prefix: str, clock: FrozenClock) -> RedisStore:
    s = RedisStore.from_url(TEST_REDIS_URL, prefix=prefix, timeout=2.0)
    s.clock = clock
    return s


async def test_add_once_each_answers_for_each_key(store: Store) -> None:
    assert await store.add_once_each([("a", 60), ("b", 60)]) == (True, True)
    assert await store.add_once_each([("a", 60), ("c", 60)]) == (False, True)


async def test_write_applies_every_kind(store: Store, clock: FrozenClock) -> None:
    await store.write(
        [
            Put("session:x", "data", 60),
            AddMember("subject:s", "one", 60),
            AddMember("subject:s", "two", 60),
            Announce("revoked", "sid-1", clock() + 60),
            Announce("sessions", "record", clock() + 30, publish=False),
        ]
    )
    await store.write([RemoveMembers("subject:s", ("one",))])
    assert await store.get("session:x") == "data"
    assert await store.members("subject:s") == frozenset({"two"})
    assert await store.expiry("revoked", "sid-1") == pytest.approx(clock() + 60)
    assert await store.expiring("sessions", clock()) == {"record": pytest.approx(clock() + 30)}


async def test_expiring_members_expire_one_by_one(store: Store, clock: FrozenClock) -> None:
    await store.write([Announce("revoked", "soon", clock() + 10)])
    await store.write([Announce("revoked", "later", clock() + 100)])
    await store.write([Announce("revoked", "later", clock() + 50)])  # never shortened
    clock.advance(20)
    assert await store.expiry("revoked", "soon") is None
    assert set(await store.expiring("revoked", clock())) == {"later"}
    assert await store.expiry("revoked", "later") == pytest.approx(clock() + 80)
    assert await store.expiry("revoked", "never") is None


async def test_memory_store_has_no_feed_its_reads_are_local() -> None:
    assert MemoryStore().feed() is None


async def test_redis_feed_loads_then_follows(redis_prefix: str, clock: FrozenClock) -> None:
    writer = redis_store(redis_prefix, clock)
    follower = redis_store(redis_prefix, clock)
    await writer.write([Announce("revoked", "before", clock() + 60)])
    loaded: list[dict[str, float]] = []
    added: list[str] = []
    feed = follower.feed()
    assert feed is not None
    async with anyio.create_task_group() as group:
        group.start_soon(
            feed.follow, "revoked", loaded.append, lambda m, _t: added.append(m), lambda: None
        )
        with anyio.fail_after(30):  # hang guards, not timings
            while not loaded:
                await anyio.sleep(0.01)
            await writer.write([Announce("revoked", "after", clock() + 60)])
            await writer.write([Announce("sessions", "quiet", clock() + 60, publish=False)])
            while not added:
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert set(loaded[0]) == {"before"} and added == ["after"]
    await writer.close()
    await follower.close()
