"""OAuth access tokens of a trusted authorization server (Okta API Access Management, or any
issuer publishing a JWKS) as a service principal.

The JOSE checks are :class:`~saml_gate.identity.remote_jwt.RemoteJwtVerifier`'s (the header,
an asymmetric algorithm of ``access_token_algorithms``, the key's fitness, signature, ``iss``,
``aud``, times); this module says what a valid token stands for: ``sub`` verbatim as the
principal's identity, the values of ``access_token_groups_claim`` verbatim as groups, plus the
groups ``access_token_scope_groups`` gives its scopes (Okta's ``scp`` list, or the standard
space-separated ``scope``), and the client (``cid``, ``client_id`` or ``azp``) as the token's
name. A verified token is kept in this process until it expires, by its SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from saml_gate.identity.remote_jwt import JwtRefused, JwtRules, KeySource, RemoteJwtVerifier
from saml_gate.user import SamlUser

_CACHE_SIZE: Final = 10_000
_CLIENT_CLAIMS: Final = ("cid", "client_id", "azp")


class AccessTokens:
    """Checks access tokens and maps their claims to a service principal."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audiences: tuple[str, ...],
        algorithms: tuple[str, ...],
        groups_claim: str,
        scope_groups: Mapping[str, tuple[str, ...]],
        leeway: float,
        clock: Callable[[], float],
    ) -> None:
        """Raises ValueError for an algorithm that is not asymmetric."""
        rules = JwtRules(
            issuers=(issuer,),
            audiences=audiences,
            leeway=leeway,
            algorithms=algorithms,
            require=("iss", "aud", "exp", "sub"),
        )
        self._verifier = RemoteJwtVerifier(keys, rules, clock)
        self._groups_claim = groups_claim
        self._scope_groups = scope_groups
        self._clock = clock
        self._seen: dict[str, SamlUser] = {}

    async def principal(self, token: str) -> SamlUser:
        """The service the token stands for, or :class:`JwtRefused`."""
        hashed = hashlib.sha256(token.encode()).hexdigest()
        user = self._seen.get(hashed)
        if user is not None:
            if self._clock() < user.expires_at:
                return user
            del self._seen[hashed]
        claims = await self._verifier.verify(token)
        user = self._user(claims, hashed)
        if len(self._seen) >= _CACHE_SIZE:
            self._seen.clear()
        self._seen[hashed] = user
        return user

    def _user(self, claims: Mapping[str, Any], hashed: str) -> SamlUser:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise JwtRefused("invalid", "sub is not a non-empty string")
        groups = list(_strings(claims.get(self._groups_claim)))
        scopes = claims.get("scp", claims.get("scope"))
        for scope in scopes.split() if isinstance(scopes, str) else _strings(scopes):
            groups.extend(self._scope_groups.get(scope, ()))
        client = next(
            (c for c in (claims.get(n) for n in _CLIENT_CLAIMS) if isinstance(c, str) and c), None
        )
        iat = claims.get("iat")
        issued = float(iat) if isinstance(iat, int | float) else self._clock()
        return SamlUser(
            name_id=subject,
            email=None,
            name=client or subject,
            groups=tuple(dict.fromkeys(groups)),
            issuer=str(claims["iss"]),
            authenticated_at=issued,
            expires_at=float(claims["exp"]),
            session_id="jwt:" + hashed[:32],
            asserted_at=issued,
            kind="service",
            token_name=client,
        )


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()
