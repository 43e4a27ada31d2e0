"""The demo: the FastAPI example behind the gate with the dev IdP, driven like a browser."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.fastapi_app.main import create_app

from tests.support import BASE_URL, FrozenClock

pytestmark = pytest.mark.anyio


def hidden_fields(page: str) -> dict[str, str]:
    return {
        k: html.unescape(v) for k, v in re.findall(r'name="([A-Za-z_]+)" value="([^"]*)"', page)
    }


@asynccontextmanager
async def demo_client(tmp_path: Path, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the example app behind the gate with the development IdP (and ``options``)."""
    app = create_app(
        base_url=BASE_URL, dev_idp=True, secret_key="d" * 40, state_dir=str(tmp_path), **options
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with demo_client(tmp_path, clock=FrozenClock()) as c:
        yield c


async def sign_in(c: httpx.AsyncClient, path: str, choose: dict[str, str]) -> httpx.Response:
    r = await c.get(path, headers={"accept": "text/html"})
    assert r.status_code == 303
    assert r.headers["location"].startswith(BASE_URL + "/saml/devidp/sso?SAMLRequest=")
    login_page = await c.get(r.headers["location"])
    assert login_page.status_code == 200
    assert "Development IdP" in login_page.text and "alice@example.com" in login_page.text
    fields = hidden_fields(login_page.text)
    posted = await c.post(
        "/saml/devidp/sso",
        data={
            "in_response_to": fields["in_response_to"],
            "relay_state": fields.get("relay_state", ""),
            **choose,
        },
    )
    assert posted.status_code == 200
    form = hidden_fields(posted.text)
    assert f'action="{BASE_URL}/saml/acs"' in posted.text
    return await c.post(
        "/saml/acs", data={"SAMLResponse": form["SAMLResponse"], "RelayState": form["RelayState"]}
    )


async def test_demo_sign_in_shows_who_is_signed_in(demo: httpx.AsyncClient) -> None:
    r = await sign_in(demo, "/?from=demo", {"user": "0"})
    assert r.status_code == 303 and r.headers["location"] == "/?from=demo"
    page = await demo.get("/?from=demo")
    assert page.status_code == 200
    assert "Hello, Alice Admin" in page.text
    assert "alice@example.com" in page.text and "admins, users" in page.text
    assert "Session expires" in page.text
    me = (await demo.get("/api/me")).json()
    assert me["groups"] == ["admins", "users"]


async def test_demo_custom_user(demo: httpx.AsyncClient) -> None:
    r = await sign_in(
        demo, "/", {"email": "dave@example.com", "name": "Dave <b>", "groups": "ops, oncall"}
    )
    assert r.status_code == 303
    page = await demo.get("/")
    assert "Dave &lt;b&gt;" in page.text and "ops, oncall" in page.text


async def test_demo_idp_initiated_is_refused_by_default(demo: httpx.AsyncClient) -> None:
    page = await demo.get("/saml/devidp/initiate")
    assert page.status_code == 200
    posted = await demo.post("/saml/devidp/initiate", data={"user": "1"})
    form = hidden_fields(posted.text)
    r = await demo.post("/saml/acs", data={"SAMLResponse": form["SAMLResponse"]})
    assert r.status_code == 400 and "unsolicited" in r.text


async def test_demo_idp_initiated_when_allowed(tmp_path: Path) -> None:
    async with demo_client(tmp_path, allow_idp_initiated=True) as c:
        posted = await c.post("/saml/devidp/initiate", data={"user": "1", "relay_state": "/api/me"})
        form = hidden_fields(posted.text)
        r = await c.post(
            "/saml/acs",
            data={"SAMLResponse": form["SAMLResponse"], "RelayState": form["RelayState"]},
        )
        assert r.status_code == 303 and r.headers["location"] == "/api/me"
        assert (await c.get("/api/me")).json()["email"] == "bob@example.com"


async def test_demo_metadata_and_devidp_metadata(demo: httpx.AsyncClient) -> None:
    sp = await demo.get("/saml/metadata")
    idp = await demo.get("/saml/devidp/metadata")
    assert sp.status_code == idp.status_code == 200
    assert b"IDPSSODescriptor" in idp.content and b"SPSSODescriptor" in sp.content


async def test_dev_idp_refuses_a_public_base_url(tmp_path: Path) -> None:
    from saml_gate import ConfigError, SamlGate

    with pytest.raises(ConfigError, match="dev_idp"):
        SamlGate(
            create_app,
            base_url="https://acme.ngrok.app",
            dev_idp=True,
            secret_key="d" * 40,
            state_dir=str(tmp_path),
        )


async def test_a_configuration_files_rules_replace_the_examples_own(tmp_path: Path) -> None:
    """`saml-gate demo --config FILE` (config_file): the file's [[rules]] decide, not the
    example's ACCESS_RULES, which a keyword would otherwise put above the file."""
    config = tmp_path / "saml-gate.toml"
    config.write_text('[[rules]]\npath = "/admin/"\npublic = true\n')
    async with demo_client(tmp_path, clock=FrozenClock(), config_file=str(config)) as c:
        public = await c.get("/admin/", headers={"accept": "text/html"})
        assert public.status_code != 303, "the example's step-up rule decided, not the file's"
        healthz = await c.get("/healthz", headers={"accept": "text/html"})
        assert healthz.status_code == 303  # the example's public /healthz is not in force
