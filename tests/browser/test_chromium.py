"""The README's "test the integration" step in a real browser: open the app in a fresh
(incognito-like) window, get sent to the IdP, type alice's password, land on the app.

Which cookies survive the IdP's POST back to the ACS depends on SameSite and on whether that
POST is cross-site; only a real browser shows it, so each test records what Chromium sent.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from saml_gate.saml.keys import KeyPair
from tests.browser.conftest import Chromium
from tests.browser.sites import APP_HOST, IDP_HOST, Sites, start_sites
from tests.interop.simplesamlphp import USERS

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

PENDING_COOKIE = "saml_gate_req_"
SESSION_COOKIE = "saml_gate_session"


@dataclass
class AcsPost:
    """What Chromium sent with the IdP's POST to the ACS."""

    fetch_site: str | None
    cookie_names: list[str]


@dataclass
class Visit:
    login_page_url: str
    pending_cookie: dict[str, Any]
    acs_post: AcsPost
    final_url: str
    page: Page


async def sign_in(context: BrowserContext, sites: Sites, path: str, user: str) -> Visit:
    """Open ``path`` on the app, sign in at the IdP's form, follow the browser to the end."""
    page = await context.new_page()
    await page.goto(sites.app_url + path)
    await page.wait_for_selector("#username")
    login_page_url = page.url
    # One pending-login cookie; on http loopback also its SameSite=Lax twin ("<name>.lax").
    pending = [
        c
        for c in await context.cookies()
        if c["name"].startswith(PENDING_COOKIE) and not c["name"].endswith(".lax")
    ]
    assert len(pending) == 1, await context.cookies()
    await page.fill("#username", user)
    await page.fill("#password", USERS[user])
    async with page.expect_request(lambda r: r.url == sites.acs_url) as posted:
        await page.click("#submit_button")
    headers = await (await posted.value).all_headers()
    cookies = [c.split("=", 1)[0].strip() for c in headers.get("cookie", "").split(";") if c]
    await page.wait_for_url(lambda url: url.startswith(sites.app_url + "/"))
    return Visit(
        login_page_url=login_page_url,
        pending_cookie=dict(pending[0]),
        acs_post=AcsPost(headers.get("sec-fetch-site"), cookies),
        final_url=page.url,
        page=page,
    )


async def shows_alice(page: Page) -> None:
    assert await page.text_content("#greeting") == "Hello, Alice Example"
    assert await page.text_content("#name-id") == "alice@example.com"
    assert await page.locator("#groups li").all_text_contents() == ["admins", "users"]


async def test_okta_like_login_through_the_ngrok_like_proxy(
    need_simplesamlphp: None,
    servers: ExitStack,
    tmp_path: Path,
    sp_keys: KeyPair,
    chromium: Chromium,
    artifacts: Path,
) -> None:
    """https://acme-gate.example (proxy → gate) and https://login.idp-test.example (proxy →
    SimpleSAMLphp): two sites, as an ngrok domain and an Okta org are."""
    sites = start_sites(servers, tmp_path, sp_keys, app="tunnel", idp="other site")
    async with chromium(sites) as context:
        visit = await sign_in(context, sites, "/private/report?q=1", "alice")
        await visit.page.screenshot(path=artifacts / "chromium-ngrok-like-https.png")
        assert visit.login_page_url.startswith(f"https://{IDP_HOST}/module.php/core/loginuserpass")
        assert visit.pending_cookie["sameSite"] == "None" and visit.pending_cookie["secure"]
        assert visit.acs_post.fetch_site == "cross-site"
        assert any(n.startswith(PENDING_COOKIE) for n in visit.acs_post.cookie_names)
        assert visit.final_url == f"https://{APP_HOST}/private/report?q=1"
        await shows_alice(visit.page)
        session = [c for c in await context.cookies() if c["name"] == SESSION_COOKIE]
        assert len(session) == 1
        assert session[0]["secure"] and session[0]["httpOnly"]
        assert session[0]["domain"] == APP_HOST
        # the pending sign-in is over: its cookie is gone
        assert not [c for c in await context.cookies() if c["name"].startswith(PENDING_COOKIE)]


async def test_okta_dashboard_tile_through_the_ngrok_like_proxy(
    need_simplesamlphp: None,
    servers: ExitStack,
    tmp_path: Path,
    sp_keys: KeyPair,
    chromium: Chromium,
    artifacts: Path,
) -> None:
    """IdP-initiated: start at the IdP (like an Okta tile), end on the app's page."""
    sites = start_sites(
        servers, tmp_path, sp_keys, app="tunnel", idp="other site", allow_idp_initiated=True
    )
    async with chromium(sites) as context:
        page = await context.new_page()
        await page.goto(sites.idp.idp_initiated_url(sites.gate.entity_id, "/private/tile"))
        await page.fill("#username", "alice")
        await page.fill("#password", USERS["alice"])
        await page.click("#submit_button")
        await page.wait_for_url(f"https://{APP_HOST}/private/tile")
        await page.screenshot(path=artifacts / "chromium-idp-initiated.png")
        await shows_alice(page)


@pytest.mark.parametrize(
    "idp,fetch_site,screenshot",
    [
        # the IdP on localhost too (another port: the same site)
        ("localhost", "same-site", "chromium-localhost.png"),
        # an https IdP elsewhere: a developer trying Okta locally. The pending-login cookie is
        # SameSite=None;Secure on http loopback, so the IdP's cross-site POST still carries it.
        ("other site", "cross-site", "chromium-localhost-cross-site-idp.png"),
    ],
)
async def test_localhost_development(
    idp: str,
    fetch_site: str,
    screenshot: str,
    need_simplesamlphp: None,
    servers: ExitStack,
    tmp_path: Path,
    sp_keys: KeyPair,
    chromium: Chromium,
    artifacts: Path,
) -> None:
    """Plain http://localhost:PORT for the app, with the IdP on the same site or another."""
    sites = start_sites(servers, tmp_path, sp_keys, app="localhost", idp=idp)
    async with chromium(sites) as context:
        visit = await sign_in(context, sites, "/private/report", "alice")
        await visit.page.screenshot(path=artifacts / screenshot)
        assert visit.acs_post.fetch_site == fetch_site
        assert visit.pending_cookie["sameSite"] == "None" and visit.pending_cookie["secure"]
        assert any(n.startswith(PENDING_COOKIE) for n in visit.acs_post.cookie_names)
        assert visit.final_url == sites.app_url + "/private/report"
        await shows_alice(visit.page)
