"""The remote-JWT checks (saml_gate.identity.remote_jwt) on their own: which keys verify which
algorithms, and the times against the gate's clock. Through the Universal Logout endpoint:
tests/test_universal_logout.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from saml_gate.identity.remote_jwt import (
    JwtRefused,
    JwtRules,
    KeysUnavailable,
    RemoteJwtVerifier,
)

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
ISSUER, AUDIENCE = "https://issuer.example", "https://gate.example/endpoint"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str, **extra: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, **extra}


class Keys:
    def __init__(self, *jwks: Mapping[str, Any], unavailable: bool = False) -> None:
        self.jwks = {str(j["kid"]): j for j in jwks}
        self.unavailable = unavailable

    async def jwk(self, kid: str) -> Mapping[str, Any] | None:
        if self.unavailable:
            raise KeysUnavailable("the signer is unreachable")
        return self.jwks.get(kid)


def token(key: Any, algorithm: str, kid: str, **claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 300, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def verifier(keys: Keys, **rules: Any) -> RemoteJwtVerifier:
    given = {"issuers": (ISSUER,), "audiences": (AUDIENCE,), "leeway": 30.0, **rules}
    return RemoteJwtVerifier(keys, JwtRules(**given), lambda: NOW)


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(RSA_KEY, "RS256"), (RSA_KEY, "PS256"), (RSA_KEY, "RS512"), (EC_KEY, "ES256")],
)
async def test_each_key_type_verifies_its_algorithms(key: Any, algorithm: str) -> None:
    keys = Keys(public_jwk(key, "k1"))
    claims = await verifier(keys).verify(token(key, algorithm, "k1"))
    assert claims["iss"] == ISSUER


REFUSED: dict[str, tuple[Keys, str, str]] = {
    "an EC key named by an RS256 token": (
        Keys(public_jwk(EC_KEY, "k1")),
        token(RSA_KEY, "RS256", "k1"),
        "invalid",
    ),
    "ES384 over a P-256 key": (
        Keys(public_jwk(EC_KEY, "k1")),
        token(ec.generate_private_key(ec.SECP384R1()), "ES384", "k1"),
        "invalid",
    ),
    "a key published for RS512 only": (
        Keys(public_jwk(RSA_KEY, "k1", alg="RS512")),
        token(RSA_KEY, "RS256", "k1"),
        "invalid",
    ),
    "a key published for encryption": (
        Keys(public_jwk(RSA_KEY, "k1", use="enc")),
        token(RSA_KEY, "RS256", "k1"),
        "invalid",
    ),
    "HS256": (
        Keys(public_jwk(RSA_KEY, "k1")),
        token("a secret of 32 bytes or more, please", "HS256", "k1"),
        "invalid",
    ),
    "no kid": (
        Keys(public_jwk(RSA_KEY, "k1")),
        jwt.encode({"iss": ISSUER}, RSA_KEY, algorithm="RS256"),
        "invalid",
    ),
    "expired beyond the leeway": (
        Keys(public_jwk(RSA_KEY, "k1")),
        token(RSA_KEY, "RS256", "k1", exp=NOW - 31, iat=NOW - 331),
        "expired",
    ),
    "nbf ahead beyond the leeway": (
        Keys(public_jwk(RSA_KEY, "k1")),
        token(RSA_KEY, "RS256", "k1", nbf=NOW + 31),
        "expired",
    ),
    "exp not a number": (
        Keys(public_jwk(RSA_KEY, "k1")),
        token(RSA_KEY, "RS256", "k1", exp="soon"),
        "invalid",
    ),
    "the signer unreachable": (
        Keys(unavailable=True),
        token(RSA_KEY, "RS256", "k1"),
        "keys_unavailable",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refusals(case: str) -> None:
    keys, given, reason = REFUSED[case]
    with pytest.raises(JwtRefused) as refused:
        await verifier(keys).verify(given)
    assert refused.value.reason == reason
    assert given not in str(refused.value)  # never the token in a message


async def test_the_leeway_is_the_clock_tolerance() -> None:
    keys = Keys(public_jwk(RSA_KEY, "k1"))
    late = token(RSA_KEY, "RS256", "k1", exp=NOW - 29, iat=NOW - 329)
    assert (await verifier(keys).verify(late))["exp"] == NOW - 29


async def test_one_audience_refuses_a_list() -> None:
    keys = Keys(public_jwk(RSA_KEY, "k1"))
    listed = token(RSA_KEY, "RS256", "k1", aud=[AUDIENCE, "https://other.example"])
    assert await verifier(keys).verify(listed)
    with pytest.raises(JwtRefused) as refused:
        await verifier(keys, one_audience=True).verify(listed)
    assert refused.value.reason == "audience"


def test_only_asymmetric_algorithms_can_be_allowed() -> None:
    with pytest.raises(ValueError, match="HS256"):
        verifier(Keys(), algorithms=("RS256", "HS256"))
