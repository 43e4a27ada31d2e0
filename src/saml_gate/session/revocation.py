"""Ending sessions before their cookie does: revocations, and the subject index SLO needs.

A session cookie stays valid until it expires, so ending a session early means remembering its
ID as revoked until then (``revoked:<session id>``); every gated request checks that key. The
IdP's LogoutRequest names a subject (NameID, maybe SessionIndexes) rather than our session IDs,
so every sign-in also adds its session to the set ``subject:<hash of issuer and NameID>``;
IdP-initiated logout revokes the members that match. Both live in the shared store, so a
sign-out seen by one worker ends the session in all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from saml_gate.config.groups import StoreSettings, TimingSettings
from saml_gate.store import Store, StoreUnavailable
from saml_gate.user import SamlUser


@dataclass(frozen=True)
class _Entry:
    session_id: str
    expires_at: float
    session_index: str | None

    def encode(self) -> str:
        return json.dumps([self.session_id, round(self.expires_at), self.session_index])

    @classmethod
    def decode(cls, member: str) -> _Entry | None:
        try:
            session_id, expires_at, session_index = json.loads(member)
            return cls(str(session_id), float(expires_at), session_index)
        except (ValueError, TypeError):
            return None


def _subject_key(issuer: str, name_id: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{name_id}".encode()).hexdigest()[:40]
    return "subject:" + digest


class RevocationSettings(StoreSettings, TimingSettings, Protocol):
    """What Revocations read: the outage policy, and the clock skew its entries outlive."""


class Revocations:
    def __init__(self, store: Store, settings: RevocationSettings) -> None:
        self._store = store
        self._skew = settings.clock_skew
        self._serve_on_outage = settings.store_outage == "serve"

    async def register(self, user: SamlUser, now: float) -> None:
        """Index a new session under its subject, for IdP-initiated logout."""
        entry = _Entry(user.session_id, user.expires_at, user.session_index)
        await self._store.add_member(
            _subject_key(user.issuer, user.name_id),
            entry.encode(),
            user.expires_at - now + self._skew,
        )

    async def is_revoked(self, user: SamlUser) -> bool:
        """Whether the session was ended. When the store is unreachable, ``store_outage``
        decides: "serve" answers False (the outage itself is logged by the store guard),
        "refuse" lets :class:`StoreUnavailable` through."""
        try:
            return await self._store.contains("revoked:" + user.session_id)
        except StoreUnavailable:
            if self._serve_on_outage:
                return False
            raise

    async def revoke(self, user: SamlUser, now: float) -> None:
        """End one session (local sign-out)."""
        entry = _Entry(user.session_id, user.expires_at, user.session_index)
        await self._revoke(entry, now)
        await self._store.remove_members(_subject_key(user.issuer, user.name_id), [entry.encode()])

    async def revoke_subject(
        self, issuer: str, name_id: str, session_indexes: Collection[str], now: float
    ) -> int:
        """End the subject's sessions with one of ``session_indexes`` (all of them when it is
        empty), as a LogoutRequest asks. Returns how many were ended."""
        key = _subject_key(issuer, name_id)
        ended: list[str] = []
        live = 0
        for member in await self._store.members(key):
            entry = _Entry.decode(member)
            if entry is None or (session_indexes and entry.session_index not in session_indexes):
                continue
            live += await self._revoke(entry, now)
            ended.append(member)
        await self._store.remove_members(key, ended)
        return live

    async def _revoke(self, entry: _Entry, now: float) -> bool:
        """Revoke until the session would have expired anyway; False if it already has."""
        if entry.expires_at <= now:
            return False
        ttl = entry.expires_at - now + self._skew
        await self._store.put("revoked:" + entry.session_id, "1", ttl)
        return True
