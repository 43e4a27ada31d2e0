"""Settings of what upstreams are told, declared: the identity headers (proxy mode and
forward-auth), the signed identity JWT every upstream receives, and which hosts a sign-in may
return to (forward-auth, ``return_to`` URLs).

:class:`~saml_gate.config.settings.GateSettings` inherits the group (see
:mod:`saml_gate.config.declaration`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from saml_gate.config import checks
from saml_gate.config.declaration import SECONDS, setting
from saml_gate.config.kinds import TEXTS

#: The identity headers' names unless renamed: the NameID, the email, the groups.
DEFAULT_IDENTITY_HEADERS: Final = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups")
_RENAME: Final = " (proxy mode and forward-auth; empty turns it off)"


@dataclass(frozen=True, kw_only=True)
class IdentityFields:
    """The identity headers, the identity JWT, and sign-in for other hosts."""

    GROUP: ClassVar[str] = "identity"
    TITLE: ClassVar[str] = (
        "What upstreams are told: identity headers, the identity JWT, other hosts"
    )

    user_header: str = setting(
        DEFAULT_IDENTITY_HEADERS[0],
        help="the header telling the upstream the person's NameID" + _RENAME,
        check=checks.header_name,
    )
    email_header: str = setting(
        DEFAULT_IDENTITY_HEADERS[1],
        help="the header telling the upstream the person's email" + _RENAME,
        check=checks.header_name,
    )
    groups_header: str = setting(
        DEFAULT_IDENTITY_HEADERS[2],
        help="the header telling the upstream the person's groups, comma-separated" + _RENAME,
        check=checks.header_name,
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        help="hosts a sign-in may return to besides `base_url`'s (`/saml/login?return_to=`"
        " an absolute URL; forward-auth): `app.example.com`, `app.example.com:8443`, or"
        " `*.example.com` (its subdomains); with `cookie_domain` one sign-in covers them",
        flag="--allowed-host",
        flag_help="a host a sign-in may return to: app.example.com, *.example.com",
        check=checks.host_patterns,
    )
    forward_auth: bool = setting(
        False,
        help="serve `/saml/auth`, the forward-auth endpoint nginx, Caddy and Traefik ask about"
        " each request (on with `saml-gate forward-auth`); off, it answers 404, so that a"
        " tunnel's loopback agent cannot make every internet client a trusted proxy",
    )
    jwt_header: str = setting(
        "X-Saml-Gate-Jwt",
        help="the request header carrying the signed identity JWT to the app or upstream"
        " (middleware, proxy, forward-auth); empty turns it off",
        check=checks.header_name,
    )
    jwt_audience: str = setting(
        "",
        help="the identity JWT's `aud` claim",
        shown_default="`base_url`",
    )
    jwt_keys: tuple[str, ...] = setting(
        (),
        help="private keys (PEM text or files; EC P-256 signs ES256, RSA signs RS256) for the"
        " identity JWT: the first signs, all are published at `/saml/jwks.json` (rotation)",
        kind=TEXTS,
        compare=False,
        shown_default="EC key generated in `state_dir`",
    )
    jwt_lifetime: float = setting(
        120.0,
        help="seconds an identity JWT is valid (each session's is re-signed near its expiry)",
        range=(30, 600),
        unit=SECONDS,
    )
