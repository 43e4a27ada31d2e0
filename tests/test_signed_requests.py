"""Signed AuthnRequests: on by default whenever an SP key is configured (an IdP given the SP
certificate for Single Logout may demand them), and ``setup``, ``check`` and the metadata say so.

Commands as subprocesses; the AuthnRequest through the gate's real redirect.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
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
        sheet = (await client.get("/saml/setup", headers={"accept": "application/json"})).json()
        row = next(row for row in sheet["rows"] if row["field"] == "Signed AuthnRequests")
        assert row["value"].startswith("Yes" if signed else "No")
