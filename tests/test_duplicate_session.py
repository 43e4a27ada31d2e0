"""Two session cookies: refused (401 ``duplicate_session``), never decided on one of them, and
deleted under every domain and path that can have sent them, so that the person can sign in
again. Through the real endpoints on raw sockets: middleware, proxy mode, forward-auth (both
ways of describing the original request), and the gate's own ``/saml/session``. A browser's
cookie jar dropping them, through nginx and Caddy: ``tests/test_forward_auth_proxies.py``.

A sibling subdomain (``evil.example.test``) can set ``saml_gate_session`` with
``Domain=example.test; Path=/admin``: the browser sends it first to ``/admin/...`` and beside
the gate's own everywhere below ``/admin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from saml_gate.proxy import build_proxy_app
from saml_gate.session.cookies import MAX_PATHS, AmbiguousCookie, only_cookie
from tests.support import FrozenClock, Harness, gate_options
from tests.test_websocket_uvicorn import serve, session_cookie

pytestmark = pytest.mark.anyio
APP_HOST = "app.example.test"
FORWARDED = (
    "X-Forwarded-Method: GET",
    "X-Forwarded-Proto: https",
    f"X-Forwarded-Host: {APP_HOST}",
    "X-Forwarded-Uri: /private/page?tab=1",
)
NGINX = (f"X-Original-URL: https://{APP_HOST}/private/page?tab=1", "X-Original-Method: GET")


async def answer(address: str, target: str, cookie: str, *headers: str) -> tuple[int, bytes]:
    """(status, head) of a GET sent as written."""
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1:8000", "Accept: application/json"]
    lines += [f"Cookie: {cookie}", *headers, "Connection: close", "", ""]
    request = "\r\n".join(lines).encode("latin-1")
    host, port = address.split(":")
    data = b""
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(request)
        with anyio.fail_after(30):
            try:
                while True:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    head = data.partition(b"\r\n\r\n")[0]
    return int(head.split(b" ", 2)[1]), head


def deletions(head: bytes) -> set[tuple[str, str]]:
    """(Domain or "", Path) of every Set-Cookie that deletes the session cookie."""
    found = set()
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() != "set-cookie" or not value.strip().startswith("saml_gate_session=;"):
            continue
        attributes = dict(
            (k.strip().lower(), v) for k, _, v in (a.partition("=") for a in value.split(";")[1:])
        )
        assert attributes["max-age"] == "0", value
        found.add((attributes.get("domain", ""), attributes["path"]))
    return found


def planted(h: Harness, other: Harness) -> str:
    """The Cookie header of a browser holding ``other``'s session on a longer path (sent first)
    and its own."""
    return f"{session_cookie(other)}; {session_cookie(h)}"


RULES: dict[str, Any] = {"access_rules": ["/private/ groups=admins"]}


@pytest.fixture
async def two_people(make_harness: Any) -> tuple[Harness, Harness]:
    """alice (admins) and mallory (users), each signed in through a gate of one configuration
    (whose sessions ``site`` accepts)."""
    alice: Harness = make_harness(**RULES)
    mallory: Harness = make_harness(**RULES)
    assert (await alice.login()).status_code == 303
    assert (await mallory.login(name_id="mallory@example.com")).status_code == 303
    return alice, mallory


@pytest.fixture
def site(make_harness: Any) -> Harness:
    """The gate the requests go to: the same, with one sign-in for the subdomains of
    example.test (its harness cannot sign in itself: the test client is on 127.0.0.1), serving
    forward-auth too."""
    h: Harness = make_harness(
        **RULES, cookie_domain="example.test", allowed_hosts=[APP_HOST], forward_auth=True
    )
    return h


async def test_middleware_refuses_two_session_cookies_and_deletes_them(
    two_people: tuple[Harness, Harness], site: Harness
) -> None:
    alice, mallory = two_people
    async with serve(site.gate) as address:
        alone, _ = await answer(address, "/private/page", session_cookie(alice))
        status, head = await answer(
            address, "/private/page?x=1", planted(alice, mallory), f"X-Forwarded-Host: {APP_HOST}"
        )
        reversed_status, _ = await answer(address, "/private/page", planted(mallory, alice))
        junk, _ = await answer(address, "/page", "saml_gate_session=junk; " + session_cookie(alice))
    assert alone == 200
    assert status == reversed_status == junk == 401
    paths = {"/", "/private", "/private/", "/private/page"}
    expected = {(domain, path) for domain in ("", "example.test") for path in paths}
    assert deletions(head) == expected


async def test_the_refusal_names_the_code_and_how_to_recover(
    two_people: tuple[Harness, Harness],
) -> None:
    alice, mallory = two_people
    r = await alice.client.get(
        "/private/page", headers={"accept": "application/json", "cookie": planted(alice, mallory)}
    )
    assert r.status_code == 401 and r.json()["error"] == "duplicate_session"
    assert "sign in again" in r.json()["hint"]
    page = await alice.client.get(
        "/private/page", headers={"accept": "text/html", "cookie": planted(alice, mallory)}
    )
    assert page.status_code == 401 and "More than one session cookie" in page.text
    assert "/saml/login?return_to=%2Fprivate%2Fpage" in page.text  # "Sign in again"


async def test_the_same_session_twice_is_no_question(two_people: tuple[Harness, Harness]) -> None:
    alice, _ = two_people
    async with serve(alice.gate) as address:
        status, head = await answer(address, "/private/page", planted(alice, alice))
    assert status == 200 and not deletions(head)


async def test_a_duplicate_on_a_public_path_is_not_looked_at(
    make_harness: Any,
) -> None:
    h: Harness = make_harness(public_paths=["/public/"])
    other: Harness = make_harness(public_paths=["/public/"])
    await h.login()
    await other.login(name_id="mallory@example.com")
    r = await h.client.get("/public/x", headers={"cookie": planted(h, other)})
    assert r.status_code == 200


async def test_the_gates_own_endpoints_refuse_too(two_people: tuple[Harness, Harness]) -> None:
    alice, mallory = two_people
    async with serve(alice.gate) as address:
        status, head = await answer(address, "/saml/session", planted(alice, mallory))
    assert status == 401
    assert ("", "/saml/session") in deletions(head)


async def test_a_deep_path_deletes_a_bounded_number_of_cookies(
    two_people: tuple[Harness, Harness], site: Harness
) -> None:
    alice, mallory = two_people
    async with serve(site.gate) as address:
        status, head = await answer(address, "/a" * 500, planted(alice, mallory))
    found = deletions(head)
    assert status == 401 and len(found) <= 2 * (MAX_PATHS + 1)
    assert ("example.test", "/a/a") in found


# ---------------------------------------------------------------------- proxy mode
@pytest.fixture
def upstream_calls() -> Iterator[list[str]]:
    yield []


async def test_proxy_mode_refuses_before_the_upstream(
    two_people: tuple[Harness, Harness],
    idp_keys: Any,
    sp_keys: Any,
    clock: FrozenClock,
    tmp_path: Any,
    upstream_calls: list[str],
) -> None:
    alice, mallory = two_people

    async def page(request: Any) -> PlainTextResponse:
        upstream_calls.append(request.url.path)
        return PlainTextResponse("upstream")

    upstream = Starlette(routes=[Route("/{rest:path}", page)])
    async with serve(upstream) as upstream_address:
        gate = build_proxy_app(
            f"http://{upstream_address}",
            **gate_options(
                idp_keys, sp_keys, clock, str(tmp_path), access_rules=["/private/ groups=admins"]
            ),
        )
        async with serve(gate, lifespan="on") as address:
            ok, _ = await answer(address, "/private/page", session_cookie(alice))
            status, head = await answer(address, "/private/page", planted(alice, mallory))
    assert ok == 200 and upstream_calls == ["/private/page"]
    assert status == 401
    assert ("", "/private") in deletions(head)


# ---------------------------------------------------------------------- forward-auth
@pytest.mark.parametrize("described", [FORWARDED, NGINX], ids=["x-forwarded", "x-original-url"])
async def test_forward_auth_refuses_and_deletes_where_the_browser_asked(
    two_people: tuple[Harness, Harness], site: Harness, described: tuple[str, ...]
) -> None:
    alice, mallory = two_people
    async with serve(site.gate) as address:
        ok, _ = await answer(address, "/saml/auth", session_cookie(alice), *described)
        status, head = await answer(address, "/saml/auth", planted(alice, mallory), *described)
    assert ok == 200
    assert status == 401
    found = deletions(head)
    assert {("example.test", "/private"), ("", "/private/page")} <= found
    assert not any(path.startswith("/saml") for _, path in found)


def _scanned(header: str, name: str) -> str | None:
    """The session cookie as the general scan reads it: every ``name=`` at a cookie's start,
    one value or AmbiguousCookie (what only_cookie's single-occurrence shortcut must agree with)."""
    values = []
    for chunk in header.split(";"):
        stripped = chunk.lstrip(" ")
        if stripped.startswith(name + "=") and (chunk == stripped or chunk.startswith(" ")):
            values.append(stripped[len(name) + 1 :].strip())
    if len(set(values)) > 1:
        raise AmbiguousCookie(name)
    return values[0] if values else None


@pytest.mark.parametrize(
    "header",
    [
        "sg_session=abc",
        "a=1; sg_session=abc",
        "sg_session=abc; a=1",
        "a=1;sg_session=abc;b=2",
        "xsg_session=evil; sg_session=abc",  # a longer name ending in ours is not ours
        "xsg_session=evil",
        "a=sg_session=evil",  # our name inside another cookie's value
        "a=sg_session=evil; sg_session=abc",
        "sg_session=abc; a=sg_session=evil",
        "sg_session=abc; sg_session=abc",
        "sg_session=abc; sg_session=other",
        "a=1; sg_session=abc;  sg_session=other ",
        "sg_session= abc ; b=2",
        "sg_session=",
        "",
    ],
)
def test_reading_the_session_cookie_agrees_with_the_general_scan(header: str) -> None:
    try:
        expected: str | type[AmbiguousCookie] | None = _scanned(header, "sg_session")
    except AmbiguousCookie:
        expected = AmbiguousCookie
    try:
        got: str | type[AmbiguousCookie] | None = only_cookie(header, "sg_session")
    except AmbiguousCookie:
        got = AmbiguousCookie
    assert got == expected
