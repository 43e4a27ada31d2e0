"""Shared state behind one small interface: replay cache, consumed request IDs, revocations.

The default :class:`MemoryStore` is per process. Several workers or hosts need a shared
implementation (Redis) so that a Response replayed to another worker is still refused and a
sign-out in one worker ends the session in all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from saml_gate.config.settings import StoreSettings
from saml_gate.errors import ConfigError
from saml_gate.store.base import Store, StoreUnavailable
from saml_gate.store.guard import GuardedStore
from saml_gate.store.memory import MemoryStore
from saml_gate.store.redis import RedisStore
from saml_gate.store.redis_url import redacted

__all__ = [
    "GuardedStore",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreUnavailable",
    "open_store",
]


def open_store(settings: StoreSettings, given: Any = None) -> Store:
    """The store from ``given`` (a Store or a ``redis.asyncio.Redis`` client) or from the
    ``store`` setting ("memory" or a Redis URL). Anything but the memory store is wrapped in a
    :class:`GuardedStore`, which bounds every call by ``store_timeout``."""
    if given is None and settings.store == "memory":
        return MemoryStore(clock=settings.clock)
    if isinstance(given, MemoryStore | GuardedStore):
        return given
    inner: Store
    if given is None:
        redis_store = _from_url(settings)
        redis_store.clock = settings.clock
        inner, description = redis_store, redis_store.description
    elif isinstance(given, Store):
        inner, description = given, type(given).__name__
    else:
        inner, description = (
            _from_client(given, settings.store_prefix, settings.clock),
            "Redis (client object)",
        )
    return GuardedStore(
        inner,
        timeout=settings.store_timeout,
        description=description,
        outage_policy=settings.store_outage,
    )


def _from_url(settings: StoreSettings) -> RedisStore:
    try:
        return RedisStore.from_url(
            settings.store, prefix=settings.store_prefix, timeout=settings.store_timeout
        )
    except ImportError as exc:
        from saml_gate.config.extras import install_hint

        raise ConfigError(
            "store", f"a Redis store needs redis-py: {install_hint('redis')}"
        ) from exc
    except ValueError as exc:
        raise ConfigError("store", f"cannot use {redacted(settings.store)!r}: {exc}") from exc


def _from_client(client: Any, prefix: str, clock: Callable[[], float]) -> Store:
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise ConfigError("store", f"{type(client).__name__} is not a Store") from exc
    if isinstance(client, redis.asyncio.Redis):
        store = RedisStore(client, prefix=prefix)
        store.clock = clock
        return store
    if isinstance(client, redis.Redis):
        raise ConfigError(
            "store",
            "a synchronous redis.Redis client blocks the event loop; pass redis.asyncio.Redis",
        )
    raise ConfigError(
        "store", f"{type(client).__name__} is neither a Store nor a redis.asyncio.Redis client"
    )
