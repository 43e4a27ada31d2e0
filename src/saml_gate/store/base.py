"""The store interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Store(Protocol):
    """Keys with a time to live. Implementations must make :meth:`add_once` atomic."""

    async def add_once(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False if it was already recorded (a replay)."""
        ...

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is recorded and not expired."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
