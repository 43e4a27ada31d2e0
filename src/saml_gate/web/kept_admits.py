"""A signed-in person's admission, kept for their next requests: the hot path of the decision.

An :class:`~saml_gate.web.gatekeeper.Admit` for a session cookie depends on the Cookie header
(which session: the one header, as sent; a request with several is always decided in full),
the policy in force, the deciding rule (the same object for the same method, path and host
while that policy is in force), the host, whether the JWT is for the origin served, and time:
the session's absolute and idle ends and its refresh, the re-assertion deadline, the rules'
``max_authn_age`` and the identity JWT's renewal. It is kept until the first of those
times and given again only when every other input is the same object, the session's IdP is
still the one trusted, and this process knows without I/O that the session is not revoked
(:meth:`~saml_gate.session.revocation.Revocations.known`): otherwise the request is decided
anew, every check run. Refusals and sign-ins are never kept; neither is an Admit that refreshes
the cookie or comes from a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from saml_gate.policy import AccessPolicy, Decision
from saml_gate.policy.hosts import AppHost
from saml_gate.session.revocation import Revocations
from saml_gate.user import SamlUser

#: Cookie headers kept at most (one per signed-in browser); all are dropped when it is full.
KEPT_SIZE: Final = 2048
#: Longer Cookie headers are not kept (the memory kept stays under a few MB).
KEPT_HEADER_MAX: Final = 2048

T = TypeVar("T")


@dataclass(slots=True)
class _Kept(Generic[T]):
    verdict: T
    user: SamlUser
    policy: AccessPolicy
    rule: Decision
    host: AppHost
    own_origin: bool
    until: float


class KeptAdmits(Generic[T]):
    """Admissions by Cookie header (see the module docstring)."""

    def __init__(self, revocations: Revocations, issuer: Callable[[], str]) -> None:
        """``issuer``: the entity ID of the IdP trusted now."""
        self._revocations = revocations
        self._issuer = issuer
        self._kept: dict[bytes, _Kept[T]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(
        self,
        cookie_header: bytes,
        policy: AccessPolicy,
        rule: Decision,
        host: AppHost,
        own_origin: bool,
        now: float,
    ) -> T | None:
        """The verdict kept for this request, or None: decide it."""
        kept = self._kept.get(cookie_header)
        if (
            kept is None
            or now >= kept.until
            or kept.rule is not rule
            or kept.host is not host
            or kept.policy is not policy
            or kept.own_origin is not own_origin
            or self._revocations.known(kept.user) is not False
            or kept.user.issuer != self._issuer()
        ):
            return None
        return kept.verdict

    def keep(
        self,
        cookie_header: bytes,
        verdict: T,
        user: SamlUser,
        policy: AccessPolicy,
        rule: Decision,
        host: AppHost,
        own_origin: bool,
        until: float,
    ) -> None:
        """Keep ``verdict``, just decided for this request, until ``until`` at the latest."""
        if len(cookie_header) > KEPT_HEADER_MAX:
            return
        kept = self._kept
        if len(kept) >= KEPT_SIZE:
            kept.clear()
        kept[cookie_header] = _Kept(verdict, user, policy, rule, host, own_origin, until)
