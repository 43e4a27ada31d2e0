"""A SAMLResponse posted to a public path (the IdP's Single sign-on URL set to ``/``), through
the middleware and the reverse proxy: the ``wrong_acs_url`` page names the ACS URL of the setup
sheet; any other form POST reaches the app byte for byte; a signed-in person's POST is never
read. (Forward-auth sees no body: tests/test_mode_parity.py states what it does.)"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from saml_gate import SamlGate, SamlUser
from saml_gate.proxy import build_proxy_app
from saml_gate.web.request import saml_form_limit
from tests.conftest import HarnessFactory
from tests.support import ACS_URL, BASE_URL, Harness, gate_options

pytestmark = pytest.mark.anyio

Mode = Literal["middleware", "proxy"]
MODES: tuple[Mode, ...] = ("middleware", "proxy")
PAGE = {"accept": "text/html", "content-type": "application/x-www-form-urlencoded"}
#: ``/`` alone public (as a public_paths entry it would be a prefix of every path)
RULES = {"access_rules": ["re:/ public", "/form/ public"]}


class App:
    """The app (or the upstream): ``/`` answers GET only (a POST there is the 405 people met);
    ``/form/...`` and ``/private/...`` report the body they read, and note when they start."""

    def __init__(self) -> None:
        self.log: list[str] = []

    async def home(self, request: Request) -> Response:
        return PlainTextResponse("home")

    async def echo(self, request: Request) -> Response:
        self.log.append("app")
        body = await request.body()
        user = request.scope.get("user")
        return JSONResponse(
            {
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "user": user.name_id if isinstance(user, SamlUser) else None,
                "x-forwarded-user": request.headers.get("x-forwarded-user"),
            }
        )

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.home),
                Route("/form/{rest:path}", self.echo, methods=["POST"]),
                Route("/private/{rest:path}", self.echo, methods=["GET", "POST"]),
            ]
        )


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture(params=MODES)
async def site(
    request: pytest.FixtureRequest,
    app: App,
    make_harness: HarnessFactory,
    idp_keys: Any,
    sp_keys: Any,
    clock: Any,
    tmp_path: Any,
) -> AsyncIterator[Harness]:
    """The gate in front of ``app``: as middleware, or as the reverse proxy to it."""
    if request.param == "middleware":
        yield make_harness(app.asgi(), **RULES)
        return
    options = gate_options(idp_keys, sp_keys, clock, str(tmp_path), **RULES)
    gate: SamlGate = build_proxy_app("http://upstream.test", **options)
    # the upstream in this process, as tests/test_mode_parity.py has it
    gate.app._http._transport = httpx.ASGITransport(app=app.asgi())  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url=BASE_URL
    ) as client:
        yield Harness(gate, client, idp_keys, sp_keys, clock)
    await gate.stop()


def chunks(body: bytes, log: list[str], size: int = 65536) -> AsyncIterator[bytes]:
    """``body`` streamed in chunks (no Content-Length), noting in ``log`` when it is first read."""

    async def stream() -> AsyncIterator[bytes]:
        log.append("body read")
        for start in range(0, len(body), size):
            yield body[start : start + size]

    return stream()


async def acs_url_of_the_setup_sheet(site: Harness) -> str:
    sheet = await site.client.get("/saml/setup", headers={"accept": "application/json"})
    rows = {row["field"]: row["value"] for row in sheet.json()["rows"]}
    return str(rows["Assertion Consumer Service (ACS) URL"])


@pytest.mark.parametrize("path", ["/", "/form/contact"])
async def test_a_response_posted_to_a_public_path_names_the_acs(
    site: Harness, app: App, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    form = {"SAMLResponse": site.response_b64(site.spec()), "RelayState": "/"}
    with caplog.at_level(logging.INFO, logger="saml_gate"):
        r = await site.client.post(path, data=form, headers={"accept": "text/html"})
    assert r.status_code == 400 and "text/html" in r.headers["content-type"], r.text
    assert "<code>wrong_acs_url</code>" in r.text
    acs_url = await acs_url_of_the_setup_sheet(site)
    assert acs_url == ACS_URL and acs_url in r.text
    assert app.log == []  # the app never saw it
    logged = [rec.getMessage() for rec in caplog.records if "wrong_acs_url" in rec.getMessage()]
    assert logged and acs_url in logged[0] and repr(path) in logged[0], caplog.text
    assert "SAMLResponse=" not in caplog.text and form["SAMLResponse"][:40] not in caplog.text


async def test_a_response_streamed_in_chunks_is_caught_too(site: Harness, app: App) -> None:
    body = f"RelayState=%2F&SAMLResponse={site.response_b64(site.spec())}".encode()
    r = await site.client.post("/", content=chunks(body, app.log, size=1000), headers=PAGE)
    assert r.status_code == 400 and "<code>wrong_acs_url</code>" in r.text


def bodies(limit: int) -> dict[str, bytes]:
    """Form POSTs to a public path that are no SAMLResponse (or too long to be one)."""
    return {
        "small form": b"name=Ada+Lovelace&message=hello%21",
        "binary": os.urandom(200_000),
        "too many fields": b"&".join(b"f%d=v" % i for i in range(40)) + b"&SAMLResponse=x",
        "similar name": b"SAMLResponseX=abc&samlresponse=abc",
        "blank SAMLResponse": b"SAMLResponse=&RelayState=%2F",
        "just over the limit": b"SAMLResponse=" + b"A" * (limit - 12),
        "a megabyte": b"upload=" + os.urandom(1 << 20).hex().encode()[: 1 << 20],
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_other_form_posts_reach_the_app_byte_for_byte(
    site: Harness, app: App, streamed: bool
) -> None:
    for name, body in bodies(saml_form_limit(site.gate.settings)).items():
        content: Any = chunks(body, []) if streamed else body
        with anyio.fail_after(60):  # a deadlock guard: a body not replayed leaves the app waiting
            r = await site.client.post("/form/upload", content=content, headers=PAGE)
        assert r.status_code == 200, (name, r.text[:300])
        seen = r.json()
        assert seen["bytes"] == len(body), name
        assert seen["sha256"] == hashlib.sha256(body).hexdigest(), name


async def test_the_body_of_an_unclaimed_form_is_read_before_the_app_starts(
    site: Harness, app: App
) -> None:
    """The counterpart of the next test: without a session, the gate reads first."""
    r = await site.client.post("/form/a", content=chunks(b"a=1", app.log), headers=PAGE)
    assert r.status_code == 200 and app.log == ["body read", "app"]


async def test_a_signed_in_persons_post_is_never_read(site: Harness, app: App) -> None:
    assert (await site.login()).status_code == 303
    form = f"SAMLResponse={site.response_b64(site.spec())}&RelayState=%2F".encode()
    for path in ("/form/a", "/private/a"):
        app.log.clear()
        r = await site.client.post(path, content=chunks(form, app.log), headers=PAGE)
        assert r.status_code == 200, r.text
        assert app.log == ["app", "body read"], path  # the app read it, not the gate
        assert r.json()["sha256"] == hashlib.sha256(form).hexdigest()
    # signed out (the session cookie gone), the same post is the IdP's misdirected Response
    site.client.cookies.clear()
    r = await site.client.post("/form/a", content=form, headers=PAGE)
    assert r.status_code == 400 and "<code>wrong_acs_url</code>" in r.text


async def test_an_expired_session_does_not_shield_a_misdirected_response(
    site: Harness, app: App
) -> None:
    assert (await site.login()).status_code == 303
    site.clock.advance(site.gate.settings.maximum_duration + 1)
    form = {"SAMLResponse": site.response_b64(site.spec())}
    r = await site.client.post("/", data=form, headers={"accept": "text/html"})
    assert r.status_code == 400 and "<code>wrong_acs_url</code>" in r.text


async def test_api_calls_and_other_bodies_are_never_read(site: Harness, app: App) -> None:
    form = b"SAMLResponse=PHNhbWw%2B"
    json_call = {**PAGE, "accept": "application/json"}
    multipart = {"accept": "text/html", "content-type": "multipart/form-data; boundary=x"}
    for headers in (json_call, multipart):
        app.log.clear()
        r = await site.client.post("/form/a", content=chunks(form, app.log), headers=headers)
        assert r.status_code == 200 and app.log == ["app", "body read"], headers


async def test_a_get_to_the_public_root_is_untouched(site: Harness) -> None:
    r = await site.client.get("/", headers={"accept": "text/html"})
    assert r.status_code == 200 and r.text == "home"


async def test_the_gate_reads_no_more_than_the_limit(
    make_harness: HarnessFactory, app: App
) -> None:
    """A public form POST longer than a SAMLResponse can be is passed on after ``limit`` bytes,
    the rest read by the app as it arrives."""
    h: Harness = make_harness(app.asgi(), **RULES)
    limit = saml_form_limit(h.gate.settings)
    pulled: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(20):
            pulled.append(len(app.log))  # how often the app had started when this was read
            yield b"x" * (limit // 4)

    r = await h.client.post("/form/big", content=stream(), headers=PAGE)
    assert r.status_code == 200 and r.json()["bytes"] == 20 * (limit // 4)
    assert pulled[:5] == [0] * 5 and set(pulled[5:]) == {1}  # 5 chunks: just over the limit
