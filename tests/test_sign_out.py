"""One-click sign-out from an app: a POST to ``/saml/logout`` that the browser says comes from
this site signs out at once; one another site sends (or whose origin nobody vouches for) is sent
to the confirmation form (a 303 to the GET) and ends nothing. ``sign_out_form`` renders the
button for Starlette and FastAPI apps; Django admin's "Log out" goes through it
(tests/test_contrib_django.py; in Chromium: tests/browser/test_sign_out_click.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

from saml_gate import sign_out_form
from tests.support import BASE_URL, Harness, make_app

pytestmark = pytest.mark.anyio

HTML = {"accept": "text/html"}
#: What a browser's form with only a button posts: an empty urlencoded body.
EMPTY_FORM: dict[str, Any] = {"content": b""}
FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


async def signed_in(make_harness: Any, **options: Any) -> Harness:
    h: Harness = make_harness(**options)
    assert (await h.login()).status_code == 303
    assert (await h.client.get("/private/page", headers=HTML)).status_code == 200
    return h


async def still_signed_in(h: Harness) -> bool:
    return (await h.client.get("/private/page", headers=HTML)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": BASE_URL, "sec-fetch-site": "same-origin"},
        {"origin": BASE_URL},  # a browser without Sec-Fetch-* headers
        {"origin": "null", "sec-fetch-site": "same-origin"},  # Referrer-Policy: no-referrer
        {"sec-fetch-site": "same-origin"},
    ],
)
async def test_a_post_from_this_site_signs_out_in_one_click(
    make_harness: Any, headers: dict[str, str]
) -> None:
    h = await signed_in(make_harness, idp_logout=False)
    cookie = h.client.cookies.get("saml_gate_session")
    out = await h.client.post(
        "/saml/logout", headers={**HTML, **FORM_TYPE, **headers}, **EMPTY_FORM
    )
    assert out.status_code == 200 and "You are signed out" in out.text
    assert not await still_signed_in(h)
    # The session is revoked, not only its cookie cleared.
    h.client.cookies.set("saml_gate_session", cookie or "")
    assert not await still_signed_in(h)


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"origin": "http://127.0.0.1:9999", "sec-fetch-site": "same-site"},  # another port
        {"origin": "https://127.0.0.1:8000"},  # another scheme
        {"origin": "null", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {},  # nothing says where it comes from
        {"origin": BASE_URL + "/x"},  # not an origin
    ],
)
async def test_a_post_nobody_vouches_for_asks_first(
    make_harness: Any, headers: dict[str, str]
) -> None:
    h = await signed_in(make_harness, idp_logout=False)
    posted = await h.client.post(
        "/saml/logout", headers={**HTML, **FORM_TYPE, **headers}, **EMPTY_FORM
    )
    # Sent to the GET, which asks: nothing ended, no cookie cleared.
    assert posted.status_code == 303 and posted.headers["location"] == "/saml/logout"
    assert "set-cookie" not in posted.headers
    assert await still_signed_in(h)
    asked = await h.client.get("/saml/logout", headers=HTML)
    assert "Sign out of this application?" in asked.text
    # The form it shows signs out, as the gate's own confirmation always did.
    token = re.search(r"name=token value='([^']*)'", asked.text)
    assert token is not None
    out = await h.client.post("/saml/logout", data={"token": token.group(1)}, headers=HTML)
    assert "You are signed out" in out.text and not await still_signed_in(h)


async def test_a_cross_site_post_without_the_cookie_clears_nothing(make_harness: Any) -> None:
    """SameSite=Lax keeps the session cookie off another site's POST; the gate then sees nobody,
    and must not clear the cookie the browser still holds either (that was a sign-out)."""
    h = await signed_in(make_harness, idp_logout=False)
    cookie = h.client.cookies.get("saml_gate_session")
    h.client.cookies.clear()
    posted = await h.client.post(
        "/saml/logout",
        data={"token": "anything"},
        headers={**HTML, "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert posted.status_code == 303 and "set-cookie" not in posted.headers
    h.client.cookies.set("saml_gate_session", cookie or "")
    assert await still_signed_in(h)


async def test_a_wrong_token_is_still_refused(make_harness: Any) -> None:
    h = await signed_in(make_harness, idp_logout=False)
    r = await h.client.post("/saml/logout", data={"token": "forged"}, headers=HTML)
    assert r.status_code == 400 and "bad_request" in r.text
    assert await still_signed_in(h)


async def test_an_app_on_an_allowed_host_signs_out_in_one_click(make_harness: Any) -> None:
    h = await signed_in(make_harness, idp_logout=False, allowed_hosts=["*.apps.example"])
    # base_url is http here, so an app's origin on http is the same scheme.
    other = {"origin": "http://wiki.apps.example", "sec-fetch-site": "cross-site"}
    assert (
        "You are signed out"
        in (await h.client.post("/saml/logout", headers={**FORM_TYPE, **other}, **EMPTY_FORM)).text
    )
    h = await signed_in(make_harness, idp_logout=False, allowed_hosts=["*.apps.example"])
    stranger = {"origin": "http://wiki.apps.example.evil.test", "sec-fetch-site": "cross-site"}
    r = await h.client.post("/saml/logout", headers={**FORM_TYPE, **stranger}, **EMPTY_FORM)
    assert r.status_code == 303 and await still_signed_in(h)


async def test_one_click_continues_to_the_idp_single_logout(make_harness: Any) -> None:
    h = await signed_in(make_harness)
    out = await h.client.post(
        "/saml/logout", headers={**HTML, **FORM_TYPE, "origin": BASE_URL}, **EMPTY_FORM
    )
    if out.status_code == 303:  # the IdP has an SLO endpoint: a signed LogoutRequest
        assert "SAMLRequest=" in out.headers["location"]
    else:
        assert "You are signed out" in out.text
    assert not await still_signed_in(h)


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(f"<p>Hello</p>{sign_out_form(request)}")


async def test_the_form_helper_renders_a_button_that_signs_out(make_harness: Any) -> None:
    app = make_app()
    app.router.routes.insert(0, Route("/private/with-button", page))
    h: Harness = make_harness(app, idp_logout=False)
    await h.login()
    shown = await h.client.get("/private/with-button", headers=HTML)
    form = re.search(r"<form method=post action='([^']+)' class=saml-gate-sign-out>", shown.text)
    assert form is not None and form.group(1) == "/saml/logout"
    assert "<button type=submit>Sign out</button>" in shown.text
    # The browser posts it from the page it is on.
    out = await h.client.post(
        form.group(1), headers={**HTML, **FORM_TYPE, "origin": BASE_URL}, **EMPTY_FORM
    )
    assert "You are signed out" in out.text and not await still_signed_in(h)


def test_the_form_follows_the_root_path_and_escapes() -> None:
    mounted = Starlette(routes=[Mount("/app", routes=[Route("/", page)])])
    scope = {"type": "http", "root_path": "/app", "path": "/", "headers": [], "app": mounted}
    html = sign_out_form(Request(scope), label="Sign <out>", prefix="/sso")
    assert "action='/app/sso/logout'" in html and "Sign &lt;out&gt;" in html
