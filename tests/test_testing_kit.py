"""The testing kit (saml_gate.testing): its pytest plugin, sign-ins through the gate's own login
and ACS, deliberate refusals, IdP-initiated sign-in, Single Logout and proxy mode.

The ``saml_idp`` fixture comes from the plugin's ``pytest11`` entry point, not from a conftest.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from saml_gate import Rule, SamlGate
from saml_gate.testing import SamlTestIdp, SignInFailed, gate_error_code

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
MFA = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
RULES = (
    Rule("/admin/", groups=["admins"]),
    Rule("/fresh/", max_authn_age=600),
    Rule("/vault/", authn_contexts=[MFA]),
)


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    if not user.is_authenticated:
        return JSONResponse({"anonymous": True})
    return JSONResponse(
        {
            "email": user.email,
            "name_id": user.name_id,
            "name": user.name,
            "groups": list(user.groups),
            "authn_context": user.authn_context,
            "path": request.url.path,
        }
    )


def gate(saml_idp: SamlTestIdp, **options: Any) -> SamlGate:
    app = Starlette(routes=[Route("/{path:path}", whoami)])
    return SamlGate(app, **saml_idp.gate_options(access_rules=RULES, **options))


@pytest.fixture
def client(saml_idp: SamlTestIdp) -> Iterator[TestClient]:
    with TestClient(gate(saml_idp)) as client:
        yield client


def me(client: TestClient) -> Any:
    return client.get("/me", headers=JSON).json()


# ---------------------------------------------------------------------- the plugin
def test_the_plugin_is_registered_through_the_pytest11_entry_point(
    request: pytest.FixtureRequest,
) -> None:
    found = {e.name: e.value for e in entry_points(group="pytest11")}
    assert found.get("saml_gate") == "saml_gate.testing.plugin"
    assert request.config.pluginmanager.has_plugin("saml_gate")


def test_import_saml_gate_does_not_load_the_kit() -> None:
    code = (
        "import sys, saml_gate; from saml_gate import SamlGate;"
        " print(sorted(m for m in sys.modules if m.startswith('saml_gate.testing')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


#: What the plugin must not load in another project's test run: the kit's libraries, and
#: saml_gate.saml, whose import runs the libxml2 check.
HEAVY = ("lxml", "xmlsec", "httpx", "cryptography", "saml2", "saml_gate.saml")

UNRELATED_TEST = f"""
import sys

def test_the_plugin_is_loaded_and_light(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("saml_gate")
    heavy = {HEAVY!r}
    loaded = sorted(m for m in sys.modules if m.startswith(heavy))
    assert loaded == [], loaded
"""


def test_the_plugin_loads_nothing_heavy_in_another_projects_run(tmp_path: Any) -> None:
    """pytest loads the plugin through its entry point in every run of every project that
    installed saml-gate: a project that never asks for ``saml_idp`` pays for none of the kit."""
    (tmp_path / "test_unrelated.py").write_text(UNRELATED_TEST)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


# ---------------------------------------------------------------------- signing in
def test_sign_in_through_the_gate(saml_idp: SamlTestIdp, client: TestClient) -> None:
    assert me(client)["error"] == "not_authenticated"
    answer = saml_idp.sign_in(
        client,
        email="ann@example.com",
        groups=["admins", "staff"],
        attributes={"displayName": ["Ann"]},
        path="/admin/panel?tab=1",
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/panel?tab=1"
    assert client.cookies.get("saml_gate_session")
    assert me(client) == {
        "email": "ann@example.com",
        "name_id": "ann@example.com",
        "name": "Ann",
        "groups": ["admins", "staff"],
        "authn_context": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        "path": "/me",
    }
    assert client.get("/admin/panel").status_code == 200


def test_groups_decide_access(saml_idp: SamlTestIdp, client: TestClient) -> None:
    saml_idp.sign_in(client, email="bob@example.com", groups=["staff"], name_id="bob-0042")
    assert me(client)["name_id"] == "bob-0042" and me(client)["email"] == "bob@example.com"
    denied = client.get("/admin/panel", headers=JSON)
    assert denied.status_code == 403 and gate_error_code(denied) == "forbidden"


def test_what_the_idp_sends_arrives_verbatim(saml_idp: SamlTestIdp, client: TestClient) -> None:
    name = 'Zoë <admin> & "co"'
    saml_idp.sign_in(
        client, email="zoe@example.com", groups=["a&b"], attributes={"displayName": [name]}
    )
    assert me(client)["name"] == name and me(client)["groups"] == ["a&b"]
    assert saml_idp.sessions == {"zoe@example.com": [saml_idp.sessions["zoe@example.com"][0]]}


async def test_sign_in_async_over_asgi_transport(saml_idp: SamlTestIdp) -> None:
    transport = httpx.ASGITransport(app=gate(saml_idp))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await saml_idp.sign_in_async(client, email="ann@example.com", groups=["admins"])
        assert answer.status_code == 303
        assert (await client.get("/admin/", headers=JSON)).json()["groups"] == ["admins"]


def test_a_client_outside_a_with_block_works_too(saml_idp: SamlTestIdp) -> None:
    client = TestClient(gate(saml_idp))
    saml_idp.sign_in(client, email="ann@example.com")
    assert me(client)["email"] == "ann@example.com"


def test_authn_age_and_context_meet_step_up_rules(
    saml_idp: SamlTestIdp, client: TestClient
) -> None:
    with pytest.raises(SignInFailed, match="step_up_failed") as old:
        saml_idp.sign_in(client, path="/fresh/", authn_age=3600)
    assert old.value.error_code == "step_up_failed" and old.value.response.status_code == 403
    saml_idp.sign_in(client, path="/fresh/", authn_age=60)
    assert client.get("/fresh/", headers=JSON).status_code == 200
    with pytest.raises(SignInFailed, match="step_up_failed"):
        saml_idp.sign_in(client, path="/vault/")
    saml_idp.sign_in(client, path="/vault/", authn_context="mfa")
    assert me(client)["authn_context"] == MFA


def test_the_clock_is_shared_with_the_gate(saml_idp: SamlTestIdp) -> None:
    with TestClient(gate(saml_idp, maximum_duration=3600)) as client:
        saml_idp.sign_in(client)
        saml_idp.clock.advance(3000)
        assert client.get("/me", headers=JSON).status_code == 200
        saml_idp.clock.advance(700)
        assert client.get("/me", headers=JSON).status_code == 401


def test_the_flows_follow_the_gate_options(saml_idp: SamlTestIdp) -> None:
    options = dict(prefix="/sso", groups_attribute="memberOf", want_response_signed=True)
    with TestClient(gate(saml_idp, **options)) as client:
        answer = saml_idp.sign_in(client, groups=["admins"], path="/admin/")
        assert answer.headers["location"] == "/admin/"
        assert client.get("/admin/", headers=JSON).json()["groups"] == ["admins"]


def test_a_gate_refusal_raises_with_its_error_code(saml_idp: SamlTestIdp) -> None:
    with TestClient(gate(saml_idp, authorized_groups=["admins"])) as client:
        with pytest.raises(SignInFailed) as refused:
            saml_idp.sign_in(client)  # no groups attribute at all: an IdP setup error
        assert refused.value.error_code == "groups_missing"
        assert client.get("/me", headers=JSON).status_code == 401
        saml_idp.sign_in(client, groups=["staff"])  # signed in, but not let in
        denied = client.get("/me", headers=JSON)
        assert denied.status_code == 403 and gate_error_code(denied) == "forbidden"


# ---------------------------------------------------------------------- refusals on purpose
@pytest.mark.parametrize(
    ("mistake", "code"),
    [
        ({"expired": True}, "expired"),
        ({"audience": "https://other.example/saml/metadata"}, "wrong_audience"),
        ({"tampered": True}, "signature_invalid"),
        ({"unsigned": True}, "signature_missing"),
        ({"issuer": "https://other-idp.example/"}, "wrong_issuer"),
    ],
)
def test_post_response_shows_what_the_gate_refuses(
    saml_idp: SamlTestIdp, client: TestClient, mistake: dict[str, Any], code: str
) -> None:
    answer = saml_idp.post_response(client, email="ann@example.com", **mistake)
    assert answer.status_code == 400 and gate_error_code(answer) == code
    assert "<h1>" in answer.text  # the page a browser would show
    assert client.get("/me", headers=JSON).status_code == 401


async def test_post_response_async(saml_idp: SamlTestIdp) -> None:
    transport = httpx.ASGITransport(app=gate(saml_idp))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await saml_idp.post_response_async(client, unsigned=True)
        assert gate_error_code(answer) == "signature_missing"


# ---------------------------------------------------------------------- IdP-initiated, logout
def test_idp_initiated_sign_in_needs_the_setting(saml_idp: SamlTestIdp, client: TestClient) -> None:
    with pytest.raises(SignInFailed) as refused:
        saml_idp.sign_in_idp_initiated(client, path="/reports")
    assert refused.value.error_code == "unsolicited"
    with TestClient(gate(saml_idp, allow_idp_initiated=True)) as allowed:
        answer = saml_idp.sign_in_idp_initiated(allowed, email="ann@example.com", path="/reports")
        assert answer.headers["location"] == "/reports"
        assert me(allowed)["email"] == "ann@example.com"


async def test_idp_initiated_logout_ends_that_persons_sessions(saml_idp: SamlTestIdp) -> None:
    transport = httpx.ASGITransport(app=gate(saml_idp))
    browsers = [httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in "abc"]
    ann, ann_elsewhere, bob = browsers
    await saml_idp.sign_in_async(ann, email="ann@example.com")
    await saml_idp.sign_in_async(ann_elsewhere, email="ann@example.com")
    await saml_idp.sign_in_async(bob, email="bob@example.com")
    answer = await saml_idp.logout_async(bob, email="ann@example.com")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(saml_idp.slo_url + "?SAMLResponse=")
    statuses = [(await c.get("/me", headers=JSON)).status_code for c in browsers]
    assert statuses == [401, 401, 200]
    for browser in browsers:
        await browser.aclose()


def test_sign_out_completes_single_logout_at_the_test_idp(
    saml_idp: SamlTestIdp, client: TestClient
) -> None:
    saml_idp.sign_in(client)
    signed_out = saml_idp.sign_out(client)
    assert signed_out.status_code == 200 and "You are signed out" in signed_out.text
    assert "You are also signed out at your identity provider." in signed_out.text
    assert client.get("/me", headers=JSON).status_code == 401
    assert saml_idp.sign_out(client).status_code == 200  # nobody left: the signed-out page


async def test_sign_out_async_without_idp_logout(saml_idp: SamlTestIdp) -> None:
    transport = httpx.ASGITransport(app=gate(saml_idp, idp_logout=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await saml_idp.sign_in_async(client)
        signed_out = await saml_idp.sign_out_async(client)
        assert signed_out.status_code == 200 and "may still be signed in" in signed_out.text
        assert (await client.get("/me", headers=JSON)).status_code == 401
        assert (await saml_idp.logout_async(client)).status_code == 303


# ---------------------------------------------------------------------- proxy mode
def test_proxy_mode_shows_what_the_upstream_receives(saml_idp: SamlTestIdp) -> None:
    with saml_idp.proxy(groups_header="X-Groups") as proxy:
        refused = proxy.client.get("/reports", headers=JSON)
        assert refused.status_code == 401 and proxy.received == []
        seen = proxy.sign_in(email="ann@example.com", groups=["admins", "staff"], path="/r?x=1")
        assert (seen.method, seen.target) == ("GET", "/r?x=1")
        assert seen.headers["x-forwarded-user"] == "ann@example.com"
        assert seen.headers["x-forwarded-email"] == "ann@example.com"
        assert seen.headers["x-groups"] == "admins,staff"
        assert "saml_gate_session" not in seen.headers.get("cookie", "")
        posted = proxy.client.post("/form", content=b"a=1", headers=JSON)
        assert posted.json()["method"] == "POST" and proxy.received[-1].body == b"a=1"
