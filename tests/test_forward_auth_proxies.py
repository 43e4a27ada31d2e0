"""Forward-auth through real reverse proxies: Debian's nginx and Caddy, each running the
configuration shipped in ``examples/forward_auth/`` (only its addresses replaced), in front of
an echo upstream, asking the gate's ``/saml/auth`` about every request.

The gate's public host (``auth.example.test``, its ``base_url``) and each proxy's site
(``nginx.example.test``, ``caddy.example.test``) are different hosts to the browser, as in
production: one sign-in covers the sites through ``cookie_domain`` and ``allowed_hosts``. The
browser is an ``httpx.Client`` with cookies; the test IdP (``saml_gate.testing``) signs its
Responses. The upstream verifies the identity JWT against the gate's JWKS with PyJWT, on its own.
Raw requests (``http.client``, raw WebSocket handshakes) check what the upstream receives for
exact bytes: never a cookie of the gate, the app's own cookies byte for byte (several Cookie
lines, public paths, a large header), the gate's headers whatever the client's ``Connection``
lists; and what an open WebSocket does after its session is signed out.
The harness and the configurations alone (with a stand-in gate): ``tests/forward_auth/``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from saml_gate import SamlGate
from saml_gate.testing import NAVIGATION, SamlTestIdp
from saml_gate.testing.access_tokens import CLIENT_ID
from tests.forward_auth import proxies
from tests.forward_auth.proxies import RunningProxy, websocket_echo
from tests.forward_auth.servers import (
    IDENTITY,
    SPOOFED,
    EchoUpstream,
    JwtCheck,
    Received,
    browser,
    serving,
)

API = {"accept": "application/json"}
ALICE: dict[str, Any] = {"email": "alice@example.test", "groups": ["staff", "admins"]}


@dataclass
class Gate:
    idp: SamlTestIdp
    url: str
    """Its base_url: where the browser signs in."""
    address: str
    """Where it listens (``host:port``), for the proxies."""
    upstream: EchoUpstream
    app_address: str
    grafana: EchoUpstream | None = None
    """The example's second app, behind each proxy as ``grafana-{proxy}.example.test``."""
    grafana_address: str = ""


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    """The gate (as ``saml-gate forward-auth`` builds it: a SamlGate with nothing behind it) on
    a loopback port, and the echo upstream trusting its JWKS."""
    idp = SamlTestIdp()
    upstream = EchoUpstream()
    port = proxies.free_port()
    url = f"http://auth.example.test:{port}"
    options = idp.gate_options(
        url,
        cookie_domain="example.test",
        allowed_hosts=["*.example.test"],
        authorized_groups=["staff"],
        public_paths=["/public/"],
        # the example's second app (grafana) on each proxy: admins only, and its own audience;
        # scripts reach /api/ with a bearer token
        access_rules=[
            *(f"grafana-{name}.example.test/ groups=admins" for name in PROXIES),
            "/api/ accept=session,token",
        ],
        forward_auth=True,
    )
    signed_in = Starlette(routes=[Route("/", lambda _: PlainTextResponse("Signed in."))])
    app = SamlGate(signed_in, **options)
    grafana = EchoUpstream()
    with (
        serving(app, port=port),
        serving(upstream.app) as app_port,
        serving(grafana.app) as grafana_port,
    ):
        # each app checks the JWT names it: its own origin (the Host it was asked for)
        jwks = f"http://127.0.0.1:{port}/saml/jwks.json"
        upstream.jwt_check = JwtCheck(jwks_url=jwks, issuer=url)
        grafana.jwt_check = JwtCheck(jwks_url=jwks, issuer=url)
        yield Gate(
            idp,
            url,
            f"127.0.0.1:{port}",
            upstream,
            f"127.0.0.1:{app_port}",
            grafana,
            f"127.0.0.1:{grafana_port}",
        )


PROXIES = ("nginx", "caddy")


@pytest.fixture(scope="module", params=PROXIES)
def proxy(
    request: pytest.FixtureRequest, gate: Gate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    runtime = tmp_path_factory.mktemp(request.param)
    with proxies.proxy_for(
        request.param, gate.address, gate.app_address, runtime, gate.grafana_address
    ) as running:
        yield running


def sign_in(gate: Gate, client: Any, page: str, **person: Any) -> None:
    """Ask for ``page`` through the proxy as a browser, follow it to the gate's sign-in, sign in
    at the test IdP, and check the gate sends the browser back to ``page``."""
    asked = client.get(page, headers=NAVIGATION)
    assert asked.status_code == 302, asked.text
    login = f"{gate.url}/saml/login?{urlencode({'return_to': page})}"
    assert asked.headers["location"] == login
    # the test IdP's sign-in starts with that very GET, then posts a signed Response to the ACS
    answer = gate.idp.sign_in(client, path=page, **{**ALICE, **person})
    assert answer.headers["location"] == page


def identity_of(seen: Received) -> dict[str, list[str]]:
    names = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups")
    return {name: seen.values(name) for name in names}


def test_a_person_signs_in_through_the_proxy_and_lands_on_the_page(
    gate: Gate, proxy: RunningProxy
) -> None:
    target = "/private/report?q=a%26b&x=1+2&empty="
    page = proxy.url + target
    with browser() as client:
        sign_in(gate, client, page)
        landed = client.get(page, headers=NAVIGATION)
    assert landed.status_code == 200, landed.text
    echo = landed.json()
    assert echo["target"] == target
    assert echo["jwt_error"] is None
    claims = echo["identity"]
    assert claims["sub"] == claims["email"] == "alice@example.test"
    assert claims["groups"] == ["staff", "admins"]
    assert claims["iss"] == gate.url
    assert claims["aud"] == proxy.url  # the app's origin: a token for one app fails at another
    assert claims["sid"]
    assert identity_of(gate.upstream.received[-1]) == {
        "X-Forwarded-User": ["alice@example.test"],
        "X-Forwarded-Email": ["alice@example.test"],
        "X-Forwarded-Groups": ["staff,admins"],
    }


def test_a_bearer_token_reaches_the_gate_through_the_proxy(gate: Gate, proxy: RunningProxy) -> None:
    """The shipped configurations pass ``Authorization`` to the auth request (nginx: every
    header of the request; Caddy: its forward_auth copies them): a CI job's access token gets
    through to a token route, not to a browser-only one, and never from the query string."""
    token = gate.idp.access_token(groups=["staff"])
    bearer = {**API, "authorization": f"Bearer {token}"}
    before = len(gate.upstream.received)
    with browser() as client:
        admitted = client.get(proxy.url + "/api/data", headers=bearer)
        browser_only = client.get(proxy.url + "/private/page", headers=bearer)
        in_query = client.get(proxy.url + "/api/data?access_token=" + token, headers=API)
    assert admitted.status_code == 200, admitted.text
    claims = admitted.json()["identity"]
    assert claims["principal"] == "service" and claims["sub"] == claims["token_name"] == CLIENT_ID
    assert identity_of(gate.upstream.received[-1])["X-Forwarded-User"] == [CLIENT_ID]
    assert (browser_only.status_code, browser_only.json()["error"]) == (403, "token_not_accepted")
    assert (in_query.status_code, in_query.json()["error"]) == (400, "token_in_query")
    assert len(gate.upstream.received) == before + 1


def test_api_clients_get_401_with_the_login_url(gate: Gate, proxy: RunningProxy) -> None:
    before = len(gate.upstream.received)
    with browser() as client:
        fetched = client.get(proxy.url + "/private/data", headers=API)
        posted = client.post(proxy.url + "/private/data", json={"a": 1})
    for answer in (fetched, posted):
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "not_authenticated"
    login_url = fetched.json()["login_url"]
    assert login_url == f"{gate.url}/saml/login?" + urlencode(
        {"return_to": proxy.url + "/private/data"}
    )
    assert len(gate.upstream.received) == before


def www_authenticate(
    proxy: RunningProxy, method: str, path: str, headers: dict[str, str]
) -> tuple[int, list[str], bytes]:
    """The proxy's status, every ``WWW-Authenticate`` line it sent (repeats kept), its body."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.addresses.port, timeout=30)
    try:
        host = f"{proxy.addresses.site}:{proxy.addresses.port}"
        connection.request(method, path, headers={"Host": host, **headers})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    return answer.status, answer.headers.get_all("www-authenticate") or [], body


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_401_through_the_proxy_says_www_authenticate_once(
    gate: Gate, proxy: RunningProxy, method: str
) -> None:
    """nginx's auth_request copies the WWW-Authenticate of the gate's 401 onto its own answer,
    and the shipped ``@saml_gate`` location (which asks the gate again) hides the second one;
    Caddy passes the gate's answer on as it is. A page load's 302 never carries two either."""
    body = {"content-type": "application/json"} if method == "POST" else {}
    status, challenges, answer = www_authenticate(proxy, method, "/private/data", {**API, **body})
    assert status == 401, answer
    assert challenges == ['SAML realm="saml-gate"']
    assert json.loads(answer)["error"] == "not_authenticated"
    assert json.loads(answer)["login_url"].startswith(gate.url + "/saml/login?")
    status, challenges, _ = www_authenticate(proxy, "GET", "/private/page", {})
    assert status == 302  # to sign in
    assert len(challenges) <= 1  # nginx: auth_request's copy; Caddy: none


def test_spoofed_identity_headers_never_reach_the_upstream(gate: Gate, proxy: RunningProxy) -> None:
    spoofed = [(name, "mallory@evil.test") for name in SPOOFED]
    page = proxy.url + "/private/page"
    with browser() as client:
        anonymous = client.get(page, headers=[*spoofed, *API.items()])
        sign_in(gate, client, page)
        signed_in = client.get(page, headers=spoofed)
    assert anonymous.status_code == 401
    assert signed_in.status_code == 200, signed_in.text
    seen = gate.upstream.received[-1]
    assert "mallory" not in json.dumps(seen.headers)
    assert identity_of(seen)["X-Forwarded-User"] == ["alice@example.test"]
    assert seen.identity is not None and seen.identity["sub"] == "alice@example.test"
    for name in IDENTITY:
        assert len(seen.names_like(name)) == 1, seen.headers


def test_the_client_cannot_name_another_url_to_the_gate(gate: Gate, proxy: RunningProxy) -> None:
    """The gate reads X-Original-URL before X-Forwarded-Uri: each proxy's configuration sets or
    drops both, so a client claiming a public path still needs a session."""
    lies = {
        "X-Original-URL": f"{proxy.url}/public/x",
        "X-Original-Method": "GET",
        "X-Forwarded-Uri": "/public/x",
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Host": "evil.test",
    }
    before = len(gate.upstream.received)
    with browser() as client:
        answer = client.get(proxy.url + "/private/page", headers={**API, **lies})
    assert answer.status_code == 401
    assert answer.json()["login_url"].endswith(urlencode({"": proxy.url + "/private/page"})[1:])
    assert len(gate.upstream.received) == before
    with browser() as client:  # what the lie would have bought: a public path needs no session
        assert client.get(proxy.url + "/public/x", headers=API).status_code == 200


def test_signed_in_but_not_allowed_gets_403(gate: Gate, proxy: RunningProxy) -> None:
    page = proxy.url + "/private/page"
    before = len(gate.upstream.received)
    with browser() as client:
        asked = client.get(page, headers=NAVIGATION)
        assert asked.status_code == 302
        gate.idp.sign_in(client, path=page, email="bob@example.test", groups=["contractors"])
        refused = client.get(page, headers=API)
    assert refused.status_code == 403, refused.text
    assert len(gate.upstream.received) == before


def test_two_session_cookies_are_refused_and_deleted(gate: Gate, proxy: RunningProxy) -> None:
    """A sibling subdomain planted its session on ``Path=/private`` (login CSRF): the browser
    sends it first, the person's own after it. The gate picks neither: the proxy passes on its
    401 and the deletions, the browser is left without a session and can sign in again."""
    page = proxy.url + "/private/page"
    with browser() as attacker:
        sign_in(gate, attacker, page, email="mallory@example.test")
        planted = attacker.cookies.get("saml_gate_session")
    before = len(gate.upstream.received)
    with browser() as client:
        sign_in(gate, client, page)
        client.cookies.set("saml_gate_session", planted, domain=".example.test", path="/private")
        refused = client.get(page, headers=NAVIGATION)
        assert refused.status_code == 401, refused.text
        assert "More than one session cookie" in refused.text
        assert not [c for c in client.cookies.jar if c.name == "saml_gate_session"]
        again = client.get(page, headers=NAVIGATION)
        assert again.status_code == 302  # to sign in
    assert len(gate.upstream.received) == before


@pytest.fixture(scope="module")
def nginx(gate: Gate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    runtime = tmp_path_factory.mktemp("nginx-ws")
    with proxies.proxy_for("nginx", gate.address, gate.app_address, runtime) as running:
        yield running


def test_a_websocket_through_nginx_is_gated(gate: Gate, nginx: RunningProxy) -> None:
    with pytest.raises(InvalidStatus) as refused:
        websocket_echo(nginx, "/private/ws")
    assert refused.value.response.status_code == 401
    with browser() as client:
        sign_in(gate, client, nginx.url + "/private/chat")
        cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    echo = websocket_echo(nginx, "/private/ws", cookie)
    assert echo["method"] == "WEBSOCKET"
    assert echo["jwt_error"] is None
    assert echo["identity"]["sub"] == "alice@example.test"
    assert ["x-forwarded-user", "alice@example.test"] in echo["headers"]


def test_nginx_passes_a_refreshed_session_cookie_back(gate: Gate, nginx: RunningProxy) -> None:
    """A session due for refresh: the gate's new cookie on its 200 reaches the browser (nginx's
    ``auth_request_set`` + ``add_header``), so an active person's session does not idle out."""
    page = nginx.url + "/private/page"
    with browser() as client:
        sign_in(gate, client, page)
        fresh = client.get(page, headers=API)
        assert fresh.status_code == 200
        assert "saml_gate_session" not in fresh.headers.get("set-cookie", "")
        gate.idp.clock.advance(61)  # past the refresh interval (at most 60 s), not the timeout
        try:
            refreshed = client.get(page, headers=API)
        finally:
            gate.idp.clock.advance(-61)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["set-cookie"].startswith("saml_gate_session=")


# ---------------------------------------------------------------------- two apps, one gate
CAROL: dict[str, Any] = {"email": "carol@example.test", "groups": ["staff"]}


def signed_in_cookie(gate: Gate, proxy: RunningProxy, **person: Any) -> str:
    """A session of ``person`` (signed in through the proxy's first app), as a Cookie value."""
    with browser() as client:
        sign_in(gate, client, proxy.url + "/private/page", **person)
        return "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)


def raw_answer(proxy: RunningProxy, head: bytes) -> int:
    """The status of a request sent as these exact bytes (``Connection: close`` added)."""
    with socket.create_connection(("127.0.0.1", proxy.addresses.port), timeout=30) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_each_app_has_its_own_rules_and_its_own_audience(gate: Gate, proxy: RunningProxy) -> None:
    """The example's two apps behind one proxy and one gate: grafana for admins only, the wiki
    for all staff; each app's JWT names that app, so one app's token fails at the other."""
    grafana = proxy.addresses.other_url + "/private/page"
    with browser() as client:
        sign_in(gate, client, proxy.url + "/private/page", **CAROL)
        assert client.get(proxy.url + "/private/page", headers=API).status_code == 200
        refused = client.get(grafana, headers=API)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    with browser() as client:
        sign_in(gate, client, grafana)  # alice, an admin
        landed = client.get(grafana, headers=API)
        wiki = client.get(proxy.url + "/private/page", headers=API)
    assert landed.status_code == wiki.status_code == 200, landed.text
    grafana_claims, wiki_claims = landed.json()["identity"], wiki.json()["identity"]
    assert landed.json()["jwt_error"] is None and wiki.json()["jwt_error"] is None
    assert grafana_claims["aud"] == proxy.addresses.other_url
    assert wiki_claims["aud"] == proxy.url
    token = dict(landed.json()["headers"])["x-saml-gate-jwt"]
    wiki_check = JwtCheck(gate.upstream.jwt_check.jwks_url, gate.url, proxy.url)  # type: ignore[union-attr]
    with pytest.raises(jwt.InvalidAudienceError):
        wiki_check.verify(token)


@pytest.mark.parametrize(
    "confusion",
    [
        "upper case",
        "another port",
        "absolute-form target",
        "x-forwarded-host",
        "trailing dot",
        "duplicate host",
        "idn",
        "unknown host",
    ],
)
def test_host_confusion_never_gives_one_apps_access_under_anothers_rules(
    gate: Gate, proxy: RunningProxy, confusion: str
) -> None:
    """Carol (staff, not an admin) may use the wiki and not grafana. However the request names
    its host, she never reaches grafana: either the proxy or the gate refuses, or the upstream
    was asked for the very host the gate decided on (its JWT, checked against the Host the
    upstream got, verifies: the decision and the app agree). Caddy answers a host none of its
    sites names with an empty 200 of its own."""
    cookie = signed_in_cookie(gate, proxy, **CAROL).encode()
    port = proxy.addresses.port
    grafana, wiki = proxy.addresses.other_site.encode(), proxy.addresses.site.encode()
    at = b":%d" % port
    target, hosts, extra = b"/private/page", [grafana + at], b""
    if confusion == "upper case":
        hosts = [grafana.upper() + at]
    elif confusion == "another port":
        hosts = [grafana + b":1"]
    elif confusion == "absolute-form target":  # the request line says grafana, Host the wiki
        target, hosts = b"http://" + grafana + at + b"/private/page", [wiki + at]
    elif confusion == "x-forwarded-host":
        extra = b"X-Forwarded-Host: " + wiki + at + b"\r\nX-Original-URL: http://" + wiki + at
        extra += b"/private/page\r\n"
    elif confusion == "trailing dot":
        hosts = [grafana + b"." + at]
    elif confusion == "duplicate host":
        hosts = [wiki + at, grafana + at]
    elif confusion == "idn":
        hosts = ["grafana-ñginx.example.test".encode() + at]
    elif confusion == "unknown host":
        hosts = [b"grafana-nginx.example.test.evil.test" + at]
    assert gate.grafana is not None
    before, grafana_before = len(gate.upstream.received), len(gate.grafana.received)
    head = b"GET " + target + b" HTTP/1.1\r\n"
    head += b"".join(b"Host: " + host + b"\r\n" for host in hosts)
    head += b"Accept: application/json\r\nCookie: " + cookie + b"\r\n" + extra
    status = raw_answer(proxy, head)
    reached = gate.upstream.received[before:]
    assert gate.grafana.received[grafana_before:] == []  # carol never reaches grafana
    if reached:  # served: for the host the gate decided on, never grafana for carol
        (seen,) = reached
        assert status == 200 and seen.jwt_error is None, seen.jwt_error
        assert seen.identity is not None
        assert seen.identity["aud"] == "http://" + seen.values("Host")[0].lower()
        assert not seen.identity["aud"].startswith("http://grafana-")
    else:  # refused by the proxy (400, 421; Caddy's empty 200 for no site) or by the gate
        assert status in (200, 400, 403, 421), (status, confusion)
    if confusion in ("upper case", "another port", "x-forwarded-host"):
        assert status == 403  # grafana's rule decided


# ---------------------------------------------------------------------- the command itself
@contextmanager
def forward_auth_command(idp: SamlTestIdp, url: str, port: int, tmp: Path) -> Iterator[None]:
    """``saml-gate forward-auth`` as a person runs it, trusting the test IdP."""
    options = idp.gate_options(url, cookie_domain="example.test", allowed_hosts=["*.example.test"])
    (tmp / "idp.xml").write_text(idp.metadata_xml)
    (tmp / "sp.key").write_text(str(options["sp_key"]))
    (tmp / "sp.crt").write_text(str(options["sp_cert"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAML_GATE_")}
    env["SAML_GATE_SECRET_KEY"] = str(options["secret_key"])
    command = [
        *(sys.executable, "-m", "saml_gate.cli", "forward-auth", "--port", str(port)),
        *("--base-url", url, "--idp-metadata", str(tmp / "idp.xml")),
        *("--sp-key", str(tmp / "sp.key"), "--sp-cert", str(tmp / "sp.crt")),
        *("--state-dir", str(tmp / "state"), "--cookie-domain", "example.test"),
        *("--allowed-host", "*.example.test"),
    ]
    with (tmp / "gate.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a measurement
        while httpx_status(f"http://127.0.0.1:{port}/saml/jwks.json") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the gate did not start:\n" + (tmp / "gate.log").read_text())
            with suppress(subprocess.TimeoutExpired):
                process.wait(0.05)
        yield
    finally:
        proxies.stop(process)


def httpx_status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_the_forward_auth_command_behind_nginx(tmp_path: Path) -> None:
    """The same sign-in with the real ``saml-gate forward-auth`` process behind nginx."""
    idp, upstream = SamlTestIdp(), EchoUpstream()
    port = proxies.free_port()
    url = f"http://auth.example.test:{port}"
    gate_at = f"127.0.0.1:{port}"
    with (
        forward_auth_command(idp, url, port, tmp_path),
        serving(upstream.app) as app_port,
        proxies.proxy_for("nginx", gate_at, f"127.0.0.1:{app_port}", tmp_path / "nginx") as nginx,
    ):
        upstream.jwt_check = JwtCheck(f"http://{gate_at}/saml/jwks.json", url)
        gate = Gate(idp, url, gate_at, upstream, f"127.0.0.1:{app_port}")
        page = nginx.url + "/reports/q?year=2026&team=a%2Fb"
        with browser() as client:
            sign_in(gate, client, page)
            landed = client.get(page, headers=NAVIGATION)
        with browser() as stranger:
            api = stranger.get(page, headers=API)
    assert landed.status_code == 200, landed.text
    assert landed.json()["identity"]["email"] == ALICE["email"]
    assert identity_of(upstream.received[-1])["X-Forwarded-Groups"] == ["staff,admins"]
    assert api.status_code == 401


# ---------------------------------------------------------------------- the gate's cookies
#: An app's own cookies, each to arrive byte for byte: signed-cookie style, "=" inside a value,
#: a quoted value with a space, Caddy's placeholder syntax (never expanded), a Latin-1 byte, an
#: empty value.
APP_COOKIES = [
    "app_session=s%3Aabc.DEF-123_",
    "theme=dark",
    "b64=YWJjZA==",
    'quoted="a b"',
    "brace=x{http.request.host}y",
    "latin=caf\xe9",
    "empty=",
]


def gate_cookies(client: httpx.Client) -> list[str]:
    """The gate's cookies a signed-in browser holds (``saml_gate_*``), as it sends them."""
    found = [f"{c.name}={c.value}" for c in client.cookies.jar if c.name.startswith("saml_gate_")]
    assert any(c.startswith("saml_gate_session=") for c in found), found
    return found


def raw_get(
    proxy: RunningProxy, path: str, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, Any] | None]:
    """GET ``path`` through ``proxy`` with exactly these headers (repeated names, any Connection,
    Latin-1 bytes), besides Host: its status and the upstream's echo (None if it was not
    reached)."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.addresses.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"{proxy.addresses.site}:{proxy.addresses.port}")
        for name, value in headers:
            connection.putheader(name, value.encode("latin-1"))
        connection.endheaders()
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200 or not body.startswith(b"{"):
        return answer.status, None
    echo: dict[str, Any] = json.loads(body)
    return answer.status, echo if "headers" in echo else None


def cookies_seen(echo: dict[str, Any]) -> list[str]:
    return [value for name, value in echo["headers"] if name.lower() == "cookie"]


@contextmanager
def signed_in_browser(gate: Gate, proxy: RunningProxy) -> Iterator[httpx.Client]:
    with browser() as client:
        sign_in(gate, client, proxy.url + "/private/start")
        yield client


@pytest.mark.parametrize(
    "arrangement", ["gate first", "gate last", "gate between", "gate twice", "no space"]
)
def test_the_app_never_sees_the_gates_cookies_and_gets_its_own_byte_for_byte(
    gate: Gate, proxy: RunningProxy, arrangement: str
) -> None:
    with signed_in_browser(gate, proxy) as client:
        ours = gate_cookies(client)
    apps = APP_COOKIES
    lines = {
        "gate first": [*ours, *apps],
        "gate last": [*apps, *ours],
        "gate between": [apps[0], *ours, *apps[1:]],
        "gate twice": [*ours, apps[0], *ours, *apps[1:]],
        "no space": [*apps[:2], *ours, *apps[2:]],
    }[arrangement]
    separator = ";" if arrangement == "no space" else "; "
    status, echo = raw_get(
        proxy, "/private/page", [("Cookie", separator.join(lines)), *API.items()]
    )
    assert status == 200 and echo is not None
    assert cookies_seen(echo) == [separator.join(apps)]
    assert ["x-forwarded-user", "alice@example.test"] in echo["headers"]  # signed in all along


def test_several_cookie_lines_reach_the_app_as_one_without_the_gates(
    gate: Gate, proxy: RunningProxy
) -> None:
    """A client may split its cookies over several Cookie lines (HTTP/2 does): the gate reads
    them all, the app gets one line with its own cookies only."""
    with signed_in_browser(gate, proxy) as client:
        (session,) = [c for c in gate_cookies(client) if c.startswith("saml_gate_session=")]
    lines = [
        f"{APP_COOKIES[0]}; {session}",
        f"saml_gate_reqslot=1; {APP_COOKIES[1]}",
        "saml_gate_logout=x",
        APP_COOKIES[2],
    ]
    status, echo = raw_get(proxy, "/private/page", [*(("Cookie", c) for c in lines), *API.items()])
    assert status == 200 and echo is not None
    assert cookies_seen(echo) == ["; ".join(APP_COOKIES[:3])]


@pytest.mark.parametrize("page", ["/private/page", "/public/page"])
def test_when_only_the_gates_cookies_were_sent_the_app_gets_no_cookie_header(
    gate: Gate, proxy: RunningProxy, page: str
) -> None:
    with signed_in_browser(gate, proxy) as client:
        ours = gate_cookies(client)
    status, echo = raw_get(proxy, page, [("Cookie", "; ".join(ours)), *API.items()])
    assert status == 200 and echo is not None
    assert cookies_seen(echo) == []
    assert "saml_gate_" not in json.dumps(echo["headers"])


def test_a_public_page_gets_the_apps_cookies_only(gate: Gate, proxy: RunningProxy) -> None:
    """No session needed there, but a browser sends its session anyway: not to the app."""
    with signed_in_browser(gate, proxy) as client:
        ours = gate_cookies(client)
    cookie = "; ".join([*APP_COOKIES[:2], *ours, *APP_COOKIES[2:]])
    status, echo = raw_get(proxy, "/public/page", [("Cookie", cookie), *API.items()])
    assert status == 200 and echo is not None
    assert cookies_seen(echo) == ["; ".join(APP_COOKIES)]


def test_a_large_cookie_header_passes_whole(gate: Gate, proxy: RunningProxy) -> None:
    """5.5 KB of the app's cookies: the gate's answer carries them all (nginx needs
    ``proxy_buffer_size`` above its default 4k for that)."""
    with signed_in_browser(gate, proxy) as client:
        ours = gate_cookies(client)
    apps = [f"c{i}={'v' * 250}" for i in range(22)]
    status, echo = raw_get(
        proxy,
        "/private/page",
        [("Cookie", "; ".join([*apps[:11], *ours, *apps[11:]])), *API.items()],
    )
    assert status == 200 and echo is not None
    assert cookies_seen(echo) == ["; ".join(apps)]


# ---------------------------------------------------------------------- Connection
HOP_BY_HOP_TRICKS = [
    "X-Forwarded-Groups, X-Saml-Gate-Jwt",
    "keep-alive, x-forwarded-user, x-forwarded-email, x-forwarded-groups, x-saml-gate-jwt",
    "X-Forwarded-User,X-Forwarded-Groups,X-Saml-Gate-Jwt,Cookie",
]


@pytest.mark.parametrize("connection", HOP_BY_HOP_TRICKS)
def test_the_client_cannot_have_the_proxy_drop_the_gates_headers(
    gate: Gate, proxy: RunningProxy, connection: str
) -> None:
    """Connection lists hop-by-hop headers, which a proxy removes when it forwards: listed by
    the client, the gate's identity headers would be removed after the proxy set them."""
    with signed_in_browser(gate, proxy) as client:
        cookie = "; ".join([APP_COOKIES[0], *gate_cookies(client)])
    headers = [("Connection", connection), ("Cookie", cookie), *API.items()]
    status, echo = raw_get(proxy, "/private/page", headers)
    assert status == 200 and echo is not None
    seen = Received(
        **{k: echo[k] for k in ("method", "target", "headers")}, identity=None, jwt_error=None
    )
    assert identity_of(seen) == {
        "X-Forwarded-User": ["alice@example.test"],
        "X-Forwarded-Email": ["alice@example.test"],
        "X-Forwarded-Groups": ["staff,admins"],
    }
    assert echo["jwt_error"] is None and echo["identity"]["groups"] == ["staff", "admins"]
    assert cookies_seen(echo) == [APP_COOKIES[0]]
    assert seen.values("connection") in ([], ["close"], ["keep-alive"])


@pytest.mark.parametrize(
    "connection", ["Upgrade, X-Saml-Gate-Jwt, X-Forwarded-Groups", "upgrade,cookie"]
)
def test_a_websocket_handshake_cannot_drop_the_gates_headers_either(
    gate: Gate, proxy: RunningProxy, connection: str
) -> None:
    with signed_in_browser(gate, proxy) as client:
        cookie = "; ".join(gate_cookies(client))
    echo = raw_websocket_echo(
        proxy, "/private/ws", [("Connection", connection), ("Cookie", cookie)]
    )
    assert echo["method"] == "WEBSOCKET"
    assert echo["jwt_error"] is None and echo["identity"]["groups"] == ["staff", "admins"]
    assert ["x-forwarded-groups", "staff,admins"] in echo["headers"]
    assert not [v for k, v in echo["headers"] if k == "cookie"]


def raw_websocket_echo(
    proxy: RunningProxy, path: str, headers: list[tuple[str, str]]
) -> dict[str, Any]:
    """A WebSocket handshake through ``proxy`` with exactly these headers (any Connection),
    then the upstream's first (text) message."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = [
        f"GET {path} HTTP/1.1",
        f"Host: {proxy.addresses.site}:{proxy.addresses.port}",
        "Upgrade: websocket",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    with socket.create_connection(("127.0.0.1", proxy.addresses.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
        stream = sock.makefile("rb")
        status = stream.readline()
        assert b" 101 " in status, status
        while stream.readline() not in (b"\r\n", b""):
            pass
        first, second = stream.read(2)
        assert first & 0x0F == 1, "a text frame"
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(stream.read(2), "big")
        elif length == 127:
            length = int.from_bytes(stream.read(8), "big")
        message: dict[str, Any] = json.loads(stream.read(length))
        return message


# ---------------------------------------------------------------------- WebSockets and sessions
def test_an_open_websocket_outlives_its_session_within_the_jwt_lifetime(
    gate: Gate, proxy: RunningProxy
) -> None:
    """What forward-auth cannot do (README, "WebSockets"): the proxy asks the gate once, at the
    handshake, so a WebSocket open when its session is signed out stays open. What bounds it:
    the identity JWT the app got at the handshake expires within ``jwt_lifetime`` (120 s), so
    an app that closes the socket at the token's ``exp`` makes the client reconnect, and a
    handshake after the sign-out is refused."""
    with signed_in_browser(gate, proxy) as client:
        cookie = "; ".join(gate_cookies(client))
        sock = socket.create_connection(("127.0.0.1", proxy.addresses.port))
        url = proxy.url.replace("http://", "ws://") + "/private/ws/stay"
        with connect(url, sock=sock, additional_headers={"Cookie": cookie}, open_timeout=10) as ws:
            echo = json.loads(ws.recv(timeout=10))
            claims = echo["identity"]
            assert echo["jwt_error"] is None
            assert claims["exp"] - claims["iat"] <= 120
            sign_out(gate, client)
            ws.send("still here?")
            assert ws.recv(timeout=10) == "still here?"  # the limitation, as documented
        with pytest.raises(InvalidStatus) as refused:
            websocket_echo(proxy, "/private/ws", cookie)
    assert refused.value.response.status_code == 401


def sign_out(gate: Gate, client: httpx.Client) -> None:
    page = client.get(f"{gate.url}/saml/logout")
    token = page.text.split("name=token value='")[1].split("'")[0]
    done = client.post(f"{gate.url}/saml/logout", data={"token": token})
    assert done.status_code in (200, 303), done.text
