"""A signed-in person's admissions, kept for their next requests: the hot path of the decision.

An :class:`~saml_gate.web.gatekeeper.Admit` for a session cookie depends on the Cookie header
(which session: the one header, as sent; a request with several is always decided in full),
the policy in force, the IdP trusted, the request line and host (:data:`Line`: what the
policy decides on; the identity JWT names the host's app), and time: the session's absolute
and idle ends and its refresh, the re-assertion deadline, the rules' ``max_authn_age`` and
the identity JWT's renewal. An admission is kept per session and line until the first of
those times, and given again only for the same Cookie header and line while the policy in
force and the SAML state in use (the IdP trusted) are the very objects it was decided under
and this process knows without I/O that the session is not revoked
(:meth:`~saml_gate.session.revocation.Revocations.known`): otherwise the request is decided
anew, every check run. Only plain requests are kept (see :meth:`Gatekeeper.decide_at_once
<saml_gate.web.gatekeeper.Gatekeeper.decide_at_once>`): no ``Authorization`` or method
override header, not a POST (whose body may override the method). Refusals and sign-ins are
never kept; neither is an Admit that refreshes the cookie or comes from a bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from saml_gate.policy import AccessPolicy
from saml_gate.session.revocation import Revocations
from saml_gate.user import SamlUser

if TYPE_CHECKING:
    from saml_gate.runtime.saml_state import LiveSaml, SamlState

#: Sessions (Cookie headers, about 1.3 KB each with their first line) and request lines kept
#: at most, over all sessions; all are dropped when either is full.
KEPT_SESSIONS: Final = 2048
KEPT_LINES: Final = 8192
#: Longer Cookie headers are not kept (the memory kept stays under a few MB).
KEPT_HEADER_MAX: Final = 2048

#: What a plain request's decision reads besides its session: the path the app routes, the
#: host as named, the scheme given (forward-auth), whether the JWT is for the origin served,
#: the method, the raw path and the query string.
Line = tuple[str, str | None, str | None, bool, str | None, bytes | None, bytes | None]

T = TypeVar("T")


@dataclass(slots=True)
class _Session(Generic[T]):
    user: SamlUser
    policy: AccessPolicy
    trusted: SamlState
    lines: dict[Line, tuple[T, float]]


class KeptAdmits(Generic[T]):
    """Admissions by Cookie header and request line (see the module docstring)."""

    def __init__(self, revocations: Revocations, saml: LiveSaml) -> None:
        """``saml``: the SAML state in use, whose IdP sessions must come from."""
        self._revocations = revocations
        self._saml = saml
        self._kept: dict[bytes, _Session[T]] = {}
        self._lines = 0

    def __len__(self) -> int:
        """Request lines kept (at most :data:`KEPT_LINES`)."""
        return sum(len(session.lines) for session in self._kept.values())

    def get(self, cookie_header: bytes, line: Line, policy: AccessPolicy, now: float) -> T | None:
        """The verdict kept for this request, or None: decide it."""
        session = self._kept.get(cookie_header)
        if (
            session is None
            or session.policy is not policy
            or session.trusted is not self._saml.current
        ):
            return None
        kept = session.lines.get(line)
        if kept is None or now >= kept[1] or self._revocations.known(session.user) is not False:
            return None
        return kept[0]

    def keep(
        self,
        cookie_header: bytes,
        line: Line,
        verdict: T,
        user: SamlUser,
        policy: AccessPolicy,
        until: float,
    ) -> None:
        """Keep ``verdict``, just decided for this request under ``policy``, until ``until`` at
        the latest. Not kept when the IdP now trusted is not the session's (a metadata refresh
        while the session was read)."""
        trusted = self._saml.current
        if (
            len(cookie_header) > KEPT_HEADER_MAX
            or trusted is None
            or user.issuer != trusted.idp.entity_id
        ):
            return
        kept = self._kept
        session = kept.get(cookie_header)
        if self._lines >= KEPT_LINES or (session is None and len(kept) >= KEPT_SESSIONS):
            kept.clear()
            self._lines = 0
            session = None
        if session is None or session.policy is not policy or session.trusted is not trusted:
            session = kept[cookie_header] = _Session(user, policy, trusted, {})
        self._lines += 1
        session.lines[line] = (verdict, until)
