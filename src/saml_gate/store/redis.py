"""Redis store (redis-py's asyncio client), shared by every worker and host that uses it.

Keys carry a prefix so that several gates, or tests, share one Redis. The replay check is one
``SET key 1 NX PX ttl``: atomic, and the key expires by itself when the assertion could no longer
be accepted anyway. Every transport failure becomes :class:`StoreUnavailable`. Timeouts are
bounded at each level: connecting, each reply, and waiting for a pooled connection.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from saml_gate.store.base import (
    AddMember,
    Feed,
    Put,
    RemoveMembers,
    StoreUnavailable,
    Write,
)
from saml_gate.store.redis_url import RedisConnection, connect, redacted

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
Command = tuple[Any, ...]  # a Redis command and its arguments, queued in a pipeline

#: Add a member and make the set live at least as long as the new member needs.
_ADD_MEMBER: Final = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""
#: Add a member to an expiring set (a sorted set scored by expiry), drop the expired ones, keep
#: the key as long as its last member, and publish the member with its expiry: one atomic step.
_ANNOUNCE: Final = """
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local ttl = math.ceil((tonumber(last[2]) - tonumber(ARGV[3])) * 1000)
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[4] == '1' then
  redis.call('PUBLISH', KEYS[1], ARGV[1] .. string.char(10) .. ARGV[2])
end
return 1
"""


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A :class:`~saml_gate.store.Store` on Redis. Build it with :meth:`from_url` or a client."""

    def __init__(self, client: Redis, *, prefix: str, owns_client: bool = False) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._add_member = client.register_script(_ADD_MEMBER)
        self._announce = client.register_script(_ANNOUNCE)
        self.clock: Callable[[], float] = time.time
        """The wall clock that says which members of an expiring set have expired."""
        self.description = "Redis (client object)"
        # Set by from_url (store/redis_url.py): what to close, and how many replicas must have a
        # write before it counts (Sentinel; see _confirmed).
        self._connection: RedisConnection | None = None
        self._wait_replicas = 0
        self._wait_ms = 0
        self._cluster = False

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, timeout: float, max_connections: int = 64
    ) -> RedisStore:
        """A store with its own bounded pool for any URL form of :mod:`saml_gate.store.redis_url`
        (one server, TLS, a socket, Cluster, Sentinel): ``timeout`` seconds to connect, per reply,
        and to get a connection from the pool; one immediate retry, never a backoff sleep."""
        connection = connect(url, timeout=timeout, max_connections=max_connections)
        store = cls(connection.client, prefix=connection.key_prefix(prefix), owns_client=True)  # type: ignore[arg-type]
        store._connection = connection
        store._wait_replicas = connection.location.wait_replicas
        store._wait_ms = _ms(timeout / 2)  # the WAIT and its round trip within timeout
        store._cluster = connection.location.kind == "cluster"
        store.description = redacted(url)
        return store

    async def _confirmed(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` (writes, no transaction needed) in one round trip; with
        ``wait_replicas``, WAIT on the same connection until that many replicas have the writes,
        else :class:`StoreUnavailable`: a write a failover could lose never counts as done."""
        from redis.exceptions import AskError, MovedError

        cluster = self._connection if self._cluster and self._wait_replicas else None
        client = self._client
        if cluster is not None:
            client = await self._do(lambda: cluster.slot_master(self._prefix))
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        if not self._wait_replicas:
            return list(await self._do(pipe.execute))
        pipe.execute_command("WAIT", self._wait_replicas, self._wait_ms)
        try:
            *results, acknowledged = await self._do(pipe.execute)
        except StoreUnavailable as exc:
            if cluster is not None and isinstance(exc.__cause__, MovedError | AskError):
                # The slot has moved (a failover): relearn the slots before the next write.
                await self._do(cluster.relearn_slots)
            raise
        if int(acknowledged) < self._wait_replicas:
            raise StoreUnavailable(
                f"only {acknowledged} of {self._wait_replicas} replicas acknowledged a write"
            )
        return list(results)

    async def _do(self, operation: Callable[[], Awaitable[T]]) -> T:
        from redis.exceptions import RedisError

        try:
            return await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def add_once(self, key: str, ttl: float) -> bool:
        if self._wait_replicas:  # the pipeline WAITs for the replicas
            return (await self.add_once_each([(key, ttl)]))[0]
        k = self._prefix + key
        return bool(await self._do(lambda: self._client.set(k, b"1", nx=True, px=_ms(ttl))))

    async def contains(self, key: str) -> bool:
        k = self._prefix + key
        return bool(await self._do(lambda: self._client.exists(k)))

    async def put(self, key: str, value: str, ttl: float) -> None:
        if self._wait_replicas:
            return await self.write([Put(key, value, ttl)])
        k = self._prefix + key
        await self._do(lambda: self._client.set(k, value.encode(), px=_ms(ttl)))

    async def get(self, key: str) -> str | None:
        k = self._prefix + key
        value = await self._do(lambda: self._client.get(k))
        return None if value is None else _text(value)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        if self._wait_replicas:
            return await self.write([AddMember(key, member, ttl)])
        k = self._prefix + key
        await self._do(lambda: self._add_member(keys=[k], args=[member, _ms(ttl)]))

    async def members(self, key: str) -> frozenset[str]:
        k = self._prefix + key
        found = await self._do(lambda: self._client.smembers(k))
        return frozenset(_text(m) for m in found)

    async def remove_members(self, key: str, members: Iterable[str]) -> None:
        k = self._prefix + key
        values = list(members)
        if self._wait_replicas:
            return await self.write([RemoveMembers(key, tuple(values))])
        if values:
            await self._do(lambda: self._client.srem(k, *values))

    async def add_once_each(self, items: Sequence[tuple[str, float]]) -> tuple[bool, ...]:
        commands = [("SET", self._prefix + key, b"1", "NX", "PX", _ms(ttl)) for key, ttl in items]
        return tuple(bool(r) for r in await self._pipeline(commands))

    async def write(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        now = repr(self.clock())
        commands: list[Command] = []
        for w in writes:
            k = self._prefix + w.key
            if isinstance(w, Put):
                commands.append(("SET", k, w.value.encode(), "PX", _ms(w.ttl)))
            elif isinstance(w, AddMember):
                commands.append(self._script(self._add_member, k, w.member, _ms(w.ttl)))
            elif isinstance(w, RemoveMembers):
                if w.members:
                    commands.append(("SREM", k, *w.members))
            else:
                publish = "1" if w.publish else "0"
                commands.append(
                    self._script(self._announce, k, w.member, repr(w.expires_at), now, publish)
                )
        await self._pipeline(commands)

    def _script(self, script: Any, key: str, *args: Any) -> Command:
        """``script`` on ``key``: by its SHA, or whole in a cluster, whose pipelines refuse
        EVALSHA (its keys share the prefix's hash tag: one slot)."""
        if self._cluster:
            return ("EVAL", script.script, 1, key, *args)
        return ("EVALSHA", script.sha, 1, key, *args)

    async def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """One round trip, scripts by their SHA (loaded, and the commands sent again, only when
        this Redis does not know them yet)."""
        from redis.exceptions import NoScriptError

        if not commands:
            return []
        for attempt in range(2):
            try:
                return await self._confirmed(commands)
            except StoreUnavailable as exc:
                if attempt or not isinstance(exc.__cause__, NoScriptError):
                    raise
            for script in (self._add_member, self._announce):
                await self._do(lambda s=script: self._client.script_load(s.script))  # type: ignore[misc]
        raise AssertionError("unreachable")

    async def expiring(self, key: str, now: float) -> dict[str, float]:
        k = self._prefix + key
        found = await self._do(
            lambda: self._client.zrangebyscore(k, f"({now!r}", "+inf", withscores=True)
        )
        return {_text(pair[0]): float(pair[1]) for pair in found}

    async def expiry(self, key: str, member: str) -> float | None:
        k = self._prefix + key
        score = await self._do(lambda: self._client.zscore(k, member))
        return None if score is None or float(score) <= self.clock() else float(score)

    def feed(self) -> Feed | None:
        from saml_gate.store.redis_feed import RedisFeed

        return RedisFeed(self._client, self._prefix, self.expiring, self.clock)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()
        elif self._owns_client:
            await self._client.aclose()
