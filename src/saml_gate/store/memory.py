"""In-process store: bounded, with TTL expiry. Correct for one worker process only."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from saml_gate.store.base import AddMember, Announce, Feed, Put, RemoveMembers, Write

log = logging.getLogger("saml_gate")


class MemoryStore:
    """Dicts of key → expiry and key → value, pruned in expiry order, at most ``max_entries`` keys.

    When full, the entries closest to expiry are dropped first (and a warning is logged); for a
    replay cache that is the safest choice, since those are the assertions that will stop being
    valid soonest. Only signed-in people add entries (an unauthenticated request or a bogus ACS
    post never reaches the store), so the bound is a safety net, not a working limit. A set keeps
    at most ``max_members`` members, the oldest going first. Most sets (a person's sessions,
    indexed by subject and by email) hold one member: such a set is kept as that member's
    string, and becomes a dict of members with its second (about 180 bytes less a set).
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
        max_members: int = 1024,
    ) -> None:
        if max_entries < 1 or max_members < 1:
            raise ValueError("max_entries and max_members must be positive")
        self._max = max_entries
        self._max_members = max_members
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._values: dict[str, str] = {}
        self._sets: dict[str, str | dict[str, None]] = {}
        """Each set's members, oldest first; a set of one member is that member."""
        self._heap: list[tuple[float, str]] = []
        self._evicted = 0
        self._warned_at = float("-inf")
        self._members_warned_at = float("-inf")
        self._expiring: dict[str, dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def _prune(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        evicted = 0
        while heap and (heap[0][0] <= now or len(expiry) > self._max):
            when, key = heapq.heappop(heap)
            if expiry.get(key) == when:
                del expiry[key]
                self._values.pop(key, None)
                self._sets.pop(key, None)
                evicted += when > now
        self._evicted += evicted
        if self._evicted and now - self._warned_at >= 60:
            log.warning(
                "saml-gate memory store full (%d entries): dropped %d before their expiry",
                self._max,
                self._evicted,
            )
            self._warned_at, self._evicted = now, 0
        if len(heap) > 2 * len(expiry) + 64:  # drop stale heap entries left by overwrites
            self._heap = [(w, k) for k, w in expiry.items()]
            heapq.heapify(self._heap)

    def _live(self, key: str, now: float) -> bool:
        return self._expiry.get(key, 0.0) > now

    def _set_expiry(self, key: str, when: float, now: float) -> None:
        self._expiry[key] = when
        heapq.heappush(self._heap, (when, key))
        self._prune(now)

    async def add_once(self, key: str, ttl: float) -> bool:
        now = self._clock()
        self._prune(now)
        if self._live(key, now):
            return False
        self._values.pop(key, None)
        self._sets.pop(key, None)
        self._set_expiry(key, now + max(ttl, 0.0), now)
        return True

    async def contains(self, key: str) -> bool:
        return self._live(key, self._clock())

    async def put(self, key: str, value: str, ttl: float) -> None:
        now = self._clock()
        self._sets.pop(key, None)
        self._values[key] = value
        self._set_expiry(key, now + max(ttl, 0.0), now)

    async def get(self, key: str) -> str | None:
        return self._values.get(key) if self._live(key, self._clock()) else None

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        now = self._clock()
        current = self._sets.get(key) if self._live(key, now) else None
        if current is None or current == member:
            self._sets[key] = member
        else:
            members = {current: None} if isinstance(current, str) else current
            members.pop(member, None)
            members[member] = None
            while len(members) > self._max_members:
                del members[next(iter(members))]
                if now - self._members_warned_at >= 60:  # once a minute, not on every sign-in
                    log.warning(
                        "saml-gate memory store: a subject has over %d sessions (the oldest are"
                        " now out of reach of IdP-initiated logout)",
                        self._max_members,
                    )
                    self._members_warned_at = now
            self._sets[key] = members
        self._values.pop(key, None)
        self._set_expiry(key, max(self._expiry.get(key, 0.0), now + max(ttl, 0.0)), now)

    async def members(self, key: str) -> frozenset[str]:
        current = self._sets.get(key) if self._live(key, self._clock()) else None
        if current is None:
            return frozenset()
        return frozenset((current,) if isinstance(current, str) else current)

    async def remove_members(self, key: str, members: Iterable[str]) -> None:
        current = self._sets.get(key)
        if isinstance(current, str):
            if current in members:
                del self._sets[key]  # the set is empty: its key stays until it expires
        elif current is not None:
            for member in members:
                current.pop(member, None)

    async def add_once_each(self, items: Sequence[tuple[str, float]]) -> tuple[bool, ...]:
        return tuple([await self.add_once(key, ttl) for key, ttl in items])

    async def write(self, writes: Sequence[Write]) -> None:
        for w in writes:
            if isinstance(w, Put):
                await self.put(w.key, w.value, w.ttl)
            elif isinstance(w, AddMember):
                await self.add_member(w.key, w.member, w.ttl)
            elif isinstance(w, RemoveMembers):
                await self.remove_members(w.key, w.members)
            else:
                self._announce(w)

    def _announce(self, w: Announce) -> None:
        now = self._clock()
        members = self._expiring.setdefault(w.key, {})
        if len(members) >= self._max:  # drop the expired, then the soonest to expire
            for member, when in sorted(members.items(), key=lambda item: item[1]):
                if when > now and len(members) < self._max:
                    break
                del members[member]
        members[w.member] = max(w.expires_at, members.get(w.member, 0.0))

    async def expiring(self, key: str, now: float) -> dict[str, float]:
        return {m: t for m, t in self._expiring.get(key, {}).items() if t > now}

    async def expiry(self, key: str, member: str) -> float | None:
        return self.expiry_now(key, member)

    def expiry_now(self, key: str, member: str) -> float | None:
        """:meth:`expiry` without awaiting: this store does no I/O (the request's hot path)."""
        when = self._expiring.get(key, {}).get(member)
        return when if when is not None and when > self._clock() else None

    def feed(self) -> Feed | None:
        return None  # the store is this process's own: reading it is the local view

    async def close(self) -> None:
        self._expiring.clear()
        self._expiry.clear()
        self._values.clear()
        self._sets.clear()
        self._heap.clear()
