"""The Django example (examples/django_asgi) behind the gate: login round trip and its pages.

Django is configured once per process; these tests point DJANGO_SETTINGS_MODULE at the example's
settings before anything imports Django's settings, and fail clearly if another test configured
Django with different settings first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.support import (
    ACS_URL,
    BASE_URL,
    ENTITY_ID,
    IDP_SSO_URL,
    FrozenClock,
    Harness,
    decode_redirect_request,
)

pytestmark = pytest.mark.anyio

SETTINGS_MODULE = "examples.django_asgi.demo_site.settings"


@pytest.fixture
def gate_env(gate_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure the gate only through SAML_GATE_* variables (conftest's), as a deployment
    would."""
    for name in list(os.environ):
        if name.startswith("SAML_GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    for name, value in {**gate_env, "SAML_GATE_BASE_URL": BASE_URL}.items():
        monkeypatch.setenv(name, value)


def _asgi_module() -> Any:
    from django.conf import settings

    if settings.configured and settings.SETTINGS_MODULE != SETTINGS_MODULE:
        pytest.fail(
            f"Django was already configured with {settings.SETTINGS_MODULE!r} in this process;"
            f" the Django example needs {SETTINGS_MODULE!r}"
        )
    from examples.django_asgi.demo_site import asgi

    return asgi


@pytest.fixture(scope="module")
def django_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example's database for one test module, made by Django's own test tooling."""
    directory = tmp_path_factory.mktemp("django")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_DB_PATH", str(directory / "example.sqlite3"))
        _asgi_module()
        import django

        django.setup()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(directory / "test.sqlite3")
    old = setup_databases(verbosity=0, interactive=False)
    yield
    teardown_databases(old, verbosity=0)


@pytest.fixture
async def harness(
    gate_env: None, django_db: None, idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock
) -> AsyncIterator[Harness]:
    gate = _asgi_module().build_application(clock=clock)  # the clock cannot come from env
    assert isinstance(gate, SamlGate)
    from django.conf import settings

    assert settings.SETTINGS_MODULE == SETTINGS_MODULE
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url=BASE_URL
    ) as client:
        yield Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)


async def _login(h: Harness, **spec: Any) -> httpx.Response:
    r = await h.client.get("/", headers={"accept": "text/html"})
    assert r.status_code == 303, r.text
    request, relay = decode_redirect_request(r.headers["location"])
    assert relay is not None
    saml_response = h.response_b64(h.spec(in_response_to=request.get("ID"), **spec))
    return await h.post_acs(saml_response, relay)


async def test_browser_without_session_is_sent_to_the_idp(harness: Harness) -> None:
    r = await harness.client.get("/", headers={"accept": "text/html"})
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(IDP_SSO_URL + "?SAMLRequest=")
    request, relay = decode_redirect_request(location)
    assert request.get("AssertionConsumerServiceURL") == ACS_URL
    assert relay


async def test_login_round_trip_shows_the_django_page(harness: Harness) -> None:
    r = await _login(harness)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert harness.client.cookies.get("saml_gate_session")

    page = await harness.client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"  # Django's middleware answered
    text = page.text
    assert "Hello, Alice Admin" in text
    assert "alice@example.com" in text
    assert "<li>admins</li>" in text and "<li>users</li>" in text
    assert "2026-03-02 17:00:00 UTC" in text  # session expiry: 8 h after the frozen login

    me = await harness.client.get("/api/me", headers={"accept": "application/json"})
    assert me.status_code == 200
    assert me.headers["content-type"] == "application/json"
    body = me.json()
    assert body["served_by"] == "django"
    assert body["email"] == "alice@example.com" and body["name_id"] == "alice@example.com"
    assert body["groups"] == ["admins", "users"]
    assert body["expires_at"] == "2026-03-02T17:00:00Z"
    assert body["django_user"] == {  # saml_gate.contrib.django made the Django user
        "username": "alice@example.com",
        "is_staff": True,
        "is_superuser": True,
        "groups": ["admins", "users"],
    }


async def test_page_escapes_what_the_idp_sends(harness: Harness) -> None:
    r = await _login(
        harness,
        attributes={
            "email": ["alice@example.com"],
            "displayName": ["<script>alert(1)</script>"],
            "groups": ["a&b", "<i>x</i>"],
        },
    )
    assert r.status_code == 303, r.text
    text = (await harness.client.get("/")).text
    assert "<script>alert(1)" not in text and "<i>x</i>" not in text
    assert "Hello, &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<li>a&amp;b</li>" in text and "<li>&lt;i&gt;x&lt;/i&gt;</li>" in text


async def test_api_without_session_gets_401_json(harness: Harness) -> None:
    r = await harness.client.get("/api/me", headers={"accept": "application/json"})
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == "not_authenticated"
    assert body["login_url"] == BASE_URL + "/saml/login?return_to=%2Fapi%2Fme"


async def test_metadata_is_served_by_the_gate(harness: Harness) -> None:
    r = await harness.client.get("/saml/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{ENTITY_ID}"'.encode() in r.content
    assert ACS_URL.encode() in r.content


async def _lifespan(app: Any) -> list[dict[str, Any]]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


async def test_module_application_answers_lifespan_and_builds_at_startup(gate_env: None) -> None:
    asgi = _asgi_module()
    assert isinstance(asgi.application, asgi.LazyApplication)
    app = asgi.LazyApplication(asgi.build_application)  # fresh: do not build the module global
    sent = await _lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL
    ) as client:
        r = await client.get("/", headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith(IDP_SSO_URL)


async def test_unconfigured_gate_fails_the_startup_not_the_import(
    gate_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAML_GATE_BASE_URL")
    asgi = _asgi_module()  # importing needs no configuration
    sent = await _lifespan(asgi.LazyApplication(asgi.build_application))
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "base_url" in sent[0]["message"]
