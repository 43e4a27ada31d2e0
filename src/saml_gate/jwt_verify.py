"""Verify the gate's identity JWT in a Python upstream (needs only PyJWT with ``cryptography``).

::

    from saml_gate.jwt_verify import IdentityVerifier

    verifier = IdentityVerifier(
        "https://auth.example.com/saml/jwks.json",
        issuer="https://auth.example.com",  # the gate's base_url
        audience="https://grafana.example.com",  # this app's own origin (see below)
    )
    claims = verifier.verify(request.headers["X-Saml-Gate-Jwt"])  # raises InvalidIdentity
    claims["sub"], claims["email"], claims["groups"]

The audience is the app the token was issued for, so that a token one app receives fails at
every other: the app's own origin (``https://grafana.example.com``) behind forward-auth and on
any host other than base_url's, the gate's ``jwt_audience`` (default: base_url) for the app on
base_url's host, or the ``audience=`` of the access rule that let the request through.

The JWKS is fetched when a token names a ``kid`` not yet known (key rotation) and cached; the
signature, ``iss``, ``aud``, ``exp`` and ``iat`` are checked, with ``leeway`` seconds of clock
tolerance. Each key verifies with its own algorithm only (an EC key ES256, an RSA key RS256; the
JWKS entry's ``alg`` when it names one): a token whose ``alg`` is not its key's is refused before
any cryptography runs, so ``none``, an HMAC keyed with the public key, or RS256 over an EC key
never reach a signature check. Anything but a valid token raises :class:`InvalidIdentity`.
Other languages: any JOSE library that verifies ES256 against a
JWKS URL (``jose`` for Node, ``github.com/lestrrat-go/jwx`` for Go, ``nimbus-jose-jwt`` for
Java) with the same three checks.

This module imports nothing of the gate itself: ``import saml_gate.jwt_verify`` loads no XML or
SAML library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import jwt

ALGORITHMS: Final = ("ES256", "RS256")
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "iat", "exp", "sid")


class InvalidIdentity(Exception):
    """The token is missing, malformed, expired, or not signed by the gate for this audience."""


class IdentityVerifier:
    """Verifies identity JWTs against the gate's JWKS (a URL, or the JWKS document itself)."""

    def __init__(
        self,
        jwks: str | Mapping[str, Any],
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if isinstance(jwks, str):
            self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300)
        else:
            self._keys = jwt.PyJWKSet.from_dict(dict(jwks))

    def verify(self, token: str | bytes | None) -> dict[str, Any]:
        """The token's claims; :class:`InvalidIdentity` for anything but a valid token."""
        if not token:
            raise InvalidIdentity("no identity token")
        text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        try:
            key = self._signing_key(text)
            algorithm = _algorithm_of(key, jwt.get_unverified_header(text).get("alg"))
            claims: dict[str, Any] = jwt.decode(
                text,
                key.key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise InvalidIdentity(str(exc) or type(exc).__name__) from exc
        return claims

    def _signing_key(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise InvalidIdentity("the token names no kid")
        return self._keys[kid]


def _algorithm_of(key: jwt.PyJWK, claimed: object) -> str:
    """The one algorithm ``key`` verifies with, when the token claims exactly that one."""
    algorithm = key.algorithm_name
    if algorithm not in ALGORITHMS:
        raise InvalidIdentity(f"the key {key.key_id!r} is for {algorithm}, not one the gate uses")
    if claimed != algorithm:
        raise InvalidIdentity(f"the token's alg {claimed!r} is not its key's ({algorithm})")
    return algorithm
