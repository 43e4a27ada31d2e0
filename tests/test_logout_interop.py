"""Single Logout against SimpleSAMLphp, a strict IdP nobody here wrote, through real HTTP.

Reuses the interop harness (``tests/interop``, read-only): SimpleSAMLphp from Debian and the
gate under uvicorn on loopback, httpx as the browser. SimpleSAMLphp knows the SP certificate
(``validate.logout``: it refuses logout requests it cannot verify) and signs its own logout
messages (``sign.logout``), with the HTTP-Redirect binding.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from saml_gate.saml.keys import KeyPair
from tests.interop.client import HTML_ACCEPT, start_at_gate
from tests.interop.conftest import (
    SspGate,
    client,
    need_simplesamlphp,
    servers,
    ssp_gate,
)
from tests.interop.gate_server import GateServer
from tests.interop.test_simplesamlphp import assert_shows, sp_initiated_login

pytestmark = [pytest.mark.anyio, pytest.mark.interop]
#: The interop harness's fixtures, used here as they are (their conftest covers tests/interop/).
REUSED_FIXTURES = (client, need_simplesamlphp, servers, ssp_gate)


async def follow(client: httpx.AsyncClient, url: str, stop_at: str) -> httpx.Response:
    """Follow redirects like a browser until one points under ``stop_at``; return that one."""
    for _ in range(10):
        response = await client.get(url, headers=HTML_ACCEPT)
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or location is None:
            return response
        url = str(response.url.join(location))
        if url.startswith(stop_at):
            return response
    raise AssertionError("too many redirects")


async def sign_out_at_gate(client: httpx.AsyncClient, gate: GateServer) -> httpx.Response:
    page = await client.get(gate.base_url + "/saml/logout", headers=HTML_ACCEPT)
    token = page.text.split("name=token value='")[1].split("'")[0]
    return await client.post(
        gate.base_url + "/saml/logout", data={"token": token}, headers=HTML_ACCEPT
    )


async def test_sp_initiated_single_logout(ssp_gate: SspGate, client: httpx.AsyncClient) -> None:
    idp, gate = ssp_gate(idp_knows_sp_cert=True, sign_authn_requests=True)
    assert_shows(await sp_initiated_login(client, gate, "alice"), "alice")
    out = await sign_out_at_gate(client, gate)
    assert out.status_code == 303
    to_idp = out.headers["location"]
    assert to_idp.startswith(idp.public_url + "saml2/idp/SingleLogoutService.php?")
    # SimpleSAMLphp checks the signature, ends its session and redirects back with its answer.
    back = await follow(client, to_idp, gate.base_url)
    answer = back.headers["location"]
    assert answer.startswith(gate.base_url + "/saml/slo?SAMLResponse="), back.text
    assert "Signature=" in answer
    answered = await client.get(answer, headers=HTML_ACCEPT)
    assert answered.status_code == 303, answered.text  # to a URL without the SAMLResponse
    assert answered.headers["location"] == "/saml/logout?done=idp"
    done = await client.get(gate.base_url + answered.headers["location"], headers=HTML_ACCEPT)
    assert done.status_code == 200, done.text
    assert "also signed out at your identity provider" in done.text
    # The IdP session is over: a new visit asks for the password again.
    location = await start_at_gate(client, gate.base_url + "/private/again")
    page = await client.get(location, headers=HTML_ACCEPT, follow_redirects=True)
    assert "loginuserpass.php" in str(page.url)


def resigned(url: str, keys: KeyPair) -> str:
    """``url`` with its Redirect-binding Signature replaced by one made with ``keys``."""
    base, _, query = url.partition("?")
    pairs = [p for p in query.split("&") if not p.startswith("Signature=")]
    signed = "&".join(p for p in pairs if p.split("=", 1)[0] in ("SAMLRequest", "SigAlg"))
    key = serialization.load_pem_private_key(keys.key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base + "?" + "&".join([*pairs, "Signature=" + quote(base64.b64encode(signature))])


async def test_simplesamlphp_refuses_a_logout_request_signed_with_another_key(
    ssp_gate: SspGate, client: httpx.AsyncClient, attacker_keys: KeyPair
) -> None:
    """The negative control: SimpleSAMLphp really verifies the gate's LogoutRequest."""
    _, gate = ssp_gate(idp_knows_sp_cert=True, sign_authn_requests=True)
    assert_shows(await sp_initiated_login(client, gate, "alice"), "alice")
    to_idp = (await sign_out_at_gate(client, gate)).headers["location"]
    page = await client.get(resigned(to_idp, attacker_keys), follow_redirects=True)
    assert "Unable to validate signature on query string" in page.text
    assert not str(page.url).startswith(gate.base_url)


async def test_idp_initiated_single_logout(ssp_gate: SspGate, client: httpx.AsyncClient) -> None:
    idp, gate = ssp_gate(idp_knows_sp_cert=True, sign_authn_requests=True)
    assert_shows(await sp_initiated_login(client, gate, "alice"), "alice")
    session = client.cookies["saml_gate_session"]
    done_url = idp.local_metadata_url  # SimpleSAMLphp only returns to its own host
    start = idp.public_url + "saml2/idp/SingleLogoutService.php?ReturnTo=" + done_url
    to_gate = await follow(client, start, gate.base_url + "/saml/slo")
    assert "location" in to_gate.headers, (to_gate.url, to_gate.text)
    request_url = to_gate.headers["location"]
    assert "SAMLRequest=" in request_url and "Signature=" in request_url
    tampered = request_url.replace("RelayState=", "RelayState=elsewhere", 1)
    refused = await client.get(tampered, headers=HTML_ACCEPT)
    assert refused.status_code == 400 and "slo_signature" in refused.text
    assert (await client.get(gate.base_url + "/whoami")).status_code == 200
    answered = await client.get(request_url, headers=HTML_ACCEPT)
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"].startswith(idp.public_url)
    finished = await follow(client, answered.headers["location"], done_url)
    assert finished.headers["location"] == done_url, finished.text
    async with httpx.AsyncClient(cookies={"saml_gate_session": session}) as copied:
        r = await copied.get(gate.base_url + "/whoami", headers={"accept": "application/json"})
        assert r.status_code == 401
