"""The gate against saml-idp (npm), a permissive IdP that believes whatever the request says.

saml-idp signs what it is asked to sign: the ACS URL, the request ID and the RelayState it
answers come from a base64 JSON form field that passes through the browser, and the person
"signing in" types their own identity. A gate that relied on its IdP to check anything would
fall here; these tests show the gate checks it itself.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.interop.client import (
    HTML_ACCEPT,
    HtmlForm,
    error_code,
    form_with,
    saml_response_xml,
    start_at_gate,
    submit,
)
from tests.interop.conftest import SamlIdpGate
from tests.interop.gate_server import GateServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

OTHER_APP = "https://other-app.example"


async def profile_form(client: httpx.AsyncClient, gate: GateServer, path: str) -> HtmlForm:
    """Start a sign-in at the gate; saml-idp's profile form, which carries the request."""
    location = await start_at_gate(client, gate.base_url + path)
    return form_with(await client.get(location, headers=HTML_ACCEPT), "_authnRequest")


def edited(form: HtmlForm, **request: Any) -> HtmlForm:
    """The form with fields of the AuthnRequest it carries changed, as anyone can."""
    carried = json.loads(base64.b64decode(form.fields["_authnRequest"]))
    carried.update(request)
    encoded = base64.b64encode(json.dumps(carried).encode()).decode()
    return HtmlForm(form.action, form.method, {**form.fields, "_authnRequest": encoded})


async def issue(client: httpx.AsyncClient, form: HtmlForm, **profile: str) -> HtmlForm:
    """Submit the profile form: saml-idp's auto-posting form with the signed Response."""
    return form_with(await submit(client, form, **profile), "SAMLResponse")


async def post_to_gate(
    client: httpx.AsyncClient, gate: GateServer, form: HtmlForm
) -> httpx.Response:
    """POST the Response to *our* ACS, wherever saml-idp meant to send it."""
    return await client.post(gate.acs_url, data=form.fields, headers=HTML_ACCEPT)


async def test_login(saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient) -> None:
    idp, gate = saml_idp_gate()
    form = await issue(
        client,
        await profile_form(client, gate, "/private/app"),
        userName="carol@example.com",
        email="carol@example.com",
        displayName="Carol Example",
        groups="users,ops",
    )
    assert form.action == gate.acs_url
    acs = await post_to_gate(client, gate, form)
    assert acs.status_code == 303, acs.text
    assert acs.headers["location"] == "/private/app"
    whoami = (await client.get(gate.base_url + "/whoami")).json()
    assert whoami["name_id"] == "carol@example.com"
    assert whoami["groups"] == ["users", "ops"]
    assert whoami["issuer"] == idp.entity_id


async def test_response_for_another_acs_is_refused(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient
) -> None:
    """saml-idp addresses the Response to whatever ACS the request names."""
    _, gate = saml_idp_gate()
    form = await profile_form(client, gate, "/private/app")
    response_form = await issue(client, edited(form, acsUrl=OTHER_APP + "/saml/acs"))
    response = saml_response_xml(response_form)
    assert response.get("Destination") == OTHER_APP + "/saml/acs"
    assert response_form.action == OTHER_APP + "/saml/acs"
    acs = await post_to_gate(client, gate, response_form)
    assert acs.status_code == 400
    assert error_code(acs) == "wrong_destination"
    assert "saml_gate_session" not in client.cookies


async def test_response_for_another_audience_is_refused(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient
) -> None:
    """saml-idp configured for another SP still answers our AuthnRequest, for that SP."""
    _, gate = saml_idp_gate(audience=OTHER_APP + "/saml/metadata")
    form = await issue(client, await profile_form(client, gate, "/private/app"))
    assert form.action == gate.acs_url
    acs = await post_to_gate(client, gate, form)
    assert acs.status_code == 400
    assert error_code(acs) == "wrong_audience"


async def test_response_to_a_request_never_made_is_refused(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient
) -> None:
    _, gate = saml_idp_gate()
    form = await profile_form(client, gate, "/private/app")
    acs = await post_to_gate(client, gate, await issue(client, edited(form, id="id-forged-1")))
    assert acs.status_code == 400
    assert error_code(acs) == "unknown_request"


async def test_relay_state_of_another_sign_in_is_refused(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient
) -> None:
    """Two sign-ins in one browser: the Response of the first with the RelayState of the second."""
    _, gate = saml_idp_gate()
    first = await profile_form(client, gate, "/private/first")
    second = await profile_form(client, gate, "/private/second")
    relay_of_second = json.loads(base64.b64decode(second.fields["_authnRequest"]))["relayState"]
    acs = await post_to_gate(
        client, gate, await issue(client, edited(first, relayState=relay_of_second))
    )
    assert acs.status_code == 400
    assert error_code(acs) == "bad_relay_state"


async def test_someone_elses_response_is_refused(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient
) -> None:
    """Login CSRF: a Response the attacker obtained for their own sign-in, posted by the victim."""
    _, gate = saml_idp_gate()
    async with httpx.AsyncClient(timeout=30.0) as attacker:
        stolen = await issue(attacker, await profile_form(attacker, gate, "/private/app"))
    await profile_form(client, gate, "/private/app")  # the victim's own sign-in is pending
    acs = await post_to_gate(client, gate, stolen)
    assert acs.status_code == 400
    assert error_code(acs) == "unknown_request"


@pytest.mark.parametrize("allowed", [True, False])
async def test_unsolicited_response(
    saml_idp_gate: SamlIdpGate, client: httpx.AsyncClient, allowed: bool
) -> None:
    """A profile form posted without a request: an unsolicited Response; a replay is refused."""
    _, gate = saml_idp_gate(allow_idp_initiated=allowed)
    form = await profile_form(client, gate, "/private/app")
    unsolicited = HtmlForm(
        form.action, form.method, {k: v for k, v in form.fields.items() if k != "_authnRequest"}
    )
    response_form = await issue(client, unsolicited)
    assert saml_response_xml(response_form).get("InResponseTo") is None
    acs = await post_to_gate(client, gate, response_form)
    if not allowed:
        assert acs.status_code == 400
        assert error_code(acs) == "unsolicited"
        return
    assert acs.status_code == 303, acs.text
    assert acs.headers["location"] == "/"
    async with httpx.AsyncClient(timeout=30.0) as replayer:
        replay = await post_to_gate(replayer, gate, response_form)
    assert replay.status_code == 400
    assert error_code(replay) == "replayed"
