"""Ending sessions before their cookie does: revocations, the subject index SLO needs, and the
index of live sessions the ``saml-gate sessions`` command reads.

A session cookie stays valid until it expires, so ending a session early means remembering its
ID as revoked until then: the expiring set ``revoked`` (session ID → when it would have expired).
Every gated request asks whether its session is in it, without a store round trip: each process
keeps a local view (:class:`RevocationView`), loaded from the store and kept current by the
store's feed (Redis pub/sub: a revocation is written and published in one step). While the feed
is down, or before it has loaded, each request asks the store instead (and ``store_outage``
applies). The memory store is the process's own: it is read directly.

The view is a floor, never forgotten during an outage: a session it holds is revoked whatever
the store answers or fails to answer, so ``store_outage=serve`` only ever applies to what this
process cannot know. A revocation made here while the store is unreachable is kept in the view
and written to the store (and so pushed to every process) as soon as it takes writes again; so
is any the view holds that the store lost (a Redis restarted empty, a failover that lost
writes), found when the feed loads the set again.

The IdP's LogoutRequest names a subject (NameID, maybe SessionIndexes) rather than our session
IDs, so every sign-in also adds its session to the set ``subject:<hash of issuer and NameID>``;
IdP-initiated logout revokes the members that match. A sign-in with an email also adds it to
``email:<hash of the email, case-folded>``, which Universal Logout's ``email`` subject names.
Ending every session of a person (Universal Logout, ``saml-gate sessions revoke --user``, a
failed re-assertion) goes through these indexes, so sessions on every host are found. Every
sign-in is also recorded in the expiring set ``sessions`` (who, which IdP, until when, which
session it re-asserts) for session administration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

import anyio

from saml_gate.background import BackgroundJob, raise_if_cancelled
from saml_gate.config.settings import StoreSettings
from saml_gate.store import MemoryStore, Store, StoreUnavailable
from saml_gate.store.base import AddMember, Announce, RemoveMembers, Write
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate")

_json: Final = json.JSONEncoder().encode
"""``json.dumps`` with its defaults (the same text: a set's member is removed by its text),
its encoder built once rather than looked up through ``dumps``'s checks."""

REVOKED: Final = "revoked"
SESSIONS: Final = "sessions"
#: Seconds between attempts to write revocations the store missed (the store guard fails fast
#: in between, so an attempt against a dead store costs nothing).
DELIVERY_RETRY: Final = 1.0


@dataclass(frozen=True)
class _Entry:
    session_id: str
    expires_at: float
    session_index: str | None

    def encode(self) -> str:
        return _Entry.member(self.session_id, self.expires_at, self.session_index)

    @staticmethod
    def member(session_id: str, expires_at: float, session_index: str | None) -> str:
        """The encoded entry of these fields, without making one (a sign-in's path)."""
        return _json([session_id, round(expires_at), session_index])

    @classmethod
    def decode(cls, member: str) -> _Entry | None:
        try:
            session_id, expires_at, session_index = json.loads(member)
            return cls(str(session_id), float(expires_at), session_index)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class SessionRecord:
    """A live session as the ``sessions`` index keeps it (for listing and admin revocation).
    ``replaces``: the session this one re-asserted (which then no longer counts as live)."""

    session_id: str
    name_id: str
    issuer: str
    session_index: str | None
    expires_at: float
    replaces: str | None = None

    def encode(self) -> str:
        r = self
        return SessionRecord.text(
            r.session_id, r.name_id, r.issuer, r.session_index, r.expires_at, r.replaces
        )

    @staticmethod
    def text(
        session_id: str,
        name_id: str,
        issuer: str,
        session_index: str | None,
        expires_at: float,
        replaces: str | None,
    ) -> str:
        """The encoded record of these fields, without making one (a sign-in's path)."""
        fields = [session_id, name_id, issuer, session_index, expires_at]
        return _json(fields if replaces is None else [*fields, replaces])

    @classmethod
    def decode(cls, member: str) -> SessionRecord | None:
        try:
            session_id, name_id, issuer, session_index, expires_at, *rest = json.loads(member)
            replaces = str(rest[0]) if len(rest) == 1 and rest[0] is not None else None
            if len(rest) > 1:
                return None
            return cls(
                str(session_id),
                str(name_id),
                str(issuer),
                session_index,
                float(expires_at),
                replaces,
            )
        except (ValueError, TypeError):
            return None

    @classmethod
    def of(cls, user: SamlUser, replaces: str | None = None) -> SessionRecord:
        u = user
        return cls(u.session_id, u.name_id, u.issuer, u.session_index, u.expires_at, replaces)


def _subject_key(issuer: str, name_id: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{name_id}".encode()).hexdigest()[:40]
    return "subject:" + digest


def _email_key(email: str) -> str:
    """The index of an email's sessions. Case-folded: it only ever finds sessions to end, and
    a logout must not miss ``Ann@Example.com`` because the IdP wrote ``ann@example.com``."""
    digest = hashlib.sha256(email.casefold().encode()).hexdigest()[:40]
    return "email:" + digest


class RevocationView:
    """This process's copy of the ``revoked`` set; trusted only while ``live``."""

    def __init__(self) -> None:
        self.live = False
        self.revoked: dict[str, float] = {}
        self._watchers: dict[str, set[anyio.Event]] = {}

    def ready(self, snapshot: dict[str, float]) -> None:
        self.revoked.update(snapshot)
        self.live = True
        for session_id in snapshot:
            self.notify(session_id)

    def added(self, session_id: str, expires_at: float, now: float | None = None) -> None:
        if now is not None and len(self.revoked) > 1024:
            self.revoked = {k: t for k, t in self.revoked.items() if t > now}
        self.revoked[session_id] = max(expires_at, self.revoked.get(session_id, 0.0))
        self.notify(session_id)

    def lost(self) -> None:
        self.live = False

    def watch(self, session_id: str) -> anyio.Event:
        """An event set when ``session_id`` is revoked (see :meth:`unwatch`)."""
        event = anyio.Event()
        self._watchers.setdefault(session_id, set()).add(event)
        return event

    def unwatch(self, session_id: str, event: anyio.Event) -> None:
        events = self._watchers.get(session_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._watchers[session_id]

    def notify(self, session_id: str) -> None:
        for event in self._watchers.get(session_id, ()):
            event.set()


class Revocations:
    def __init__(self, store: Store, settings: StoreSettings, *, private: bool = False) -> None:
        """``private``: ``store`` is this gate's own memory store, which nothing else writes:
        every revocation in it passes through this object, so the local view is complete (live)
        without a feed."""
        self._store = store
        self._private = private
        self._local = store if isinstance(store, MemoryStore) else None
        """The memory store, read without awaiting (it does no I/O)."""
        self._skew = settings.clock_skew
        self._clock = settings.clock
        self._serve_on_outage = settings.store_outage == "serve"
        self.view = RevocationView()
        self._undelivered: dict[str, float] = {}
        """Revoked here (or known here), not yet in the store: session ID → until when."""
        self._delivery = BackgroundJob(self._deliver)
        feed = store.feed()
        self._follow: BackgroundJob | None = None
        if feed is not None:
            view = self.view

            async def follow() -> None:
                await feed.follow(REVOKED, self._loaded, view.added, view.lost)

            self._follow = BackgroundJob(follow)

    def start(self) -> None:
        """Follow the store's revocations (needs a running event loop; idempotent)."""
        if self._private:
            self.view.ready({})
        if self._follow is not None:
            self._follow.start()

    async def stop(self) -> None:
        if self._follow is not None:
            await self._follow.stop()
        await self._delivery.stop()
        if self._undelivered:
            log.error(
                "saml-gate stopped with %d sign-out(s) the store never received: other gates"
                " do not know them",
                len(self._undelivered),
                extra={"event": "revocations_undelivered", "sessions": len(self._undelivered)},
            )
        self.view.lost()

    def _loaded(self, snapshot: dict[str, float]) -> None:
        """The feed loaded the store's set: the view takes it, and gives back what the store
        lacks (lost by the store, or revoked here while it was unreachable)."""
        self.view.ready(snapshot)
        now = self._clock()
        missing = {
            sid: until
            for sid, until in self.view.revoked.items()
            if until > now and sid not in snapshot
        }
        if missing:
            self._undeliverable(missing, "the store lacks them")

    def registration(self, user: SamlUser, now: float, replaces: str | None = None) -> list[Write]:
        """What a new session writes: its entry in the subject index (for IdP-initiated logout),
        in its email's index (Universal Logout) and in the ``sessions`` index. ``replaces``:
        the session it re-asserts."""
        member = _Entry.member(user.session_id, user.expires_at, user.session_index)
        ttl = user.expires_at - now + self._skew
        u = user
        record = SessionRecord.text(
            u.session_id, u.name_id, u.issuer, u.session_index, u.expires_at, replaces
        )
        writes: list[Write] = [AddMember(_subject_key(user.issuer, user.name_id), member, ttl)]
        if user.email:
            writes.append(AddMember(_email_key(user.email), member, ttl))
        writes.append(Announce(SESSIONS, record, user.expires_at + self._skew, publish=False))
        return writes

    async def is_revoked(self, user: SamlUser) -> bool:
        """Whether the session was ended. The local view first, always: what it holds is
        revoked, whatever the store says or fails to say. While the view is live, its answer
        is complete (no round trip); else the store is asked. When the store is unreachable,
        ``store_outage`` decides about what this process cannot know: "serve" answers False
        (the outage itself is logged by the store guard), "refuse" lets
        :class:`StoreUnavailable` through."""
        known = self.known(user)
        if known is not None:
            return known
        try:
            return await self._store.expiry(REVOKED, user.session_id) is not None
        except StoreUnavailable:
            if self._serve_on_outage:
                return False
            raise

    def known(self, user: SamlUser) -> bool | None:
        """Whether the session was ended, as far as this process knows without I/O: the local
        view (complete while live), or the memory store, which is this process's own; None
        when only the store can tell."""
        view = self.view
        if user.session_id in view.revoked:
            return True
        if view.live:
            return False
        local = self._local
        if local is not None:
            return local.expiry_now(REVOKED, user.session_id) is not None
        return None

    async def revoke(self, user: SamlUser, now: float) -> None:
        """End one session (local sign-out)."""
        entry = _Entry(user.session_id, user.expires_at, user.session_index)
        member = (entry.encode(),)
        indexes = [RemoveMembers(_subject_key(user.issuer, user.name_id), member)]
        if user.email:
            indexes.append(RemoveMembers(_email_key(user.email), member))
        await self._revoke([entry], now, indexes)

    async def revoke_subject(
        self, issuer: str, name_id: str, session_indexes: Collection[str], now: float
    ) -> int:
        """End the subject's sessions with one of ``session_indexes`` (all of them when it is
        empty), as a LogoutRequest asks. Returns how many were ended."""
        return await self._revoke_indexed(_subject_key(issuer, name_id), session_indexes, now)

    async def revoke_person(self, issuer: str, name_id: str, now: float) -> int:
        """End every session of a person (the IdP's ``issuer`` and the NameID) on every gate
        sharing the store. Returns how many were live."""
        return await self._revoke_indexed(_subject_key(issuer, name_id), (), now)

    async def revoke_email(self, email: str, now: float) -> int:
        """End every session whose person has this email (compared case-folded) on every gate
        sharing the store. Returns how many were live."""
        return await self._revoke_indexed(_email_key(email), (), now)

    async def _revoke_indexed(self, key: str, session_indexes: Collection[str], now: float) -> int:
        """End the sessions the index at ``key`` holds (those with one of ``session_indexes``
        when it is not empty), and take them out of it."""
        chosen: list[_Entry] = []
        ended: list[str] = []
        for member in await self._store.members(key):
            entry = _Entry.decode(member)
            if entry is None or (session_indexes and entry.session_index not in session_indexes):
                continue
            chosen.append(entry)
            ended.append(member)
        return await self._revoke(chosen, now, [RemoveMembers(key, tuple(ended))])

    async def revoke_sessions(self, records: Collection[SessionRecord], now: float) -> int:
        """End these sessions (session administration). Returns how many were live."""
        entries = [_Entry(r.session_id, r.expires_at, r.session_index) for r in records]
        removals = [
            RemoveMembers(_subject_key(r.issuer, r.name_id), (e.encode(),))
            for r, e in zip(records, entries, strict=True)
        ]
        return await self._revoke(entries, now, removals)

    async def revoke_ids(self, until: dict[str, float], now: float) -> int:
        """End these credentials (ID → when each would have expired) on every gate, pushed as
        a sign-out is (gate service tokens: :mod:`saml_gate.session.gate_tokens`)."""
        return await self._revoke([_Entry(i, t, None) for i, t in until.items()], now, [])

    async def revoked_now(self, now: float) -> dict[str, float]:
        """The revoked IDs still live, with their end (one round trip)."""
        return await self._store.expiring(REVOKED, now)

    async def live_sessions(self, now: float) -> list[SessionRecord]:
        """Sessions signed in and neither expired nor revoked (one or two round trips)."""
        records = await self._store.expiring(SESSIONS, now)
        revoked = await self.revoked_now(now) if records else {}
        found = [r for r in map(SessionRecord.decode, records) if r is not None]
        replaced = {r.replaces for r in found}  # re-asserted: the new session stands for it
        return [
            r
            for r in found
            if r.expires_at > now and r.session_id not in revoked and r.session_id not in replaced
        ]

    async def _revoke(self, entries: list[_Entry], now: float, also: Sequence[Write]) -> int:
        """Revoke until each session would have expired anyway, published to every process in
        the same step; how many were still live. This process knows at once, whatever the
        store does: when it is unreachable, the revocation holds here, is written as soon as
        it is back, and :class:`StoreUnavailable` tells the caller it is not shared yet."""
        live = [e for e in entries if e.expires_at > now]
        until = {e.session_id: e.expires_at + self._skew for e in live}
        for sid, when in until.items():
            self.view.added(sid, when, now)
        try:
            await self._store.write(
                [*(Announce(REVOKED, sid, when) for sid, when in until.items()), *also]
            )
        except StoreUnavailable:
            if until:
                self._undeliverable(until, "the store is unreachable")
            raise
        return len(live)

    def _undeliverable(self, revoked: dict[str, float], why: str) -> None:
        """Keep ``revoked`` for :meth:`_deliver` (needs a running event loop)."""
        for sid, until in revoked.items():
            self._undelivered[sid] = max(until, self._undelivered.get(sid, 0.0))
        log.error(
            "saml-gate holds %d sign-out(s) that only this process enforces (%s): they are"
            " written to the store, and so reach the other gates, as soon as it takes writes",
            len(revoked),
            why,
            extra={"event": "revocations_undelivered", "sessions": len(revoked)},
        )
        self._delivery.start()

    async def _deliver(self) -> None:
        """Write the undelivered revocations until the store has taken them all (a background
        job, started again whenever there is something to write)."""
        while self._undelivered:
            now = self._clock()
            batch = {sid: t for sid, t in self._undelivered.items() if t > now}
            try:
                if batch:
                    await self._store.write([Announce(REVOKED, s, t) for s, t in batch.items()])
            except StoreUnavailable:
                raise_if_cancelled()  # a stop the store's client turned into an outage
                await anyio.sleep(DELIVERY_RETRY)
                continue
            for sid, until in list(self._undelivered.items()):
                if until <= now or batch.get(sid) == until:
                    del self._undelivered[sid]
            if batch:
                log.warning(
                    "saml-gate wrote %d sign-out(s) the store had missed: every gate enforces"
                    " them again",
                    len(batch),
                    extra={"event": "revocations_delivered", "sessions": len(batch)},
                )
