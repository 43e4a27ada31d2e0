"""Redis store (redis-py's asyncio client), shared by every worker and host that uses it.

Keys carry a prefix so that several gates, or tests, share one Redis. The replay check is one
``SET key 1 NX PX ttl``: atomic, and the key expires by itself when the assertion could no longer
be accepted anyway. Every transport failure becomes :class:`StoreUnavailable`. Timeouts are
bounded at each level: connecting, each reply, and waiting for a pooled connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

from saml_gate.store.base import StoreUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")

#: Add a member and make the set live at least as long as the new member needs.
_ADD_MEMBER: Final = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""
URL_SCHEMES: Final = ("redis", "rediss", "unix")


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = (parts.username or "") + ":***@" + (parts.hostname or "")
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
        self.description = "Redis (client object)"

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, timeout: float, max_connections: int = 64
    ) -> RedisStore:
        """A store with its own bounded pool: ``timeout`` seconds to connect, per reply, and
        to get a connection from the pool; one immediate retry (a reconnect after Redis
        restarted), never a backoff sleep."""
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        store = cls(Redis(connection_pool=pool), prefix=prefix, owns_client=True)
        store.description = redacted(url)
        return store

    async def _do(self, operation: Callable[[], Awaitable[T]]) -> T:
        from redis.exceptions import RedisError

        try:
            return await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def add_once(self, key: str, ttl: float) -> bool:
        k = self._prefix + key
        return bool(await self._do(lambda: self._client.set(k, b"1", nx=True, px=_ms(ttl))))

    async def contains(self, key: str) -> bool:
        k = self._prefix + key
        return bool(await self._do(lambda: self._client.exists(k)))

    async def put(self, key: str, value: str, ttl: float) -> None:
        k = self._prefix + key
        await self._do(lambda: self._client.set(k, value.encode(), px=_ms(ttl)))

    async def get(self, key: str) -> str | None:
        k = self._prefix + key
        value = await self._do(lambda: self._client.get(k))
        return None if value is None else _text(value)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        k = self._prefix + key
        await self._do(lambda: self._add_member(keys=[k], args=[member, _ms(ttl)]))

    async def members(self, key: str) -> frozenset[str]:
        k = self._prefix + key
        found = await self._do(lambda: self._client.smembers(k))
        return frozenset(_text(m) for m in found)

    async def remove_members(self, key: str, members: Iterable[str]) -> None:
        k = self._prefix + key
        values = list(members)
        if values:
            await self._do(lambda: self._client.srem(k, *values))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
