"""The identity JWT of a signed-in person, cached per session.

Claims: ``iss`` (``base_url``), ``aud`` (the app's: see below), ``sub`` (the
NameID, verbatim), ``email``, ``groups``, ``iat``, ``exp``, ``sid`` (the gate's session id) and
``principal`` (``person``, or ``service`` for a bearer token, whose name is ``token_name``),
with ``kid`` in the header. A token lives ``jwt_lifetime`` seconds (never past the session's
end) and is re-signed once less than a quarter of that is left, so the hot path costs one dict
lookup per request and one signature per session every few minutes; an upstream always
receives a token with at least a quarter of its lifetime ahead.

``aud`` names the app the token is for, so that a token one app receives fails at another:
``jwt_audience`` (default ``base_url``) for the app on base_url's host, the origin of the app
being served (``https://grafana.acme.example``) on any other host and always in forward-auth,
or the ``audience`` of the rule deciding the request. Tokens are cached per session and
audience.
"""

from __future__ import annotations

from typing import Any, Final

import jwt

from saml_gate.config.settings import GateSettings
from saml_gate.identity.keys import JwtKey, jwks
from saml_gate.user import SamlUser

#: Where the middleware leaves the JWT of a request it lets through (the proxy forwards it).
JWT_SCOPE_KEY: Final = "saml_gate.jwt"
#: Cached tokens kept at most (one per live session); beyond it, expired ones are dropped first.
CACHE_SIZE: Final = 10_000


def jwt_header_name(settings: GateSettings) -> bytes:
    """The identity JWT's request header as ASGI spells it (lower-case bytes); empty when off."""
    return settings.jwt_header.lower().encode()


class IdentityTokens:
    """Signs (and caches) the identity JWT of each session with the first key. The keys are
    loaded at start-up (:meth:`use_keys`), not when the gate is built."""

    def __init__(self, settings: GateSettings) -> None:
        self._keys: tuple[JwtKey, ...] = ()
        self._jwks: dict[str, Any] = {"keys": []}
        self._issuer = settings.base_url
        self._audience = settings.jwt_audience or settings.base_url
        self._lifetime = int(settings.jwt_lifetime)
        self._renew_before = self._lifetime / 4
        self._cache: dict[tuple[str, str], tuple[bytes, float]] = {}

    def use_keys(self, keys: tuple[JwtKey, ...]) -> None:
        """The keys: the first signs, all are published (:attr:`jwks`)."""
        self._keys = keys
        self._jwks = jwks(keys)

    @property
    def keys(self) -> tuple[JwtKey, ...]:
        """The keys in use, the signing one first (none before start-up)."""
        return self._keys

    @property
    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of the keys (``/saml/jwks.json``)."""
        return self._jwks

    @property
    def default_audience(self) -> str:
        """The ``aud`` of the app on base_url's host (``jwt_audience``, default base_url)."""
        return self._audience

    def token(self, user: SamlUser, now: float, audience: str | None = None) -> bytes:
        """The JWT for ``user`` (ASCII bytes, ready as a header value) for the app named
        ``audience`` (None: :attr:`default_audience`)."""
        return self.token_until(user, now, audience)[0]

    def token_until(
        self, user: SamlUser, now: float, audience: str | None = None
    ) -> tuple[bytes, float]:
        """:meth:`token`, and until when it is the token :meth:`token` gives (before it is
        re-signed: the caller may keep it that long)."""
        audience = audience or self._audience
        key = (user.session_id or user.name_id, audience)
        cached = self._cache.get(key)
        renew_before = self._renew_before
        if cached is not None and cached[1] - now > renew_before:
            return cached[0], cached[1] - renew_before  # fresh enough: the hot path
        session_end = int(user.expires_at) or int(now) + self._lifetime
        if cached is not None and now < cached[1] >= session_end:
            return cached[0], now  # valid as long as the session itself: kept no longer
        issued = int(now)
        expires = max(issued + 1, min(issued + self._lifetime, session_end))
        claims = {
            "iss": self._issuer,
            "aud": audience,
            "sub": user.name_id,
            "email": user.email,
            "groups": list(user.groups),
            "iat": issued,
            "exp": expires,
            "sid": user.session_id,
            "principal": user.kind,
        }
        if user.token_name is not None:
            claims["token_name"] = user.token_name
        signing = self._keys[0]  # loaded at start-up, before any request is decided
        token = jwt.encode(
            claims, signing.private, algorithm=signing.algorithm, headers={"kid": signing.kid}
        ).encode("ascii")
        if len(self._cache) >= CACHE_SIZE:
            self._evict(now)
        self._cache[key] = (token, float(expires))
        return token, expires - renew_before

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._cache.items() if exp - now <= self._renew_before]:
            del self._cache[key]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
