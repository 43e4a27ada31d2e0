"""Redis pub/sub behind :class:`~saml_gate.store.base.Feed`: announcements pushed to each process.

An expiring set's announcements are published on a channel named like its key (prefix included).
Following it: subscribe, wait for Redis to confirm, load the set's live members (so a member
announced while loading arrives either in the load or as a message), then apply each message.
A silent subscription is pinged every second; no answer within ``PING_GRACE`` seconds, a closed
connection or any Redis error count as lost: the follower says so and subscribes again (with a
short, growing pause), loading the set again before it is trusted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio

from saml_gate.background import raise_if_cancelled

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("saml_gate")

PING_EVERY: Final = 1.0
PING_GRACE: Final = 3.0
RETRY_MAX: Final = 5.0


class RedisFeed:
    def __init__(
        self,
        client: Redis,
        prefix: str,
        load: Callable[[str, float], Awaitable[dict[str, float]]],
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._load = load
        self._clock = clock

    async def follow(
        self,
        key: str,
        ready: Callable[[dict[str, float]], None],
        added: Callable[[str, float], None],
        lost: Callable[[], None],
    ) -> None:
        from redis.exceptions import RedisError

        pause = 0.1
        trusted = True  # whether the last attempt got as far as loading (log the first loss)
        while True:
            raise_if_cancelled()
            pubsub = self._client.pubsub()
            try:
                await self._client.initialize()  # a cluster client learns its slots first
                await self._subscribe(pubsub, self._prefix + key)
                ready(await self._load(key, self._clock()))
                pause, trusted = 0.1, True
                await self._listen(pubsub, added)
            except Exception as exc:  # any failure: say so, fall back, subscribe again
                raise_if_cancelled()  # a cancellation redis-py turned into an error
                lost()
                if trusted:
                    log.warning(
                        "saml-gate lost its Redis subscription to %r (%s): revocations are"
                        " checked in Redis on each request until it is back",
                        key,
                        type(exc).__name__,
                        extra={"event": "store_feed_lost"},
                    )
                if not isinstance(exc, RedisError | OSError | TimeoutError):
                    log.exception("saml-gate: unexpected error in the Redis subscription")
                trusted = False
            finally:
                with anyio.move_on_after(1.0, shield=True):
                    await pubsub.aclose()
            await anyio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)

    async def _subscribe(self, pubsub: PubSub, channel: str) -> None:
        await pubsub.subscribe(channel)
        with anyio.fail_after(PING_GRACE):
            while True:
                message = await pubsub.get_message(timeout=PING_GRACE)
                if message is not None and message["type"] == "subscribe":
                    return

    async def _listen(self, pubsub: PubSub, added: Callable[[str, float], None]) -> None:
        heard = pinged = time.monotonic()
        while True:
            raise_if_cancelled()
            message: dict[str, Any] | None = await pubsub.get_message(timeout=PING_EVERY)
            now = time.monotonic()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    member, _, expires = _text(message["data"]).rpartition("\n")
                    try:
                        added(member, float(expires))
                    except ValueError:
                        log.warning("saml-gate: a malformed announcement on %r", message["channel"])
                continue
            if now - heard > PING_GRACE:
                raise TimeoutError("no answer to PING on the subscription")
            if now - pinged >= PING_EVERY:
                pinged = now
                await pubsub.ping()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
