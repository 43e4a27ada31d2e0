"""The identity JWT of a signed-in person, cached per session.

Claims: ``iss`` (``base_url``), ``aud`` (``jwt_audience``, default ``base_url``), ``sub`` (the
NameID, verbatim), ``email``, ``groups``, ``iat``, ``exp`` and ``sid`` (the gate's session id),
with ``kid`` in the header. A token lives ``jwt_lifetime`` seconds (never past the session's
end) and is re-signed once less than a quarter of that is left, so the hot path costs one dict
lookup per request and one signature per session every few minutes; an upstream always
receives a token with at least a quarter of its lifetime ahead.
"""

from __future__ import annotations

from typing import Final

import jwt

from saml_gate.config.settings import GateSettings
from saml_gate.identity.keys import JwtKey
from saml_gate.user import SamlUser

#: Where the middleware leaves the JWT of a request it lets through (the proxy forwards it).
JWT_SCOPE_KEY: Final = "saml_gate.jwt"
#: Cached tokens kept at most (one per live session); beyond it, expired ones are dropped first.
CACHE_SIZE: Final = 10_000


class IdentityTokens:
    """Signs (and caches) the identity JWT of each session with the first key."""

    def __init__(self, settings: GateSettings, keys: tuple[JwtKey, ...]) -> None:
        self._key = keys[0]
        self._issuer = settings.base_url
        self._audience = settings.jwt_audience or settings.base_url
        self._lifetime = int(settings.jwt_lifetime)
        self._renew_before = self._lifetime / 4
        self._cache: dict[str, tuple[bytes, float]] = {}

    def token(self, user: SamlUser, now: float) -> bytes:
        """The JWT for ``user`` (ASCII bytes, ready as a header value)."""
        key = user.session_id or user.name_id
        session_end = int(user.expires_at) or int(now) + self._lifetime
        cached = self._cache.get(key)
        if cached is not None and (
            cached[1] - now > self._renew_before or now < cached[1] >= session_end
        ):  # fresh enough, or valid as long as the session itself
            return cached[0]
        issued = int(now)
        expires = max(issued + 1, min(issued + self._lifetime, session_end))
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user.name_id,
            "email": user.email,
            "groups": list(user.groups),
            "iat": issued,
            "exp": expires,
            "sid": user.session_id,
        }
        token = jwt.encode(
            claims, self._key.private, algorithm=self._key.algorithm, headers={"kid": self._key.kid}
        ).encode("ascii")
        if len(self._cache) >= CACHE_SIZE:
            self._evict(now)
        self._cache[key] = (token, float(expires))
        return token

    def _evict(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._cache.items() if exp - now <= self._renew_before]:
            del self._cache[key]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
