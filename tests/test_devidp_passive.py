"""Re-assertion with the development IdP: it keeps an IdP session (who signed in there last),
answers the gate's passive AuthnRequest for that person with the groups the session has now,
and answers NoPassive once the session is ended (``/saml/devidp/session``), as Okta does after
a sign-out or a deactivation. Driven like a browser, through the gate's and the IdP's pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from saml_gate import Rule, SamlGate
from tests.support import BASE_URL, FrozenClock, decode_redirect_request, make_app

pytestmark = pytest.mark.anyio

PAGE = {"accept": "text/html", "sec-fetch-mode": "navigate"}
JSON = {"accept": "application/json"}
INTERVAL = 900


def fields(page: str) -> dict[str, str]:
    found = re.findall(r'name="([A-Za-z_]+)" value="([^"]*)"', page)
    return {k: html.unescape(v) for k, v in found}


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock]]:
    clock = FrozenClock()
    gate = SamlGate(
        make_app(),
        base_url=BASE_URL,
        dev_idp=True,
        secret_key="p" * 40,
        state_dir=str(tmp_path),
        clock=clock,
        verify_isolation="thread",
        reassert_interval=INTERVAL,
        access_rules=[Rule("/private/admin/", groups=["admins"])],
    )
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client, clock
    await gate.stop()


async def to_the_idp(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, bool]:
    """A page load that goes to the dev IdP: its answer, and whether the request was passive."""
    r = await client.get(path, headers=PAGE)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(BASE_URL + "/saml/devidp/sso?")
    request, _ = decode_redirect_request(location)
    return await client.get(location.removeprefix(BASE_URL)), request.get("IsPassive") == "true"


async def posted(client: httpx.AsyncClient, auto_post: httpx.Response) -> httpx.Response:
    """What the auto-posting page does: the Response (and RelayState) to the gate's ACS."""
    assert auto_post.status_code == 200 and 'id="saml-post"' in auto_post.text, auto_post.text
    form = fields(auto_post.text)
    return await client.post("/saml/acs", data=form)


async def test_the_dev_idp_re_asserts_with_the_groups_its_session_has_now(
    browser: tuple[httpx.AsyncClient, FrozenClock],
) -> None:
    client, clock = browser
    login, passive = await to_the_idp(client, "/private/admin/x")
    assert not passive and "Alice Admin" in login.text  # the interactive page
    hidden = fields(login.text)
    chosen = await client.post("/saml/devidp/sso", data={**hidden, "user": "0"})  # alice
    assert (await posted(client, chosen)).status_code == 303
    assert (await client.get("/private/admin/x", headers=JSON)).status_code == 200

    session = await client.get("/saml/devidp/session")
    assert "alice@example.com" in session.text and 'value="admins, users"' in session.text
    changed = await client.post("/saml/devidp/session", data={"groups": "users"})
    assert 'value="users"' in changed.text  # removed from admins at the IdP

    clock.advance(INTERVAL + 1)
    answer, passive = await to_the_idp(client, "/private/admin/x")
    assert passive and "Signing in as Alice Admin" in answer.text  # no page to click
    back = await posted(client, answer)
    assert (back.status_code, back.headers["location"]) == (303, "/private/admin/x")
    assert (await client.get("/private/admin/x", headers=JSON)).status_code == 403
    assert (await client.get("/private/x", headers=JSON)).json()["groups"] == ["users"]


async def test_an_ended_idp_session_answers_no_passive_and_the_session_ends(
    browser: tuple[httpx.AsyncClient, FrozenClock],
) -> None:
    client, clock = browser
    login, _ = await to_the_idp(client, "/private/x")
    chosen = await client.post("/saml/devidp/sso", data={**fields(login.text), "user": "1"})
    assert (await posted(client, chosen)).status_code == 303
    ended = await client.post("/saml/devidp/session", data={"end": "1"})
    assert "No IdP session" in ended.text

    clock.advance(INTERVAL + 1)
    answer, passive = await to_the_idp(client, "/private/x")
    assert passive and "Nobody is signed in at the development IdP" in answer.text
    back = await posted(client, answer)
    assert back.status_code == 303
    assert urlsplit(back.headers["location"]).path == "/saml/login"
    out = await client.get("/private/x", headers=JSON)
    assert (out.status_code, out.json()["error"]) == (401, "not_authenticated")
    again, passive = await to_the_idp(client, "/private/x")
    assert not passive and "Bob User" in again.text  # a normal sign-in, with its page
