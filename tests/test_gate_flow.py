"""The login round trip and the basic refusals, through the real endpoints."""

from __future__ import annotations

import html
import json

import pytest
from starlette.authentication import AuthCredentials

from saml_gate.saml import xmlconst as X
from tests.support import ACS_URL, ENTITY_ID, Harness, decode_redirect_request

pytestmark = pytest.mark.anyio


async def test_unauthenticated_browser_is_sent_to_the_idp(harness: Harness) -> None:
    r = await harness.client.get("/private/page?x=1", headers={"accept": "text/html"})
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("https://idp.example.test/app/sso/saml?SAMLRequest=")
    request, relay = decode_redirect_request(location)
    assert request.get("AssertionConsumerServiceURL") == ACS_URL
    assert request.findtext(f"{{{X.NS_SAML}}}Issuer") == ENTITY_ID
    assert relay and len(relay) <= 80  # SAML bindings limit RelayState to 80 bytes
    cookie = r.headers["set-cookie"]
    assert "Path=/saml/acs" in cookie and "HttpOnly" in cookie and "Max-Age=600" in cookie
    assert r.headers["cache-control"] == "no-store"


async def test_api_clients_get_401_json(harness: Harness) -> None:
    for method, headers in (
        ("GET", {"accept": "application/json"}),
        ("GET", {"x-requested-with": "XMLHttpRequest"}),
        ("GET", {"sec-fetch-mode": "cors", "accept": "*/*"}),
        ("POST", {"accept": "text/html"}),
    ):
        r = await harness.client.request(method, "/private/api", headers=headers)
        assert r.status_code == 401, (method, headers)
        body = r.json()
        assert body["error"] == "not_authenticated"
        assert body["login_url"] == "http://127.0.0.1:8000/saml/login?return_to=%2Fprivate%2Fapi"
        assert "set-cookie" not in r.headers  # no state per unauthenticated visitor


async def test_full_round_trip_sets_session_and_returns_to_the_page(harness: Harness) -> None:
    r = await harness.login("/private/page?tab=2")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/private/page?tab=2"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("saml_gate_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    assert any(c.startswith("saml_gate_req_") and "Max-Age=0" in c for c in cookies)
    page = await harness.client.get("/private/page?tab=2")
    assert page.status_code == 200
    assert page.json() == {
        "email": "alice@example.com",
        "groups": ["admins", "users"],
        "scopes": ["authenticated", "group:admins", "group:users"],
    }
    me = await harness.client.get("/saml/session")
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "alice@example.com" and body["name"] == "Alice Admin"
    assert body["expires_at"] == "2026-03-02T17:00:00Z"


async def test_session_endpoint_is_401_when_signed_out(harness: Harness) -> None:
    r = await harness.client.get("/saml/session")
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


async def test_explicit_login_endpoint_honours_return_path(harness: Harness) -> None:
    r = await harness.client.get("/saml/login", params={"return_to": "/private/x?y=1"})
    assert r.status_code == 303
    request, relay = decode_redirect_request(r.headers["location"])
    ok = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=request.get("ID"))), relay
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/private/x?y=1"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "/%252F%252Fevil.example",
        "/ok\r\nX: y",
    ],
)
async def test_login_refuses_open_redirects(harness: Harness, target: str) -> None:
    r = await harness.client.get("/saml/login", params={"return_to": target})
    assert r.status_code == 400
    assert "bad_relay_state" in r.text
    assert "location" not in r.headers


async def test_logout_clears_and_revokes_the_session(harness: Harness) -> None:
    await harness.login()
    stolen = harness.client.cookies.get("saml_gate_session")
    page = await harness.client.get("/saml/logout")
    assert page.status_code == 200 and "Sign out of this application?" in page.text
    token = page.text.split("name=token value='")[1].split("'")[0]
    forged = await harness.client.post("/saml/logout", data={"token": "nope"})
    assert forged.status_code == 400
    assert (await harness.client.get("/private/p")).status_code == 200
    out = await harness.client.post("/saml/logout", data={"token": token})
    assert out.status_code == 200 and "You are signed out" in out.text
    assert "saml_gate_session=;" in out.headers["set-cookie"]
    assert (
        await harness.client.get("/private/p", headers={"accept": "text/html"})
    ).status_code == 303
    # A copy of the old cookie no longer works either.
    harness.client.cookies.set("saml_gate_session", stolen)
    r = await harness.client.get("/private/p", headers={"accept": "application/json"})
    assert r.status_code == 401


async def test_metadata_describes_the_sp(harness: Harness) -> None:
    r = await harness.client.get("/saml/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/samlmetadata+xml")
    from lxml import etree

    root = etree.fromstring(r.content)
    ns = {"md": X.NS_MD, "ds": X.NS_DS}
    assert root.get("entityID") == ENTITY_ID
    sp = root.find("md:SPSSODescriptor", ns)
    assert sp is not None and sp.get("WantAssertionsSigned") in ("true", "false")
    acs = sp.find("md:AssertionConsumerService", ns)
    assert acs.get("Location") == ACS_URL and acs.get("Binding") == X.BINDING_HTTP_POST
    slo = sp.find("md:SingleLogoutService", ns)
    assert slo.get("Location") == "http://127.0.0.1:8000/saml/slo"
    assert sp.findtext("md:NameIDFormat", namespaces=ns) == X.NAMEID_EMAIL
    uses = sorted(k.get("use") for k in sp.findall("md:KeyDescriptor", ns))
    assert uses == ["encryption", "signing"]


async def test_unknown_gate_path_is_404_json(harness: Harness) -> None:
    r = await harness.client.get("/saml/nope", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_public_paths_pass_through_anonymously(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(public_paths=["/public/", "/health"])
    r = await h.client.get("/public/anything")
    assert r.status_code == 200 and r.json() == {"anonymous": True}
    assert (await h.client.get("/health")).text == "ok"
    assert (await h.client.get("/healthz", headers={"accept": "text/html"})).status_code == 303


async def test_authorized_groups_gives_403_not_a_loop(make_harness) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(authorized_groups=["admins"])
    r = await h.login(
        attributes={"email": ["bob@example.com"], "groups": ["users"]}, name_id="bob@example.com"
    )
    assert r.status_code == 303
    page = await h.client.get("/private/page", headers={"accept": "text/html"})
    assert page.status_code == 403 and "forbidden" in page.text
    api = await h.client.get("/private/page", headers={"accept": "application/json"})
    assert api.status_code == 403 and api.json()["error"] == "forbidden"
    h2 = make_harness(authorized_groups=["admins"])
    await h2.login()
    assert (await h2.client.get("/private/page")).status_code == 200


async def test_session_json_has_no_secrets(harness: Harness) -> None:
    await harness.login()
    body = (await harness.client.get("/saml/session")).text
    assert "saml_gate_session" not in body and "SAMLResponse" not in body
    json.loads(body)


async def test_setup_sheet_is_served(harness: Harness) -> None:
    page = await harness.client.get("/saml/setup")
    assert page.status_code == 200
    assert "Assertion Consumer Service (ACS) URL" in page.text and ACS_URL in page.text
    assert "Okta: Single sign-on URL" in page.text and ENTITY_ID in page.text
    assert "BEGIN CERTIFICATE" in page.text and "PRIVATE" not in page.text
    data = (await harness.client.get("/saml/setup", headers={"accept": "application/json"})).json()
    fields = {row["field"]: row["value"] for row in data["rows"]}
    assert fields["Assertion Consumer Service (ACS) URL"] == ACS_URL
    assert fields["SP entity ID (Audience)"] == ENTITY_ID
    assert fields["NameID format"] == "EmailAddress"
    okta = {row["okta"]: row["value"] for row in data["rows"]}
    assert okta["Audience URI (SP Entity ID)"] == ENTITY_ID


@pytest.mark.parametrize(
    ("base_url", "prefix", "warning"),
    [
        ("http://app.example.com", "/saml", "is plain http on a public host"),
        ("https://x.example/saml", "/saml", "ends in the gate's prefix /saml"),
        ("https://x.example/sso", "/sso", "ends in the gate's prefix /sso"),
        ("https://x.example", "/saml", None),
        ("https://x.example/samlapp", "/saml", None),
    ],
)
async def test_the_setup_page_warns_on_a_base_url_that_is_probably_wrong(
    make_harness,  # type: ignore[no-untyped-def]
    base_url: str,
    prefix: str,
    warning: str | None,
) -> None:
    """What ``saml-gate setup`` warns about (tests/test_cli.py), the served sheet says too, as a
    page and as JSON: the same settings' decision (``base_url_warnings``)."""
    h = make_harness(base_url=base_url, prefix=prefix)
    page = await h.client.get(f"{prefix}/setup", headers={"accept": "text/html"})
    data = (await h.client.get(f"{prefix}/setup", headers={"accept": "application/json"})).json()
    assert page.status_code == 200, page.text
    acs = base_url + prefix + "/acs"
    assert acs in page.text  # the sheet of this base_url
    if warning is None:
        assert data["warnings"] == []
        assert "<p class=detail>base_url" not in page.text
        return
    (said,) = data["warnings"]
    assert said.startswith(f"base_url {base_url} ") and warning in said
    assert f"<p class=detail>{html.escape(said)}</p>" in page.text
    assert page.text.index(html.escape(said)) < page.text.index("<table")  # before the values


def test_the_apps_credentials_are_what_starlette_builds() -> None:
    """The middleware builds ``scope["auth"]`` without calling ``AuthCredentials.__init__`` (the
    hot path): it must stay the object that ``__init__`` makes, its scopes a list of its own."""
    scopes = ("authenticated", "group:admins")
    made = object.__new__(AuthCredentials)
    made.scopes = list(scopes)
    assert vars(made) == vars(AuthCredentials(scopes)) == {"scopes": list(scopes)}
