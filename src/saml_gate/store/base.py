"""The store interface: a few key-value operations with a time to live, nothing more.

What goes through it (see :mod:`saml_gate.session.revocation` and
:mod:`saml_gate.session.sessions` for the keys):
the assertion replay cache and consumed AuthnRequest IDs (:meth:`Store.add_once`), session
revocations (:meth:`Store.put` / :meth:`Store.contains`), session data too large for a cookie
(:meth:`Store.put` / :meth:`Store.get`) and the index from a subject to its sessions that
IdP-initiated logout needs (the ``*_member*`` operations), and sets whose members expire one by
one (``revoked``, ``sessions``: :meth:`Store.expiring`, :meth:`Store.expiry`). A batch of writes
(:meth:`Store.write`) is one round trip; an :class:`Announce` is written and published to every
process following the set (:meth:`Store.feed`) in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time.

    Implementations raise it for every transport failure; the gate then refuses what needs the
    store (new sign-ins) with a 503 and applies ``store_outage`` to existing sessions.
    """


@dataclass(frozen=True)
class Put:
    """Set ``key`` to ``value`` for ``ttl`` seconds."""

    key: str
    value: str
    ttl: float


@dataclass(frozen=True)
class AddMember:
    """Add ``member`` to the set at ``key``, which then lives at least ``ttl`` seconds."""

    key: str
    member: str
    ttl: float


@dataclass(frozen=True)
class RemoveMembers:
    """Remove ``members`` from the set at ``key``."""

    key: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Announce:
    """Add ``member`` to the expiring set at ``key`` until ``expires_at`` (a Unix time) and, when
    ``publish``, tell every process following ``key`` (:meth:`Store.feed`) in the same step."""

    key: str
    member: str
    expires_at: float
    publish: bool = True


Write = Put | AddMember | RemoveMembers | Announce


class Feed(Protocol):
    """Pushes what is announced to an expiring set to this process."""

    async def follow(
        self,
        key: str,
        ready: Callable[[dict[str, float]], None],
        added: Callable[[str, float], None],
        lost: Callable[[], None],
    ) -> None:
        """Until cancelled: subscribe, then call ``ready`` with the set's live members (loaded
        after the subscription is confirmed, so nothing announced in between is missed), then
        ``added`` for each announcement. ``lost`` when the subscription breaks (then it
        reconnects and calls ``ready`` again)."""
        ...


@runtime_checkable
class Store(Protocol):
    """Keys with a time to live (seconds). :meth:`add_once` must be atomic across processes."""

    async def add_once(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False if it was already recorded (a replay)."""
        ...

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is recorded and not expired."""
        ...

    async def put(self, key: str, value: str, ttl: float) -> None:
        """Set ``key`` to ``value`` for ``ttl`` seconds, replacing what was there."""
        ...

    async def get(self, key: str) -> str | None:
        """The value at ``key``, or None when absent or expired."""
        ...

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to the set at ``key``; the set then lives at least ``ttl`` seconds."""
        ...

    async def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty when absent or expired)."""
        ...

    async def remove_members(self, key: str, members: Iterable[str]) -> None:
        """Remove ``members`` from the set at ``key``."""
        ...

    async def add_once_each(self, items: Sequence[tuple[str, float]]) -> tuple[bool, ...]:
        """:meth:`add_once` for each (key, ttl), in one round trip."""
        ...

    async def write(self, writes: Sequence[Write]) -> None:
        """Apply ``writes`` in one round trip (each :class:`Announce` atomically)."""
        ...

    async def expiring(self, key: str, now: float) -> dict[str, float]:
        """The members of the expiring set at ``key`` live at ``now``, with their expiry."""
        ...

    async def expiry(self, key: str, member: str) -> float | None:
        """When ``member`` of the expiring set at ``key`` expires; None when it is absent."""
        ...

    def feed(self) -> Feed | None:
        """Announcements pushed to this process; None when the store is this process's own
        (reading it costs nothing)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
