"""Operator experience through the real endpoints: a sign-in started at the wrong address, a
SAMLResponse posted elsewhere than the ACS, and what error pages offer (links, request ID, the
person's groups)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HarnessFactory
from tests.support import ACS_URL, BASE_URL, Harness

pytestmark = pytest.mark.anyio

PAGE = {"accept": "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


# ----------------------------------------------------------------- item 2: wrong base URL
async def test_localhost_is_sent_to_base_url_before_any_sign_in(harness: Harness) -> None:
    r = await harness.client.get("/private/page?x=1", headers={**PAGE, "host": "localhost:8000"})
    assert r.status_code == 303
    assert r.headers["location"] == "http://127.0.0.1:8000/private/page?x=1"  # not the IdP
    assert "saml_gate_req_" not in r.headers.get("set-cookie", "")  # no sign-in started
    # On base_url itself the sign-in starts as usual.
    r = await harness.client.get("/private/page?x=1", headers=PAGE)
    assert r.status_code == 303 and r.headers["location"].startswith("https://idp.example.test/")


async def test_login_endpoint_on_another_name_is_sent_to_base_url(harness: Harness) -> None:
    r = await harness.client.get(
        "/saml/login?return_to=/private/a", headers={**PAGE, "host": "localhost:8000"}
    )
    assert r.status_code == 303
    assert r.headers["location"] == "http://127.0.0.1:8000/saml/login?return_to=/private/a"


async def test_the_redirect_only_ever_goes_to_base_url(harness: Harness) -> None:
    """A hostile Host or a path that looks like an authority cannot steer it elsewhere."""
    r = await harness.client.get("//evil.example/x", headers={**PAGE, "host": "evil.example:8000"})
    location = r.headers.get("location", "")
    assert r.status_code in (303, 400), r.text
    if r.status_code == 303:
        assert location.startswith("http://127.0.0.1:8000/"), location


async def test_the_redirect_keeps_the_path_the_app_is_mounted_at(
    make_harness: HarnessFactory,
) -> None:
    h: Harness = make_harness(base_url="http://127.0.0.1:8000/app")
    transport = httpx.ASGITransport(app=h.gate, root_path="/app")
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        r = await client.get("/app/private/p?q=1", headers={**PAGE, "host": "localhost:8000"})
    assert r.status_code == 303
    assert r.headers["location"] == "http://127.0.0.1:8000/app/private/p?q=1"


async def test_wrong_port_gets_the_base_url_mismatch_page(make_harness: HarnessFactory) -> None:
    h: Harness = make_harness(base_url="http://127.0.0.1:9000")
    r = await h.client.get("/private/page", headers={**PAGE, "host": "127.0.0.1:8000"})
    assert r.status_code == 400 and "text/html" in r.headers["content-type"]
    assert "<code>base_url_mismatch</code>" in r.text and "http://127.0.0.1:9000" in r.text
    assert "href='http://127.0.0.1:9000/private/page'" in r.text
    assert "saml_gate_req_" not in r.headers.get("set-cookie", "")


async def test_a_host_rewriting_proxy_does_not_loop(harness: Harness) -> None:
    """Behind a proxy that rewrites Host, the redirect comes straight back: the cookie it set
    says so, and the page then says which host the gate does not serve and how to fix it."""
    headers = {**PAGE, "host": "app-upstream:8000"}
    r = await harness.client.get("/private/page", headers=headers)
    assert r.status_code == 303 and r.headers["location"].startswith("http://127.0.0.1:8000/")
    guard = re.search(r"(saml_gate_readdressed=1)", r.headers["set-cookie"])
    assert guard is not None
    r = await harness.client.get("/private/page", headers={**headers, "cookie": guard.group(1)})
    # a host the gate does not serve: no sign-in, no loop, the fix named
    assert r.status_code == 421 and "<code>unknown_host</code>" in r.text
    assert "proxy_set_header Host $host" in r.text


async def test_api_calls_on_another_name_get_unknown_host(harness: Harness) -> None:
    r = await harness.client.get(
        "/private/api", headers={"accept": "application/json", "host": "localhost:8000"}
    )
    assert r.status_code == 421 and r.json()["error"] == "unknown_host"
    assert "Add localhost:8000 to allowed_hosts" in r.json()["hint"]


# ----------------------------------------------------------------- item 4: wrong ACS path
@pytest.mark.parametrize("path", ["/saml/sso", "/saml/login", "/", "/private/page"])
async def test_a_saml_response_posted_elsewhere_names_the_acs(
    harness: Harness, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = harness.response_b64(harness.spec())
    with caplog.at_level(logging.INFO, logger="saml_gate"):
        r = await harness.client.post(
            path, data={"SAMLResponse": body, "RelayState": "/"}, headers={"accept": "text/html"}
        )
    assert r.status_code == 400 and "text/html" in r.headers["content-type"]
    assert "<code>wrong_acs_url</code>" in r.text and ACS_URL in r.text
    assert "session" not in r.headers.get("set-cookie", "")
    logged = [rec.getMessage() for rec in caplog.records if "wrong_acs_url" in rec.getMessage()]
    assert logged and ACS_URL in logged[0], caplog.text


async def test_other_posts_are_answered_as_before(harness: Harness) -> None:
    r = await harness.client.post("/saml/sso", data={"a": "b"}, headers={"accept": "text/html"})
    assert r.status_code == 404 and "<code>not_found</code>" in r.text
    r = await harness.client.post(
        "/private/page", data={"a": "b"}, headers={"accept": "application/json"}
    )
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
    r = await harness.client.post(  # an API client: never read, never a page
        "/private/page", data={"SAMLResponse": "x"}, headers={"accept": "application/json"}
    )
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


async def test_a_signed_in_persons_post_reaches_the_app_untouched(harness: Harness) -> None:
    assert (await harness.login()).status_code == 303
    r = await harness.client.post(
        "/private/form", data={"SAMLResponse": "x"}, headers={"accept": "text/html"}
    )
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"


async def test_the_acs_itself_is_unchanged(harness: Harness) -> None:
    r = await harness.login()
    assert r.status_code == 303 and r.headers["location"] == "/private/page"


# ----------------------------------------------------------------- item 7: error pages
async def test_403_page_shows_groups_links_and_request_id(make_harness: HarnessFactory) -> None:
    h: Harness = make_harness(authorized_groups=["Admins"])
    assert (await h.login(path="/private/x")).status_code == 303
    r = await h.client.get(
        "/private/x", headers={**PAGE, "x-request-id": "req-42"}
    )  # signed in as admins/users
    assert r.status_code == 403
    assert "<code>admins</code>, <code>users</code>" in r.text
    assert "Request ID: <code>req-42</code>" in r.text
    assert "Sign in again</a>" in r.text and "return_to=%2Fprivate%2Fx" in r.text
    assert "href='http://127.0.0.1:8000/'" in r.text  # back to the app
    assert "href='http://127.0.0.1:8000/saml/logout'>Sign out</a>" in r.text
    j = await h.client.get("/private/x", headers={"accept": "application/json"})
    assert j.status_code == 403 and j.json()["groups"] == ["admins", "users"]


async def test_groups_on_the_page_are_escaped(make_harness: HarnessFactory) -> None:
    h: Harness = make_harness(authorized_groups=["admins"])
    evil = "<script>alert(1)</script>"
    r = await h.login(path="/private/x", attributes={"email": ["e@example.com"], "groups": [evil]})
    assert r.status_code == 303, r.text
    r = await h.client.get("/private/x", headers=PAGE)
    assert r.status_code == 403, r.text
    assert evil not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


async def test_gate_endpoint_errors_have_links_and_request_id(harness: Harness) -> None:
    r = await harness.client.get("/saml/nope", headers={**PAGE, "x-request-id": "abc"})
    assert r.status_code == 404
    assert "Request ID: <code>abc</code>" in r.text
    assert "return_to=%2F'" in r.text  # back to the start, not to the gate endpoint
    assert "Sign out" not in r.text  # nobody is signed in


# ------------------------------------------------- item 7: FastAPI's require_groups in a browser
def _fastapi_app() -> Any:
    from fastapi import Depends, FastAPI

    from saml_gate.contrib.fastapi import require_groups, use_gate_error_pages

    app = FastAPI()
    use_gate_error_pages(app)

    @app.get("/finance", dependencies=[Depends(require_groups("Finance", "legal"))])
    async def finance() -> dict[str, str]:
        return {"ok": "finance"}

    return app


async def test_require_groups_403_is_a_page_in_a_browser(make_harness: HarnessFactory) -> None:
    h: Harness = make_harness(app=_fastapi_app())
    client = h.client
    assert (await h.login(path="/finance")).status_code == 303
    r = await client.get("/finance", headers=PAGE)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "&#x27;Finance&#x27; or &#x27;legal&#x27;" in r.text  # the route's groups
    assert "authorized_groups" not in r.text
    assert "<code>admins</code>, <code>users</code>" in r.text  # the person's own
    assert "/saml/logout'>Sign out</a>" in r.text and "Sign in again" in r.text
    j = await client.get("/finance", headers={"accept": "application/json"})
    detail = j.json()["detail"]
    assert j.status_code == 403 and detail["error"] == "forbidden"
    assert "'Finance' or 'legal'" in detail["hint"] and "authorized_groups" not in detail["hint"]
    xhr = await client.get("/finance", headers={**PAGE, "sec-fetch-mode": "cors"})
    assert xhr.status_code == 403 and xhr.json()["detail"]["error"] == "forbidden"


# ----------------------------------------------------- item 12: readable metadata, demo's page
def _assert_readable_metadata(text: str) -> None:
    assert text.startswith("<?xml") and "ns0:" not in text and "ns1:" not in text
    assert '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"' in text
    assert "\n  <md:SPSSODescriptor" in text and "<ds:X509Certificate>" in text
    from lxml import etree

    root = etree.fromstring(text.encode())
    acs = root.find(".//{urn:oasis:names:tc:SAML:2.0:metadata}AssertionConsumerService")
    assert acs is not None and acs.get("Location") == ACS_URL


async def test_served_metadata_is_indented_with_md_and_ds_prefixes(harness: Harness) -> None:
    r = await harness.client.get("/saml/metadata")
    assert r.status_code == 200
    _assert_readable_metadata(r.text)


def test_saml_gate_metadata_prints_it_the_same_way(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SAML_GATE_STATE_DIR": str(tmp_path)}
    env.pop("SAML_GATE_IDP_METADATA", None)
    done = subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", "metadata", "--base-url", BASE_URL],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _assert_readable_metadata(done.stdout)


async def test_the_demos_fallback_app_is_a_page_with_a_sign_out_link(
    make_harness: HarnessFactory,
) -> None:
    from saml_gate.web.whoami import whoami_app

    h: Harness = make_harness(app=whoami_app())
    client = h.client
    evil = "<b>x</b>"
    assert (await h.login(path="/", attributes={"groups": [evil]})).status_code == 303
    page = await client.get("/", headers=PAGE)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "href='/saml/logout'>Sign out</a>" in page.text
    assert "alice@example.com" in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
    api = await client.get("/", headers={"accept": "application/json"})
    assert api.json()["name_id"] == "alice@example.com"
