"""saml_gate.jwt_verify.IdentityVerifier: every token that is not the gate's, for this issuer and
audience, unexpired, raises InvalidIdentity, and nothing else escapes.

Property-based (hypothesis) over arbitrary text, over tokens built field by field (every header
``alg`` and ``kid`` against every signer: the gate's keys, other keys, HMAC keyed with the public
key, none) with an exact oracle, and over byte mutations of a valid token; then the named cases,
and a real gate's JWKS URL with a token the verifier once answered with TypeError (RS256 naming
the gate's EC key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, RSAPSSAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.identity.keys import JwtKey, jwks, jwt_key
from saml_gate.jwt_verify import REQUIRED_CLAIMS, IdentityVerifier, InvalidIdentity
from saml_gate.testing import SamlTestIdp
from tests.forward_auth.proxies import free_port
from tests.forward_auth.servers import serving

ISSUER = "https://auth.example.test"
AUDIENCE = "https://app.example.test"
LEEWAY = 30
EXAMPLES = int(os.environ.get("SAML_GATE_FUZZ_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


GATE_EC_PRIVATE, GATE_RSA_PRIVATE = _ec(), _rsa()
GATE_EC = jwt_key(GATE_EC_PRIVATE, "gate EC key")
GATE_RSA = jwt_key(GATE_RSA_PRIVATE, "gate RSA key")
JWKS = jwks((GATE_EC, GATE_RSA))  # as the gate publishes it: both keys (a rotation)
OTHER_EC, OTHER_RSA = _ec(), _rsa()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_pem(key: JwtKey) -> bytes:
    return key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


#: Who signs the token's first two segments, and how. Only the first two can ever be valid.
SIGNERS: dict[str, Callable[[bytes], bytes]] = {
    "gate_ec": lambda m: ECAlgorithm(ECAlgorithm.SHA256).sign(m, GATE_EC_PRIVATE),
    "gate_rsa": lambda m: RSAAlgorithm(RSAAlgorithm.SHA256).sign(m, GATE_RSA_PRIVATE),
    "gate_rsa_pss": lambda m: RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256).sign(m, GATE_RSA_PRIVATE),
    "gate_ec_sha384": lambda m: ECAlgorithm(ECAlgorithm.SHA384).sign(m, GATE_EC_PRIVATE),
    "other_ec": lambda m: ECAlgorithm(ECAlgorithm.SHA256).sign(m, OTHER_EC),
    "other_rsa": lambda m: RSAAlgorithm(RSAAlgorithm.SHA256).sign(m, OTHER_RSA),
    # algorithm confusion: the public key (in every form an upstream could hold it) as secret
    "hmac_ec_pem": lambda m: hmac.new(public_pem(GATE_EC), m, hashlib.sha256).digest(),
    "hmac_rsa_pem": lambda m: hmac.new(public_pem(GATE_RSA), m, hashlib.sha256).digest(),
    "hmac_jwk": lambda m: hmac.new(
        json.dumps(GATE_EC.public_jwk).encode(), m, hashlib.sha256
    ).digest(),
    "none": lambda m: b"",
}
#: signer → the (alg, kid) header under which its signature is the gate's.
GENUINE = {"gate_ec": ("ES256", GATE_EC.kid), "gate_rsa": ("RS256", GATE_RSA.kid)}
ABSENT = object()


def valid_claims(now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@example.test",
        "email": "alice@example.test",
        "groups": ["staff"],
        "iat": int(now),
        "exp": int(now) + 120,
        "sid": "s1",
    }


def forge(header: dict[str, Any], claims: dict[str, Any] | bytes, signer: str) -> str:
    head = b64(json.dumps(header).encode())
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{head}.{b64(payload)}"
    return f"{signing_input}.{b64(SIGNERS[signer](signing_input.encode()))}"


def verifier(**options: Any) -> IdentityVerifier:
    return IdentityVerifier(JWKS, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, **options)


def outcome(token: str | bytes | None) -> dict[str, Any] | InvalidIdentity:
    """The claims, or the InvalidIdentity raised; any other exception fails the test."""
    try:
        return verifier().verify(token)
    except InvalidIdentity as refused:
        return refused


# ---------------------------------------------------------------------- properties
@PROPERTY
@given(st.one_of(st.text(), st.binary(), st.from_regex(r"[A-Za-z0-9_\-=+/.]{0,200}")))
def test_arbitrary_input_is_refused_with_invalid_identity(token: str | bytes) -> None:
    assert isinstance(outcome(token), InvalidIdentity)


ALGS = st.sampled_from(
    [
        *("ES256", "RS256", "PS256", "ES384", "ES512", "HS256", "HS512", "EdDSA"),
        *("none", "None", "NONE", "", "es256", "ES256 ", None, 256, ["ES256"], ABSENT),
    ]
)
KIDS = st.sampled_from(
    [
        *(GATE_EC.kid, GATE_RSA.kid, "unknown", "", None, 1, [GATE_EC.kid], ABSENT),
        *(GATE_EC.kid + " ", GATE_EC.kid.upper(), "../" + GATE_EC.kid),
    ]
)
#: Header members an attacker adds; a verifier must ignore every one (never fetch or use a key
#: the token itself names).
EXTRA_HEADERS = st.sampled_from(
    [
        {},
        {"typ": "JWT"},
        {"jwk": json.loads(ECAlgorithm.to_jwk(OTHER_EC.public_key()))},
        {"jku": "http://evil.example.test/jwks.json"},
        {"x5u": "http://evil.example.test/cert.pem"},
    ]
)


@dataclass(frozen=True)
class Breakage:
    """A change to valid claims; ``fatal`` when the verifier must refuse it."""

    name: str
    change: Callable[[dict[str, Any]], None]
    fatal: bool = True


def _drop(claim: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.pop(claim)


def _set(claim: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda c: c.__setitem__(claim, value)


BREAKAGES = [
    Breakage("none", lambda c: None, fatal=False),
    Breakage("extra claim", _set("admin", True), fatal=False),
    Breakage("other groups", _set("groups", ["admins"]), fatal=False),
    *(Breakage(f"no {claim}", _drop(claim)) for claim in REQUIRED_CLAIMS),
    Breakage("other aud", _set("aud", "https://other.example.test")),
    Breakage("aud with a slash", _set("aud", AUDIENCE + "/")),
    Breakage("aud list without it", _set("aud", ["https://other.example.test"])),
    Breakage("empty aud", _set("aud", "")),
    Breakage("other iss", _set("iss", "https://evil.example.test")),
    Breakage("iss in upper case", _set("iss", ISSUER.upper())),
    Breakage("iss as a list", _set("iss", [ISSUER])),
    Breakage("expired", lambda c: c.update(exp=int(time.time()) - LEEWAY - 60)),
    Breakage("exp as text", _set("exp", "tomorrow")),
    Breakage("exp as null", _set("exp", None)),
    Breakage("iat as text", _set("iat", "now")),
    Breakage("not yet valid", lambda c: c.update(nbf=int(time.time()) + LEEWAY + 600)),
]


@PROPERTY
@given(
    alg=ALGS,
    kid=KIDS,
    extra=EXTRA_HEADERS,
    signer=st.sampled_from(sorted(SIGNERS)),
    breakage=st.sampled_from(BREAKAGES),
)
def test_only_the_gates_own_signature_with_its_keys_algorithm_and_valid_claims_passes(
    alg: Any, kid: Any, extra: dict[str, Any], signer: str, breakage: Breakage
) -> None:
    header = {**extra}
    if alg is not ABSENT:
        header["alg"] = alg
    if kid is not ABSENT:
        header["kid"] = kid
    claims = valid_claims()
    breakage.change(claims)
    result = outcome(forge(header, claims, signer))
    genuine = GENUINE.get(signer) == (alg, kid) and not breakage.fatal
    if genuine:
        assert result == claims
    else:
        assert isinstance(result, InvalidIdentity), (header, signer, breakage.name)


#: Minted when the module is imported, and used by tests that may run many minutes later in a
#: full run: valid for a day (a short-lived token expired before its test ran).
GOOD_TOKEN = forge(
    {"alg": "ES256", "kid": GATE_EC.kid},
    {**valid_claims(), "exp": int(time.time()) + 86_400},
    "gate_ec",
)


def _decoded(token: str) -> list[bytes] | None:
    """The three segments' bytes (strict base64url), or None when it is not three segments."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts]
    except ValueError:
        return None


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(GOOD_TOKEN) - 1),
            st.sampled_from(["delete", "replace", "insert"]),
            st.sampled_from([*"A_-+/=.~ \t\n\x00é", "==", ".."]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_mutated_token_is_refused_or_means_exactly_the_same(
    edits: list[tuple[int, str, str]],
) -> None:
    """Bad base64, padding, separators, whitespace: refused, unless the bytes signed and the
    claims are exactly the original's (base64url's unused trailing bits are not a forgery)."""
    token = GOOD_TOKEN
    for position, edit, text in edits:
        at = min(position, len(token))
        if edit == "delete":
            token = token[:at] + token[at + 1 :]
        elif edit == "replace":
            token = token[:at] + text + token[at + 1 :]
        else:
            token = token[:at] + text + token[at:]
    result = outcome(token)
    if isinstance(result, InvalidIdentity) or token == GOOD_TOKEN:
        return
    assert _decoded(token) == _decoded(GOOD_TOKEN), token
    assert result == jwt.decode(GOOD_TOKEN, options={"verify_signature": False})


# ---------------------------------------------------------------------- named cases
def _hs256_with(secret: bytes, kid: str) -> str:
    head = b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    body = b64(json.dumps(valid_claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


NAMED: dict[str, Callable[[], str | bytes | None]] = {
    # alg / key-type confusion (the reported TypeError: RS256 naming the gate's EC key)
    "RS256 with the EC kid": lambda: jwt.encode(
        valid_claims(), OTHER_RSA, algorithm="RS256", headers={"kid": GATE_EC.kid}
    ),
    "PS256 with the EC kid": lambda: jwt.encode(
        valid_claims(), OTHER_RSA, algorithm="PS256", headers={"kid": GATE_EC.kid}
    ),
    "ES256 with the RSA kid": lambda: jwt.encode(
        valid_claims(), OTHER_EC, algorithm="ES256", headers={"kid": GATE_RSA.kid}
    ),
    "PS256 by the gate's RSA key": lambda: forge(
        {"alg": "PS256", "kid": GATE_RSA.kid}, valid_claims(), "gate_rsa_pss"
    ),
    "ES384 by the gate's EC key": lambda: forge(
        {"alg": "ES384", "kid": GATE_EC.kid}, valid_claims(), "gate_ec_sha384"
    ),
    "alg none": lambda: forge({"alg": "none", "kid": GATE_EC.kid}, valid_claims(), "none"),
    "alg none, no kid": lambda: forge({"alg": "none"}, valid_claims(), "none"),
    "HS256 keyed with the EC public key (PEM)": lambda: _hs256_with(
        public_pem(GATE_EC), GATE_EC.kid
    ),
    "HS256 keyed with the RSA public key (PEM)": lambda: _hs256_with(
        public_pem(GATE_RSA), GATE_RSA.kid
    ),
    "HS256 keyed with the JWK": lambda: _hs256_with(
        json.dumps(GATE_EC.public_jwk).encode(), GATE_EC.kid
    ),
    # encodings
    "bad base64 in the header": lambda: "e!!." + GOOD_TOKEN.split(".", 1)[1],
    "bad base64 in the payload": lambda: GOOD_TOKEN.replace(".", ".*", 1),
    "bad base64 in the signature": lambda: GOOD_TOKEN + "*",
    "header not JSON": lambda: b64(b"ES256") + "." + GOOD_TOKEN.split(".", 1)[1],
    "header a JSON list": lambda: b64(b"[]") + "." + GOOD_TOKEN.split(".", 1)[1],
    "payload not JSON": lambda: forge({"alg": "ES256", "kid": GATE_EC.kid}, b"\xff{", "gate_ec"),
    "payload a JSON list": lambda: forge({"alg": "ES256", "kid": GATE_EC.kid}, b"[1]", "gate_ec"),
    "two segments": lambda: GOOD_TOKEN.rsplit(".", 1)[0],
    "four segments": lambda: GOOD_TOKEN + ".x",
    "non-ASCII bytes": lambda: GOOD_TOKEN.encode() + b"\xff",
    "empty": lambda: "",
    "None": lambda: None,
    # keys
    "unknown kid": lambda: jwt.encode(
        valid_claims(), OTHER_EC, algorithm="ES256", headers={"kid": "unknown"}
    ),
    "no kid": lambda: jwt.encode(valid_claims(), GATE_EC.private, algorithm="ES256"),
    "kid not a string": lambda: forge({"alg": "ES256", "kid": 7}, valid_claims(), "gate_ec"),
    "the gate's kid, another key": lambda: jwt.encode(
        valid_claims(), OTHER_EC, algorithm="ES256", headers={"kid": GATE_EC.kid}
    ),
    "an embedded jwk of the attacker": lambda: jwt.encode(
        valid_claims(),
        OTHER_EC,
        algorithm="ES256",
        headers={"jwk": json.loads(ECAlgorithm.to_jwk(OTHER_EC.public_key()))},
    ),
}
CLAIM_CASES = [b for b in BREAKAGES if b.fatal]


@pytest.mark.parametrize("case", sorted(NAMED))
def test_named_forgeries_are_refused(case: str) -> None:
    assert isinstance(outcome(NAMED[case]()), InvalidIdentity)


@pytest.mark.parametrize("breakage", CLAIM_CASES, ids=[b.name for b in CLAIM_CASES])
@pytest.mark.parametrize("signer", sorted(GENUINE))
def test_missing_and_wrong_claims_are_refused(signer: str, breakage: Breakage) -> None:
    alg, kid = GENUINE[signer]
    claims = valid_claims()
    breakage.change(claims)
    assert isinstance(outcome(forge({"alg": alg, "kid": kid}, claims, signer)), InvalidIdentity)


@pytest.mark.parametrize("signer", sorted(GENUINE))
def test_the_gates_tokens_pass(signer: str) -> None:
    """The positive controls: each published key, with its own algorithm."""
    alg, kid = GENUINE[signer]
    claims = valid_claims()
    assert outcome(forge({"alg": alg, "kid": kid, "typ": "JWT"}, claims, signer)) == claims


def test_a_jwks_key_of_another_algorithm_is_never_used() -> None:
    """A JWKS entry for an algorithm the gate never signs with (HS256, ES384) verifies nothing,
    even when the token claims that very algorithm."""
    secret = b"s" * 32
    oct_key = {"kty": "oct", "k": b64(secret), "kid": "sym", "alg": "HS256"}
    p384 = ec.generate_private_key(ec.SECP384R1())
    ec384 = {**json.loads(ECAlgorithm.to_jwk(p384.public_key())), "kid": "p384"}
    mixed = IdentityVerifier(
        {"keys": [oct_key, ec384, GATE_EC.public_jwk]}, issuer=ISSUER, audience=AUDIENCE
    )
    hs = jwt.encode(valid_claims(), secret, algorithm="HS256", headers={"kid": "sym"})
    es384 = jwt.encode(valid_claims(), p384, algorithm="ES384", headers={"kid": "p384"})
    for token in (hs, es384):
        with pytest.raises(InvalidIdentity):
            mixed.verify(token)
    assert mixed.verify(GOOD_TOKEN)["sub"] == "alice@example.test"


# ---------------------------------------------------------------------- a real gate's JWKS
@pytest.fixture(scope="module")
def served_gate() -> Iterator[tuple[SamlTestIdp, str]]:
    """A gate on a loopback port whose app echoes the identity JWT it was given."""
    idp = SamlTestIdp()
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"jwt": request.headers.get("x-saml-gate-jwt")})

    app = SamlGate(Starlette(routes=[Route("/{p:path}", echo)]), **idp.gate_options(url))
    with serving(app, port=port):
        yield idp, url


def test_a_real_gates_jwks_url_refuses_rs256_naming_its_ec_key(
    served_gate: tuple[SamlTestIdp, str],
) -> None:
    idp, url = served_gate
    with httpx.Client(base_url=url, timeout=30) as client:
        idp.sign_in(client, email="alice@example.test", path="/page")
        token = client.get("/page").json()["jwt"]
        published = client.get("/saml/jwks.json").json()
    (ec_kid,) = [k["kid"] for k in published["keys"]]
    remote = IdentityVerifier(url + "/saml/jwks.json", issuer=url, audience=url)
    assert remote.verify(token)["sub"] == "alice@example.test"  # the positive control
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, OTHER_RSA, algorithm="RS256", headers={"kid": ec_kid})
    with pytest.raises(InvalidIdentity, match="not its key's"):
        remote.verify(forged)
    unknown = jwt.encode(claims, OTHER_EC, algorithm="ES256", headers={"kid": "unknown"})
    with pytest.raises(InvalidIdentity):
        remote.verify(unknown)
