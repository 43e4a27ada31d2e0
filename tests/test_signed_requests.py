"""Signed AuthnRequests: on by default whenever an SP key is configured (an IdP given the SP
certificate for Single Logout may demand them), and ``setup``, ``check`` and the metadata say so.

Commands as subprocesses; the AuthnRequest through the gate's real redirect.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.support import BASE_URL, FrozenClock, gate_options, idp_metadata, make_app
from tests.test_cli import SECRET, cli_env, saml_gate

pytestmark = pytest.mark.anyio


@pytest.fixture
def env(tmp_path: Path, idp_keys: KeyPair, sp_keys: KeyPair) -> dict[str, str]:
    """An operator's settings with a key pair from ``saml-gate keygen``."""
    metadata = tmp_path / "idp.xml"
    metadata.write_text(idp_metadata(idp_keys))
    (tmp_path / "sp.key.pem").write_bytes(sp_keys.key_pem)
    (tmp_path / "sp.cert.pem").write_bytes(sp_keys.cert_pem)
    return cli_env(
        SAML_GATE_BASE_URL="https://app.example.com",
        SAML_GATE_IDP_METADATA=str(metadata),
        SAML_GATE_SECRET_KEY=SECRET,
        SAML_GATE_SP_KEY=str(tmp_path / "sp.key.pem"),
        SAML_GATE_SP_CERT=str(tmp_path / "sp.cert.pem"),
        SAML_GATE_STATE_DIR=str(tmp_path / "state"),
    )


def without_sp_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("SAML_GATE_SP_KEY", "SAML_GATE_SP_CERT")}


def test_setup_and_metadata_say_requests_are_signed_with_a_configured_key(
    env: dict[str, str],
) -> None:
    sheet = saml_gate("setup", env=env)
    assert sheet.returncode == 0, sheet.stderr
    assert "Signed Requests" in sheet.stdout
    assert "Yes: AuthnRequests are signed (RSA-SHA256)" in sheet.stdout
    assert "Signature Certificate" in sheet.stdout
    metadata = saml_gate("metadata", env=env)
    assert 'AuthnRequestsSigned="true"' in metadata.stdout


def test_the_development_key_pair_does_not_sign_unless_asked(env: dict[str, str]) -> None:
    dev = without_sp_key(env)
    sheet = saml_gate("setup", env=dev)
    assert "No: AuthnRequests are not signed" in sheet.stdout
    assert 'AuthnRequestsSigned="false"' in saml_gate("metadata", env=dev).stdout

    asked = saml_gate("setup", "--sign-authn-requests", env=dev)
    assert "Yes: AuthnRequests are signed" in asked.stdout
    assert "--sign-authn-requests" in saml_gate("run", "--help").stdout


def test_check_says_whether_requests_are_signed(env: dict[str, str]) -> None:
    signed = saml_gate("check", env=env)
    assert "ok    AuthnRequests are signed (RSA-SHA256)" in signed.stdout, signed.stdout
    off = saml_gate("check", env=env | {"SAML_GATE_SIGN_AUTHN_REQUESTS": "false"})
    assert "AuthnRequests are not signed" in off.stdout


@pytest.mark.parametrize(("configured", "signed"), [(True, True), (False, False)])
async def test_the_authn_request_is_signed_when_an_sp_key_is_configured(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    configured: bool,
    signed: bool,
) -> None:
    options = gate_options(idp_keys, sp_keys, clock, str(tmp_path))
    if not configured:
        del options["sp_key"], options["sp_cert"]
    gate = SamlGate(make_app(), **options)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url=BASE_URL
    ) as client:
        r = await client.get("/private/page", headers={"accept": "text/html"})
        assert r.status_code == 303
        query = parse_qs(urlsplit(r.headers["location"]).query)
        assert ("Signature" in query) is signed
        if signed:
            check_signature(r.headers["location"], sp_keys)
        sheet = (await client.get("/saml/setup", headers={"accept": "application/json"})).json()
        row = next(row for row in sheet["rows"] if row["field"] == "Signed AuthnRequests")
        assert row["value"].startswith("Yes" if signed else "No")


def check_signature(location: str, sp_keys: KeyPair) -> None:
    """The redirect's Signature verifies with the SP certificate over the signed part of the
    query as sent, and is the very signature cryptography makes with the SP key (PKCS#1 v1.5 is
    deterministic): libxmlsec signs it, so that a verification child needs no cryptography."""
    query = urlsplit(location).query
    signed, _, signature = query.partition("&Signature=")
    value = base64.b64decode(unquote_plus(signature))
    certificate = x509.load_pem_x509_certificate(sp_keys.cert_pem)
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(value, signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    private_key = serialization.load_pem_private_key(sp_keys.key_pem, password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert private_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256()) == value


async def test_an_sp_key_that_is_not_rsa_stops_the_start_when_requests_are_signed(
    idp_keys: KeyPair, clock: FrozenClock, tmp_path: Path
) -> None:
    ec_keys = generate_keypair("sp", key=ec.generate_private_key(ec.SECP256R1()))
    gate = SamlGate(make_app(), **gate_options(idp_keys, ec_keys, clock, str(tmp_path)))
    with pytest.raises(Exception, match="must be an RSA key to sign AuthnRequests"):
        await gate.start()
