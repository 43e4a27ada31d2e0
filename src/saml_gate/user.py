"""Who calls, as the app sees it: ``scope["user"]`` and ``scope["auth"]``: a person signed in
through the IdP (``kind == "person"``), or a service that presented a bearer token
(``kind == "service"``: a gate service token or an IdP access token, ``token_name`` naming it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from starlette.authentication import BaseUser

PrincipalKind = Literal["person", "service"]


@dataclass(frozen=True, eq=False)
class SamlUser(BaseUser):
    """A Starlette user built from a verified assertion (through the session cookie)."""

    name_id: str
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    name_id_format: str | None = None
    session_index: str | None = None
    issuer: str = ""
    authenticated_at: float = 0.0
    expires_at: float = 0.0
    """When the session ends at the latest (absolute timeout or the IdP's SessionNotOnOrAfter)."""
    session_id: str = ""
    authn_context: str | None = None
    """The AuthnContextClassRef of the sign-in (e.g. Okta's PasswordProtectedTransport)."""
    asserted_at: float = 0.0
    """When the IdP last vouched for this session, by the gate's clock: its sign-in, or its
    last re-assertion (``reassert_interval``)."""
    kind: PrincipalKind = "person"
    """``"person"``: signed in through the IdP (a session); ``"service"``: a bearer token."""
    token_name: str | None = None
    """A service's token: the gate token's name, or the IdP access token's client ID."""

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.name_id

    @property
    def identity(self) -> str:
        return self.name_id

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)

    @cached_property
    def auth_scopes(self) -> tuple[str, ...]:
        """The scopes of ``scope["auth"]`` (Starlette's ``AuthCredentials``):
        ``"authenticated"`` and ``"group:<name>"`` for each group, verbatim; built once per
        user object (the gate keeps a session's object while the session is unchanged)."""
        return ("authenticated", *("group:" + g for g in self.groups))

    def in_group(self, *groups: str) -> bool:
        return any(g in self.groups for g in groups)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what ``/saml/session`` returns)."""
        return {
            "name_id": self.name_id,
            "name_id_format": self.name_id_format,
            "email": self.email,
            "name": self.name,
            "groups": list(self.groups),
            "attributes": {k: list(v) for k, v in self.attributes.items()},
            "issuer": self.issuer,
            "authenticated_at": _iso(self.authenticated_at),
            "authn_context": self.authn_context,
            "expires_at": _iso(self.expires_at),
            "asserted_at": _iso(self.asserted_at),
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
