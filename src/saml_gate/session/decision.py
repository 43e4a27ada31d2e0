"""Whether a request carries a live session: decided in one place, from its Cookie header.

The middleware (every gated request), ``/session``, ``/status`` and ``/logout`` all ask
:meth:`Authenticator.authenticate`, so they cannot disagree about who is signed in. A request
carrying more than one session cookie is refused (:class:`DuplicateSession`), never decided on
one of them.
"""

from __future__ import annotations

import math
from typing import Literal

from saml_gate.errors import GateError
from saml_gate.session.cookies import AmbiguousCookie, only_cookie
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import Session, SessionCodec
from saml_gate.user import SamlUser

#: Why a request is, or is not, signed in. Only "valid" lets anyone in.
Outcome = Literal["valid", "absent", "invalid", "expired", "idle", "revoked"]


def reassertion_deadline(user: SamlUser, reassert_interval: float) -> float:
    """When the IdP's word on a session runs out (``reassert_interval`` after it last vouched):
    from then on nothing is served until it vouches again. A service (a bearer token) is never
    re-asserted: its token's expiry and revocation end it."""
    if user.is_service:
        return math.inf
    return user.asserted_at + reassert_interval


class DuplicateSession(GateError):
    """401 ``duplicate_session``: the request carries the session cookie more than once, with
    different values.

    A sibling subdomain can plant its own session on a longer path (``Path=/admin``), which the
    browser sends first: taking either one would let it choose who the person is (login CSRF).
    The answer deletes the cookie under every domain and path that can have sent it, so that
    the person can sign in again; ``target`` is the (hosts, raw path) the browser asked for
    when that is not the request's own (forward-auth)."""

    def __init__(self) -> None:
        super().__init__("duplicate_session", "the request carries more than one session cookie")
        self.target: tuple[tuple[str, ...], str] | None = None


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
        data is gone from the store). Raises :class:`DuplicateSession` for more than one
        session cookie, :class:`~saml_gate.store.StoreUnavailable` when the store is needed
        and unreachable. On the hot path: a cached decode, no dict built.
        """
        raw = self._value(cookie_header)
        if not raw:
            return None, "absent"
        session = self._codec.cached(raw) or await self._codec.load(raw)
        if session is None:
            return None, "invalid"
        state = self._codec.state(session, now)
        if state != "valid":
            return session, state
        revoked = self._revocations.known(session.user)  # no await on the hot path
        if revoked is None:
            revoked = await self._revocations.is_revoked(session.user)
        return (session, "revoked") if revoked else (session, "valid")

    async def live_session(self, cookie_header: str | None, now: float) -> Session | None:
        """The session when it lets its holder in ("valid"), else None."""
        session, outcome = await self.authenticate(cookie_header, now)
        return session if outcome == "valid" else None

    def identity(self, cookie_header: str | None) -> Session | None:
        """The session a cookie names, valid or not, without asking the store (who it is);
        None when there is none, or more than one."""
        try:
            raw = self._value(cookie_header)
        except DuplicateSession:
            return None
        return self._codec.decode(raw) if raw else None

    def _value(self, cookie_header: str | None) -> str | None:
        if cookie_header is None:
            return None
        try:
            return only_cookie(cookie_header, self._name)
        except AmbiguousCookie:
            raise DuplicateSession() from None
