"""Whether a request carries a live session: decided in one place, from its Cookie header.

The middleware (every gated request), ``/session``, ``/status`` and ``/logout`` all ask
:meth:`Authenticator.authenticate`, so they cannot disagree about who is signed in.
"""

from __future__ import annotations

from typing import Literal

from saml_gate.session.cookies import find_cookie
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import Session, SessionCodec

#: Why a request is, or is not, signed in. Only "valid" lets anyone in.
Outcome = Literal["valid", "absent", "invalid", "expired", "idle", "revoked"]


class Authenticator:
    """Reads the session cookie, then its lifetime and revocation, in that order."""

    def __init__(self, codec: SessionCodec, revocations: Revocations) -> None:
        self._codec = codec
        self._revocations = revocations
        self._name = codec.name

    async def authenticate(
        self, cookie_header: str | None, now: float
    ) -> tuple[Session | None, Outcome]:
        """(the session, the outcome) for a request's Cookie header.

        The session is the cookie's for "valid", "expired", "idle" and "revoked" (to tell whose
        it was), None for "absent" (no session cookie) and "invalid" (not one of ours, or its
        data is gone from the store). Raises :class:`~saml_gate.store.StoreUnavailable` when
        the store is needed and unreachable. On the hot path: a cached decode, no dict built.
        """
        raw = self._value(cookie_header)
        if not raw:
            return None, "absent"
        session = await self._codec.load(raw)
        if session is None:
            return None, "invalid"
        state = self._codec.state(session, now)
        if state != "valid":
            return session, state
        if await self._revocations.is_revoked(session.user):
            return session, "revoked"
        return session, "valid"

    async def live_session(self, cookie_header: str | None, now: float) -> Session | None:
        """The session when it lets its holder in ("valid"), else None."""
        session, outcome = await self.authenticate(cookie_header, now)
        return session if outcome == "valid" else None

    def identity(self, cookie_header: str | None) -> Session | None:
        """The session a cookie names, valid or not, without asking the store (who it is)."""
        raw = self._value(cookie_header)
        return self._codec.decode(raw) if raw else None

    def _value(self, cookie_header: str | None) -> str | None:
        return find_cookie(cookie_header, self._name) if cookie_header is not None else None
