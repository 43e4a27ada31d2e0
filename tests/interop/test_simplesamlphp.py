"""The gate against SimpleSAMLphp, a strict IdP nobody here wrote, through the real HTTP flow.

AuthnRequest (HTTP-Redirect) → SimpleSAMLphp's password form → its auto-posting form with the
signed Response → the gate's ACS → the protected page. The gate and the IdP are real servers on
loopback; httpx plays the browser.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from tests.interop.client import (
    HTML_ACCEPT,
    HtmlForm,
    authn_request,
    error_code,
    form_with,
    saml_response_xml,
    start_at_gate,
    submit,
)
from tests.interop.conftest import SspGate
from tests.interop.gate_server import GateServer
from tests.interop.simplesamlphp import USERS, SimpleSamlPhp

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

GROUPS = {"alice": ["admins", "users"], "bob": ["users"]}
DS_SIGNATURE = f"{{{X.NS_DS}}}Signature"


async def sign_in_at_idp(client: httpx.AsyncClient, idp_url: str, user: str) -> HtmlForm:
    """Open an IdP URL, type the user's password: the auto-posting form bound for the ACS."""
    login_page = await client.get(idp_url, headers=HTML_ACCEPT, follow_redirects=True)
    assert "loginuserpass.php" in str(login_page.url), login_page.text
    posted = await submit(
        client, form_with(login_page, "username"), username=user, password=USERS[user]
    )
    return form_with(posted, "SAMLResponse")


async def post_to_acs(client: httpx.AsyncClient, form: HtmlForm) -> httpx.Response:
    """What the auto-posting form does: POST SAMLResponse and RelayState to the ACS."""
    return await client.post(form.action, data=form.fields, headers=HTML_ACCEPT)


async def sp_initiated_login(
    client: httpx.AsyncClient, gate: GateServer, user: str, path: str = "/private/report?q=1"
) -> httpx.Response:
    """The whole SP-initiated flow; returns the protected page the browser lands on."""
    location = await start_at_gate(client, gate.base_url + path)
    form = await sign_in_at_idp(client, location, user)
    assert form.action == gate.acs_url
    acs = await post_to_acs(client, form)
    assert acs.status_code == 303, acs.text
    assert acs.headers["location"] == path
    return await client.get(gate.base_url + path, headers=HTML_ACCEPT)


def assert_shows(page: httpx.Response, user: str) -> None:
    assert page.status_code == 200, page.text
    assert f"<b id=name-id>{user}@example.com</b>" in page.text
    groups = "".join(f"<li>{g}</li>" for g in GROUPS[user])
    assert f"<ul id=groups>{groups}</ul>" in page.text


@pytest.mark.parametrize("user", ["alice", "bob"])
async def test_sp_initiated_login(ssp_gate: SspGate, client: httpx.AsyncClient, user: str) -> None:
    idp, gate = ssp_gate()
    location = await start_at_gate(client, gate.base_url + "/private/report?q=1")

    request = authn_request(location)
    assert location.startswith(idp.public_url + "saml2/idp/SSOService.php?")
    assert request.get("AssertionConsumerServiceURL") == gate.acs_url
    assert request.findtext(f"{{{X.NS_SAML}}}Issuer") == gate.entity_id

    form = await sign_in_at_idp(client, location, user)
    response = saml_response_xml(form)
    # Like Okta's default: the Response and the Assertion are both signed, and answer our request.
    assert response.get("InResponseTo") == request.get("ID")
    assert response.get("Destination") == gate.acs_url
    assert response.find(DS_SIGNATURE) is not None
    assert response.find(f"{{{X.NS_SAML}}}Assertion/{DS_SIGNATURE}") is not None

    acs = await post_to_acs(client, form)
    assert acs.status_code == 303, acs.text
    assert acs.headers["location"] == "/private/report?q=1"
    page = await client.get(gate.base_url + "/private/report?q=1", headers=HTML_ACCEPT)
    assert_shows(page, user)

    whoami = (await client.get(gate.base_url + "/whoami")).json()
    assert whoami["name_id"] == f"{user}@example.com"
    assert whoami["groups"] == GROUPS[user]
    assert whoami["issuer"] == idp.entity_id


async def test_second_app_visit_uses_the_idp_session(
    ssp_gate: SspGate, client: httpx.AsyncClient
) -> None:
    """Signed in at the IdP already: a new gate sign-in needs no password, like Okta's SSO."""
    _, gate = ssp_gate()
    assert_shows(await sp_initiated_login(client, gate, "alice"), "alice")
    client.cookies.delete("saml_gate_session")
    location = await start_at_gate(client, gate.base_url + "/again")
    form = form_with(await client.get(location, follow_redirects=True), "SAMLResponse")
    acs = await post_to_acs(client, form)
    assert acs.status_code == 303, acs.text
    assert_shows(await client.get(gate.base_url + "/again"), "alice")


async def idp_initiated(
    client: httpx.AsyncClient, idp: SimpleSamlPhp, gate: GateServer, target: str
) -> httpx.Response:
    """Like clicking the app's tile on the Okta dashboard: the ACS's answer."""
    form = await sign_in_at_idp(client, idp.idp_initiated_url(gate.entity_id, target), "alice")
    assert saml_response_xml(form).get("InResponseTo") is None
    assert form.fields["RelayState"] == target
    return await post_to_acs(client, form)


async def test_idp_initiated_login_when_allowed(
    ssp_gate: SspGate, client: httpx.AsyncClient
) -> None:
    idp, gate = ssp_gate(allow_idp_initiated=True)
    acs = await idp_initiated(client, idp, gate, "/private/dashboard")
    assert acs.status_code == 303, acs.text
    assert acs.headers["location"] == "/private/dashboard"
    assert_shows(await client.get(gate.base_url + "/private/dashboard"), "alice")


async def test_idp_initiated_login_refused_by_default(
    ssp_gate: SspGate, client: httpx.AsyncClient
) -> None:
    idp, gate = ssp_gate()
    acs = await idp_initiated(client, idp, gate, "/private/dashboard")
    assert acs.status_code == 400
    assert error_code(acs) == "unsolicited"
    assert "saml_gate_session" not in client.cookies
    again = await client.get(gate.base_url + "/private/dashboard", headers=HTML_ACCEPT)
    assert again.status_code == 303


@pytest.mark.parametrize(("user", "status"), [("alice", 200), ("bob", 403)])
async def test_authorized_groups(
    ssp_gate: SspGate, client: httpx.AsyncClient, user: str, status: int
) -> None:
    _, gate = ssp_gate(authorized_groups=["admins"])
    page = await sp_initiated_login(client, gate, user)
    assert page.status_code == status, page.text
    if status == 200:
        assert_shows(page, user)
    else:
        assert error_code(page) == "forbidden"
        assert "Hello," not in page.text
        assert (await client.get(gate.base_url + "/whoami")).status_code == 403


def metadata_not_asking(xml: str) -> str:
    """The IdP's metadata without WantAuthnRequestsSigned (Okta's never has it)."""
    return xml.replace('WantAuthnRequestsSigned="true"', 'WantAuthnRequestsSigned="false"')


@pytest.mark.parametrize(
    ("setting", "edit"),
    [(True, str), (None, str), (None, metadata_not_asking)],
    ids=["sign_authn_requests", "from metadata", "sp_key configured"],
)
async def test_signed_authn_requests_checked_by_the_idp(
    ssp_gate: SspGate,
    client: httpx.AsyncClient,
    setting: bool | None,
    edit: Callable[[str], str],
) -> None:
    """With SP_CERT_FILE the IdP verifies the request's signature (as Okta with "Signed
    Requests"). The gate signs when sign_authn_requests=True, and by default when an SP key is
    configured or the metadata says WantAuthnRequestsSigned."""
    idp, gate = ssp_gate(idp_knows_sp_cert=True, sign_authn_requests=setting, edit_metadata=edit)
    assert 'WantAuthnRequestsSigned="true"' in httpx.get(idp.local_metadata_url).text
    assert gate.gate.core.saml.sp.sign_requests
    location = await start_at_gate(client, gate.base_url + "/private/signed")
    query = parse_qs(urlsplit(location).query)
    assert query["SigAlg"] == [X.RSA_SHA256]
    assert query["Signature"]
    form = await sign_in_at_idp(client, location, "alice")
    acs = await post_to_acs(client, form)
    assert acs.status_code == 303, acs.text
    assert_shows(await client.get(gate.base_url + "/private/signed"), "alice")


@pytest.mark.parametrize("fault", ["unsigned", "signed with another key"])
async def test_idp_refuses_requests_it_cannot_verify(
    ssp_gate: SspGate, client: httpx.AsyncClient, attacker_keys: KeyPair, fault: str
) -> None:
    """The negative of the test above: SimpleSAMLphp really checks, so the positive means it."""
    if fault == "unsigned":
        _, gate = ssp_gate(idp_knows_sp_cert=True, sign_authn_requests=False)
    else:
        _, gate = ssp_gate(
            idp_knows_sp_cert=True, sign_authn_requests=True, gate_keys=attacker_keys
        )
    location = await start_at_gate(client, gate.base_url + "/private/signed")
    page = await client.get(location, headers=HTML_ACCEPT, follow_redirects=True)
    assert "loginuserpass.php" not in str(page.url)
    assert "SAMLResponse" not in page.text
    # SimpleSAMLphp answers with an error page (status 200) naming the reason.
    assert "Unhandled exception" in page.text
    expected = {
        "unsigned": "Validation of received messages enabled, but no signature found on message",
        "signed with another key": "Unable to validate signature on query string",
    }[fault]
    assert expected in page.text


async def test_encrypted_assertions(ssp_gate: SspGate, client: httpx.AsyncClient) -> None:
    """SP_ENCRYPT_ASSERTION: the assertion reaches the gate encrypted to its certificate."""
    _, gate = ssp_gate(idp_knows_sp_cert=True, encrypt=True, sign_authn_requests=True)
    location = await start_at_gate(client, gate.base_url + "/private/secret")
    form = await sign_in_at_idp(client, location, "alice")
    response = saml_response_xml(form)
    assert response.find(f"{{{X.NS_SAML}}}Assertion") is None
    encrypted = response.find(f"{{{X.NS_SAML}}}EncryptedAssertion")
    assert encrypted is not None
    assert b"alice@example.com" not in base64.b64decode(form.fields["SAMLResponse"])
    methods = [m.get("Algorithm") for m in encrypted.iter(f"{{{X.NS_XENC}}}EncryptionMethod")]
    # SimpleSAMLphp 1.19's defaults (Okta's are AES-256-CBC/GCM with the same key transport).
    assert methods == [X.AES128_CBC, X.RSA_OAEP_MGF1P]
    acs = await post_to_acs(client, form)
    assert acs.status_code == 303, acs.text
    assert_shows(await client.get(gate.base_url + "/private/secret"), "alice")
