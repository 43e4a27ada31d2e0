"""The store interface: a few key-value operations with a time to live, nothing more.

What goes through it (see :mod:`saml_gate.session.revocation` and
:mod:`saml_gate.session.sessions` for the keys):
the assertion replay cache and consumed AuthnRequest IDs (:meth:`Store.add_once`), session
revocations (:meth:`Store.put` / :meth:`Store.contains`), session data too large for a cookie
(:meth:`Store.put` / :meth:`Store.get`) and the index from a subject to its sessions that
IdP-initiated logout needs (the ``*_member*`` operations).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time.

    Implementations raise it for every transport failure; the gate then refuses what needs the
    store (new sign-ins) with a 503 and applies ``store_outage`` to existing sessions.
    """


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

    async def close(self) -> None:
        """Release connections."""
        ...
