"""The FastAPI example tested as its authors would: signed-in people of various groups, through
the gate, with the ``saml_idp`` fixture of saml-gate's pytest plugin (no conftest needed).

Run: ``python -m pytest examples/fastapi_app/tests``
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient, WebSocketDenialResponse

from examples.fastapi_app.main import create_app
from saml_gate.testing import SamlTestIdp, SignInFailed

JSON = {"accept": "application/json"}


@pytest.fixture
def app(saml_idp: SamlTestIdp) -> FastAPI:
    return create_app(**saml_idp.gate_options())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def test_health_is_public_and_the_api_wants_a_sign_in(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
    refused = client.get("/api/me", headers=JSON)
    assert refused.status_code == 401
    assert refused.json()["error"] == "not_authenticated"


def test_a_signed_in_admin_sees_everything(saml_idp: SamlTestIdp, client: TestClient) -> None:
    saml_idp.sign_in(
        client,
        email="ann@example.com",
        groups=["admins", "users"],
        attributes={"displayName": ["Ann Admin"]},
    )
    assert "Hello, Ann Admin" in client.get("/").text
    me = client.get("/api/me", headers=JSON).json()
    assert me["email"] == "ann@example.com" and me["groups"] == ["admins", "users"]
    stats = client.get("/api/admin/stats", headers=JSON).json()
    assert stats == {"requested_by": "ann@example.com", "groups": ["admins", "users"]}
    assert client.get("/admin").status_code == 200


def test_the_admin_pages_are_for_admins_only(saml_idp: SamlTestIdp, client: TestClient) -> None:
    saml_idp.sign_in(client, email="bob@example.com", groups=["users"])
    assert client.get("/").status_code == 200
    assert client.get("/admin").status_code == 403
    denied = client.get("/api/admin/stats", headers=JSON)
    assert denied.status_code == 403 and denied.json()["detail"]["error"] == "forbidden"


def test_admin_asks_for_a_recent_sign_in(saml_idp: SamlTestIdp, client: TestClient) -> None:
    saml_idp.sign_in(client, email="ann@example.com", groups=["admins"])
    saml_idp.clock.advance(700)  # ACCESS_RULES: /admin wants a sign-in at most 600 s old
    assert client.get("/").status_code == 200
    step_up = client.get("/admin", follow_redirects=False)
    assert step_up.status_code == 303 and step_up.headers["location"].startswith(saml_idp.sso_url)
    saml_idp.sign_in(client, email="ann@example.com", groups=["admins"], path="/admin")
    assert client.get("/admin").status_code == 200


def test_an_old_idp_session_does_not_open_admin(saml_idp: SamlTestIdp, client: TestClient) -> None:
    with pytest.raises(SignInFailed) as refused:
        saml_idp.sign_in(client, email="ann@example.com", groups=["admins"], path="/admin",
                         authn_age=3600)  # fmt: skip
    assert refused.value.error_code == "step_up_failed"


def test_the_websocket_greets_the_signed_in_person(
    saml_idp: SamlTestIdp, client: TestClient
) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
        pass
    assert denied.value.status_code == 401
    saml_idp.sign_in(client, email="bob@example.com", groups=["users"])
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"hello": "bob@example.com", "groups": ["users"]}
        ws.send_text("ping")
        assert ws.receive_text() == "bob@example.com: ping"


def test_what_a_broken_idp_configuration_looks_like(
    saml_idp: SamlTestIdp, client: TestClient
) -> None:
    answer = saml_idp.post_response(client, audience="https://wrong.example/saml/metadata")
    assert answer.status_code == 400 and "wrong_audience" in answer.text
    assert client.get("/api/me", headers=JSON).status_code == 401


def test_signing_out_ends_the_session(saml_idp: SamlTestIdp, client: TestClient) -> None:
    saml_idp.sign_in(client, email="bob@example.com", groups=["users"])
    assert "You are signed out" in saml_idp.sign_out(client).text
    assert client.get("/api/me", headers=JSON).status_code == 401
