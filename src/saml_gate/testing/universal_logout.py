"""Okta Universal Logout as the test IdP sends it: the signed JWT and the request that carries
it, shaped as Okta's "Build Universal Logout for your app" describes (``typ``
``global-token-revocation+jwt``, RS256, ``iss`` the org, ``sub`` the app, ``aud`` the endpoint,
``iat``, ``nbf`` 5 minutes before, ``exp`` 5 minutes after, a new ``jti``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from saml_gate.identity.keys import JwtKey, jwt_key
from saml_gate.saml.keys import KeyPair

#: The test IdP's "Okta org": the issuer of its Universal Logout tokens.
ORG_URL: Final = "https://idp.test"
#: The app those tokens name (``sub``: Okta's appInstanceId).
APP_ID: Final = "0oatestapp0saml0gate"
TOKEN_TYPE: Final = "global-token-revocation+jwt"  # noqa: S105 (a type, not a secret)
LIFETIME: Final = 300


@dataclass(frozen=True)
class IssuerKey:
    """A test issuer's signing key (``keys``: the test IdP's RSA key pair), its published key
    set, and signing a JWT it issues."""

    keys: KeyPair

    @cached_property
    def key(self) -> JwtKey:
        return jwt_key(load_pem_private_key(self.keys.key_pem, password=None), "the test IdP")

    @property
    def jwks(self) -> str:
        """The key set a gate checks the tokens with (JWKS JSON)."""
        return json.dumps({"keys": [self.key.public_jwk]})

    def signed(
        self,
        payload: dict[str, Any],
        headers: dict[str, Any],
        claims: Mapping[str, Any] | None,
        header: Mapping[str, Any] | None,
        signing_key: Any,
    ) -> str:
        """``payload`` signed, ``claims`` and ``header`` merged in (None removes a member),
        with ``signing_key`` instead of the issuer's when given (``alg`` from ``header``)."""
        _merge(payload, claims or {})
        _merge(headers, header or {})
        algorithm = str(headers.pop("alg", "RS256"))
        key = self.key.private if signing_key is None else signing_key
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


@dataclass(frozen=True)
class LogoutTokens(IssuerKey):
    """Signs Universal Logout tokens with ``keys`` (the test IdP's RSA key), as ``issuer``."""

    keys: KeyPair
    issuer: str = ORG_URL
    app_id: str = APP_ID

    def token(
        self,
        audience: str,
        now: float,
        *,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
        signing_key: Any = None,
    ) -> str:
        """A token for the endpoint ``audience``; ``claims`` and ``header`` replace or add
        members (None removes one), ``signing_key`` signs instead of the IdP's key."""
        issued = int(now)
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "iss": self.issuer,
            "sub": self.app_id,
            "aud": audience,
            "exp": issued + LIFETIME,
            "nbf": issued - LIFETIME,
            "iat": issued,
        }
        headers: dict[str, Any] = {"typ": TOKEN_TYPE, "kid": self.key.kid}
        return self.signed(payload, headers, claims, header, signing_key)


def request_body(
    email: str | None = None, name_id: str | None = None, issuer: str | None = None
) -> bytes:
    """The JSON body naming a person: ``{"sub_id": {"format": "email", ...}}``, or
    ``iss_sub`` with the IdP's entity ID and the NameID."""
    if (email is None) == (name_id is None):
        raise TypeError("name the person by email= or by name_id=, not both")
    if email is not None:
        sub_id = {"format": "email", "email": email}
    else:
        sub_id = {"format": "iss_sub", "iss": issuer or "", "sub": name_id or ""}
    return json.dumps({"sub_id": sub_id}).encode()


def _merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        if value is None:
            into.pop(name, None)
        else:
            into[name] = value
