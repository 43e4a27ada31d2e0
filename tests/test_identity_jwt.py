"""The identity JWT on every request the gate lets through: middleware (the app's request
header), proxy mode (the upstream verifies it against the JWKS) and forward-auth; its claims,
per-session cache and re-signing near expiry, key rotation, development key, and the Python
verification helper refusing what it must."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from saml_gate import ConfigError, SamlGate
from saml_gate.jwt_verify import IdentityVerifier, InvalidIdentity
from tests.support import BASE_URL, FrozenClock, Harness, gate_options
from tests.test_proxy import (  # noqa: F401  (fixtures)
    JSON,
    browser,
    make_proxy,
    proxy_harnesses,
    seen_headers,
    upstream,
)

pytestmark = pytest.mark.anyio


def pem(key: Any) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


async def headers_app(request: Request) -> JSONResponse:
    return JSONResponse({"jwt": request.headers.getlist("x-saml-gate-jwt")})


@pytest.fixture
def make_gate(idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Any) -> Any:
    clients: list[httpx.AsyncClient] = []

    def factory(**options: Any) -> Harness:
        app = Starlette(routes=[Route("/{rest:path}", headers_app)])
        gate = SamlGate(app, **gate_options(idp_keys, sp_keys, clock, str(tmp_path), **options))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        clients.append(client)
        return Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)

    return factory


def verifier(h: Harness, jwks: dict[str, Any], audience: str = BASE_URL) -> IdentityVerifier:
    return IdentityVerifier(jwks, issuer=BASE_URL, audience=audience, leeway=10**9)


async def test_the_app_receives_the_jwt_and_never_a_forged_one(make_gate: Any) -> None:
    h: Harness = make_gate(public_paths=["/public/"])
    await h.login()
    forged = [("X-Saml-Gate-Jwt", "forged"), ("X_Saml_Gate_Jwt", "forged")]
    r = await h.client.get("/private/x", headers=forged)
    (token,) = r.json()["jwt"]
    jwks = (await h.client.get("/saml/jwks.json")).json()
    claims = verifier(h, jwks).verify(token)
    assert claims["sub"] == "alice@example.com"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["admins", "users"]
    assert claims["iss"] == BASE_URL and claims["aud"] == BASE_URL
    assert claims["iat"] == int(h.clock.now)
    assert (
        claims["sid"]
        == h.gate.core.sessions.decode(
            str(h.client.cookies.get("saml_gate_session"))
        ).user.session_id
    )  # type: ignore[union-attr]
    # a public path: the signed-in person's own JWT, never the forged one; none when anonymous
    r = await h.client.get("/public/x", headers=forged)
    assert r.json()["jwt"] == [token]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.gate), base_url=BASE_URL
    ) as anonymous:
        r = await anonymous.get("/public/x", headers=forged)
    assert r.json()["jwt"] == []


async def test_the_jwt_is_cached_per_session_and_re_signed_near_expiry(make_gate: Any) -> None:
    h: Harness = make_gate(jwt_lifetime=120)
    await h.login()
    first = (await h.client.get("/x")).json()["jwt"][0]
    h.clock.advance(85)  # 35 s left: more than a quarter of 120
    assert (await h.client.get("/x")).json()["jwt"][0] == first
    h.clock.advance(10)  # 25 s left: re-signed
    second = (await h.client.get("/x")).json()["jwt"][0]
    assert second != first
    iat = jwt.decode(second, options={"verify_signature": False})["iat"]
    assert iat == int(h.clock.now)


async def test_the_jwt_never_outlives_the_session(make_gate: Any) -> None:
    h: Harness = make_gate(maximum_duration=100, jwt_lifetime=120, inactivity_timeout=100)
    await h.login()
    token = (await h.client.get("/x")).json()["jwt"][0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] == int(h.clock.now) + 100


async def test_audience_and_header_name_are_configurable(make_gate: Any) -> None:
    h: Harness = make_gate(jwt_audience="internal-apis")
    await h.login()
    token = (await h.client.get("/x")).json()["jwt"][0]
    jwks = (await h.client.get("/saml/jwks.json")).json()
    assert verifier(h, jwks, audience="internal-apis").verify(token)["aud"] == "internal-apis"
    with pytest.raises(InvalidIdentity):
        verifier(h, jwks).verify(token)
    off: Harness = make_gate(jwt_header="")
    await off.login()
    assert (await off.client.get("/x", headers={"X-Saml-Gate-Jwt": "forged"})).json()["jwt"] == [
        "forged"
    ]  # turned off: the gate neither sets nor owns the header


async def test_key_rotation_first_signs_all_published(make_gate: Any) -> None:
    new, old = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    h: Harness = make_gate(jwt_keys=[pem(new), pem(old)])
    await h.login()
    token = (await h.client.get("/x")).json()["jwt"][0]
    jwks = (await h.client.get("/saml/jwks.json")).json()
    assert [k["alg"] for k in jwks["keys"]] == ["ES256", "RS256"]
    assert jwt.get_unverified_header(token)["kid"] == jwks["keys"][0]["kid"]
    # a token the old (RSA) key signed still verifies while it is listed
    rsa_only: Harness = make_gate(jwt_keys=[pem(old)])
    await rsa_only.login()
    old_token = (await rsa_only.client.get("/x")).json()["jwt"][0]
    assert jwt.get_unverified_header(old_token)["alg"] == "RS256"
    assert verifier(h, jwks).verify(old_token)["sub"] == "alice@example.com"


async def test_key_files_are_read_and_bad_keys_refused_at_start(
    make_gate: Any, tmp_path: Any
) -> None:
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(pem(ec.generate_private_key(ec.SECP256R1())))
    await make_gate(jwt_keys=[str(key_file)]).gate.start()
    for bad in (
        pem(ec.generate_private_key(ec.SECP384R1())),
        pem(rsa.generate_private_key(65537, 1024)),
        str(tmp_path / "missing.pem"),
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    ):
        gate = make_gate(jwt_keys=[bad]).gate  # built: the keys are read at start-up
        with pytest.raises(ConfigError) as caught:
            await gate.start()
        assert caught.value.setting == "jwt_keys"
        assert "BEGIN" not in str(caught.value)  # never the key itself


async def test_a_development_key_is_generated_once_in_state_dir(
    make_gate: Any, tmp_path: Any
) -> None:
    first: Harness = make_gate()
    again: Harness = make_gate()
    assert not (tmp_path / "jwt.key.pem").exists()  # generated at start-up, not when built
    await first.gate.start()
    await again.gate.start()
    assert (tmp_path / "jwt.key.pem").stat().st_mode & 0o077 == 0
    a = (await first.client.get("/saml/jwks.json")).json()
    b = (await again.client.get("/saml/jwks.json")).json()
    assert a == b  # stable across restarts and processes sharing state_dir


async def test_the_upstream_of_the_proxy_verifies_the_jwt(make_proxy: Any) -> None:  # noqa: F811
    h: Harness = make_proxy(public_paths=["/echo/public/"])
    await h.login()
    async with browser(h) as client:
        forged = [("X-Saml-Gate-Jwt", "forged"), ("X_Saml_Gate_Jwt", "forged"), *JSON.items()]
        seen = seen_headers((await client.get("/echo/x", headers=forged)).json())
        public = seen_headers((await client.get("/echo/public/x", headers=forged)).json())
        jwks = (await client.get("/saml/jwks.json")).json()
        served = str(client.base_url).rstrip("/")  # another port than base_url's: another app
    (token,) = seen["x-saml-gate-jwt"]
    assert "x_saml_gate_jwt" not in seen
    assert verifier(h, jwks, audience=served).verify(token)["sub"] == "alice@example.com"
    with pytest.raises(InvalidIdentity):  # the app on base_url does not take it
        verifier(h, jwks).verify(token)
    # a public path: the signed-in person's own token, never the forged ones
    assert public["x-saml-gate-jwt"] == [token] and "x_saml_gate_jwt" not in public


@pytest.mark.parametrize(
    "tamper",
    ["none", "hs256_with_public_key", "other_key", "expired", "payload", "empty"],
)
async def test_the_verifier_refuses_forgeries(make_gate: Any, tamper: str) -> None:
    h: Harness = make_gate()
    await h.login()
    token = (await h.client.get("/x")).json()["jwt"][0]
    jwks = (await h.client.get("/saml/jwks.json")).json()
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    strict = IdentityVerifier(jwks, issuer=BASE_URL, audience=BASE_URL, leeway=0)
    lenient = verifier(h, jwks)
    if tamper == "none":
        forged = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    elif tamper == "hs256_with_public_key":  # the classic algorithm confusion
        public = jwt.PyJWK(jwks["keys"][0]).key.public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        head = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": kid}).encode())
        body = jwt.utils.base64url_encode(json.dumps(claims).encode())
        mac = hmac.new(public, head + b"." + body, hashlib.sha256).digest()
        forged = (head + b"." + body + b"." + jwt.utils.base64url_encode(mac)).decode()
    elif tamper == "other_key":
        other = ec.generate_private_key(ec.SECP256R1())
        forged = jwt.encode(claims, other, algorithm="ES256", headers={"kid": kid})
    elif tamper == "expired":
        with pytest.raises(InvalidIdentity):
            strict.verify(token)  # the frozen clock is in the past
        return
    elif tamper == "payload":
        head, _, sig = token.split(".")
        body = jwt.utils.base64url_encode(b'{"sub":"mallory"}').decode()
        forged = f"{head}.{body}.{sig}"
    else:
        forged = ""
    with pytest.raises(InvalidIdentity):
        lenient.verify(forged)


def test_the_verifier_imports_no_gate_dependency() -> None:
    code = (
        "import sys, saml_gate.jwt_verify; "
        "heavy = {'lxml', 'xmlsec', 'saml2', 'httpx', 'starlette'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
