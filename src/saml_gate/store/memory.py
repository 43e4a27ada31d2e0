"""In-process store: bounded, with TTL expiry. Correct for one worker process only."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable


class MemoryStore:
    """A dict of key → expiry, pruned in expiry order, never larger than ``max_entries``.

    When full, the entries closest to expiry are dropped first; for a replay cache that is the
    safest choice, since those are the assertions that will stop being valid soonest.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def _prune(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and (heap[0][0] <= now or len(expiry) > self._max):
            when, key = heapq.heappop(heap)
            if expiry.get(key) == when:
                del expiry[key]
        if len(heap) > 2 * len(expiry) + 64:  # drop stale heap entries left by overwrites
            self._heap = [(w, k) for k, w in expiry.items()]
            heapq.heapify(self._heap)

    async def add_once(self, key: str, ttl: float) -> bool:
        now = self._clock()
        self._prune(now)
        if self._expiry.get(key, 0.0) > now:
            return False
        when = now + max(ttl, 0.0)
        self._expiry[key] = when
        heapq.heappush(self._heap, (when, key))
        self._prune(now)
        return True

    async def contains(self, key: str) -> bool:
        return self._expiry.get(key, 0.0) > self._clock()

    async def close(self) -> None:
        self._expiry.clear()
        self._heap.clear()
