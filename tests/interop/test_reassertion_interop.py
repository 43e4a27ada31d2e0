"""Re-assertion against SimpleSAMLphp, which answers IsPassive from its own session.

The gate (a real uvicorn server) asks SimpleSAMLphp passively once ``reassert_interval`` has
passed — its clock is moved on instead of waiting; SimpleSAMLphp's Responses stay fresh enough
— and SimpleSAMLphp answers with no page: the person of its session, the groups an authproc
filter reads from a file at each response (so a test changes them between sign-in and
re-assertion), or ``NoPassive`` when the browser has no session there any more.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from saml_gate.saml import xmlconst as X
from saml_gate.testing import IdpClock
from tests.interop.client import (
    HTML_ACCEPT,
    authn_request,
    error_code,
    form_with,
    saml_response_xml,
)
from tests.interop.conftest import SspGate
from tests.interop.gate_server import GateServer
from tests.interop.test_simplesamlphp import assert_shows, post_to_acs, sp_initiated_login

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

INTERVAL = 60.0
ADMIN_PAGE = "/private/admin/report"


def groups_of(path: Path, **people: list[str]) -> Path:
    path.write_text(json.dumps(people))
    return path


async def passive_answer(
    client: httpx.AsyncClient, gate: GateServer, path: str, status: str = "Success"
) -> httpx.Response:
    """A page load past the interval: the gate's passive AuthnRequest, SimpleSAMLphp's
    auto-posting page in answer (no password asked) with this ``status``, posted to the ACS."""
    start = await client.get(gate.base_url + path, headers=HTML_ACCEPT)
    assert start.status_code == 303, start.text
    assert authn_request(start.headers["location"]).get("IsPassive") == "true"
    page = await client.get(start.headers["location"], headers=HTML_ACCEPT, follow_redirects=True)
    assert "loginuserpass.php" not in str(page.url)  # SimpleSAMLphp asked nobody anything
    form = form_with(page, "SAMLResponse")
    codes = saml_response_xml(form).iter(f"{{{X.NS_SAMLP}}}StatusCode")
    assert [c.get("Value", "").rsplit(":", 1)[-1] for c in codes][-1] == status
    return await post_to_acs(client, form)


@pytest.fixture
def clock() -> IdpClock:
    return IdpClock()


async def test_success_keeps_the_person_in(
    ssp_gate: SspGate, client: httpx.AsyncClient, clock: IdpClock, tmp_path: Path
) -> None:
    _, gate = ssp_gate(reassert_interval=INTERVAL, clock=clock)
    assert_shows(await sp_initiated_login(client, gate, "alice", ADMIN_PAGE), "alice")
    clock.advance(INTERVAL + 5)
    back = await passive_answer(client, gate, ADMIN_PAGE)
    assert (back.status_code, back.headers["location"]) == (303, ADMIN_PAGE)
    assert_shows(await client.get(gate.base_url + ADMIN_PAGE, headers=HTML_ACCEPT), "alice")


async def test_changed_groups_reach_the_policy(
    ssp_gate: SspGate, client: httpx.AsyncClient, clock: IdpClock, tmp_path: Path
) -> None:
    """alice is removed from admins at the IdP: /private/admin/ is closed at re-assertion."""
    groups = groups_of(tmp_path / "groups.json", alice=["admins", "users"])
    _, gate = ssp_gate(
        reassert_interval=INTERVAL,
        clock=clock,
        groups_file=groups,
        access_rules=["/private/admin/ groups=admins"],
    )
    page = await sp_initiated_login(client, gate, "alice", ADMIN_PAGE)
    assert page.status_code == 200, page.text
    groups_of(groups, alice=["users"])
    clock.advance(INTERVAL + 5)
    back = await passive_answer(client, gate, ADMIN_PAGE)
    assert back.status_code == 303
    denied = await client.get(gate.base_url + ADMIN_PAGE, headers=HTML_ACCEPT)
    assert denied.status_code == 403 and error_code(denied) == "forbidden"
    whoami = (await client.get(gate.base_url + "/whoami")).json()
    assert whoami["groups"] == ["users"]


async def test_no_passive_ends_the_session_and_signs_in_again(
    ssp_gate: SspGate, client: httpx.AsyncClient, clock: IdpClock
) -> None:
    """Every session of the person ends: this browser's, and the one on their other device."""
    _, gate = ssp_gate(reassert_interval=INTERVAL, clock=clock)
    async with httpx.AsyncClient(timeout=30.0) as phone:
        await sp_initiated_login(phone, gate, "bob", "/private/page")
        phone_session = phone.cookies["saml_gate_session"]
    await sp_initiated_login(client, gate, "bob", "/private/page")
    # the IdP session is gone (expired, signed out there): only the gate's cookie is left
    session = client.cookies["saml_gate_session"]
    client.cookies.clear()
    client.cookies.set("saml_gate_session", session)
    clock.advance(INTERVAL + 5)
    back = await passive_answer(client, gate, "/private/page", status="NoPassive")
    assert back.status_code == 303
    target = urlsplit(back.headers["location"])
    assert (target.path, parse_qs(target.query)) == (
        "/saml/login",
        {"return_to": ["/private/page"]},
    )
    again = await client.get(back.headers["location"], headers=HTML_ACCEPT)
    assert authn_request(again.headers["location"]).get("IsPassive") is None
    login = await client.get(again.headers["location"], follow_redirects=True)
    assert "loginuserpass.php" in str(login.url)  # a normal sign-in: the password again
    async with httpx.AsyncClient(cookies={"saml_gate_session": phone_session}) as phone:
        refused = await phone.get(gate.base_url + "/whoami", headers={"accept": "application/json"})
    assert (refused.status_code, refused.json()["error"]) == (401, "not_authenticated")
