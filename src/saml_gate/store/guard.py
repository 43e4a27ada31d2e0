"""Outage handling around a networked store: a time bound per call, fail-fast, loud logs.

Every call gets at most ``timeout`` seconds. After a failure the store counts as down: calls fail
at once (no waiting on a dead Redis) until ``retry_after`` seconds have passed, then the next call
tries again; the first success ends the outage. Going down, staying down and coming back are each
logged, so an operator sees one clear line per event instead of one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final, TypeVar

import anyio

from saml_gate.store.base import Feed, Store, StoreUnavailable, Write

log = logging.getLogger("saml_gate")
T = TypeVar("T")

REMIND_EVERY: Final = 30.0
#: What an outage does to sessions already signed in, by ``store_outage``: said exactly in the
#: outage's log line (see :mod:`saml_gate.session.revocation`: a revocation this process knows
#: is always enforced; one made here during the outage is written to the store when it is back).
OUTAGE_EFFECTS: Final = {
    "serve": "sessions already signed in are still served (store_outage=serve): sign-outs made"
    " in this process or pushed to it before the outage are enforced, but NOT sign-outs made on"
    " other gates or workers during the outage (nor any this process missed while its"
    " subscription was down) until the store is back; IdP-initiated logout and saml-gate"
    " sessions revoke fail",
    "refuse": "requests of sessions already signed in are refused with 503 (store_outage=refuse)"
    " once this process can no longer check revocations; sign-outs made in this process are"
    " enforced and written to the store when it is back",
}


class GuardedStore:
    """A :class:`Store` that never hangs and reports outages; wraps any other store."""

    def __init__(
        self,
        inner: Store,
        *,
        timeout: float,
        description: str,
        outage_policy: str,
        retry_after: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._timeout = timeout
        self._description = description
        self._policy = outage_policy
        self._retry_after = retry_after
        self._monotonic = monotonic
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._reminded_at = 0.0
        self._failures = 0
        self._reason = ""
        self.on_failure: Callable[[], None] | None = None
        """Called on every failed call (the store_errors metric)."""

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        now = self._monotonic()
        if self._down_since is not None and now < self._retry_at:
            self._failures += 1
            self._remind(now)
            raise StoreUnavailable(self._reason)
        try:
            with anyio.fail_after(self._timeout):
                result = await operation()
        except (StoreUnavailable, TimeoutError, OSError) as exc:
            reason = str(exc) if isinstance(exc, StoreUnavailable) else type(exc).__name__
            self._failed(now, reason or "no answer within store_timeout")
            raise StoreUnavailable(self._reason) from exc
        if self._down_since is not None:
            self._recovered(now, self._down_since)
        return result

    def _failed(self, now: float, reason: str) -> None:
        if self.on_failure is not None:
            self.on_failure()
        self._failures += 1
        self._reason = reason
        self._retry_at = now + self._retry_after
        if self._down_since is not None:
            self._remind(now)
            return
        self._down_since = self._reminded_at = now
        log.error(
            "saml-gate store %s is unreachable (%s): new sign-ins are refused with 503 until it"
            " is back; %s",
            self._description,
            reason,
            OUTAGE_EFFECTS[self._policy],
            extra={"event": "store_down", "store": self._description, "reason": reason},
        )

    def _remind(self, now: float) -> None:
        if now - self._reminded_at < REMIND_EVERY or self._down_since is None:
            return
        self._reminded_at = now
        log.error(
            "saml-gate store %s still unreachable after %.0f s (%d failed calls): %s",
            self._description,
            now - self._down_since,
            self._failures,
            self._reason,
            extra={"event": "store_down", "store": self._description, "reason": self._reason},
        )

    def _recovered(self, now: float, since: float) -> None:
        log.warning(
            "saml-gate store %s is reachable again after %.0f s (%d failed calls)",
            self._description,
            now - since,
            self._failures,
            extra={"event": "store_up", "store": self._description},
        )
        self._down_since = None
        self._failures = 0

    # ------------------------------------------------------------------ Store
    async def add_once(self, key: str, ttl: float) -> bool:
        return await self._call(lambda: self.inner.add_once(key, ttl))

    async def contains(self, key: str) -> bool:
        return await self._call(lambda: self.inner.contains(key))

    async def put(self, key: str, value: str, ttl: float) -> None:
        await self._call(lambda: self.inner.put(key, value, ttl))

    async def get(self, key: str) -> str | None:
        return await self._call(lambda: self.inner.get(key))

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        await self._call(lambda: self.inner.add_member(key, member, ttl))

    async def members(self, key: str) -> frozenset[str]:
        return await self._call(lambda: self.inner.members(key))

    async def remove_members(self, key: str, members: Iterable[str]) -> None:
        values = list(members)
        await self._call(lambda: self.inner.remove_members(key, values))

    async def add_once_each(self, items: Sequence[tuple[str, float]]) -> tuple[bool, ...]:
        return await self._call(lambda: self.inner.add_once_each(items))

    async def write(self, writes: Sequence[Write]) -> None:
        await self._call(lambda: self.inner.write(writes))

    async def expiring(self, key: str, now: float) -> dict[str, float]:
        return await self._call(lambda: self.inner.expiring(key, now))

    async def expiry(self, key: str, member: str) -> float | None:
        return await self._call(lambda: self.inner.expiry(key, member))

    def feed(self) -> Feed | None:
        return self.inner.feed()

    async def close(self) -> None:
        with anyio.move_on_after(self._timeout):
            await self.inner.close()
