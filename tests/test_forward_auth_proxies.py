"""Forward-auth through real reverse proxies: Debian's nginx and Caddy, each running the
configuration shipped in ``examples/forward_auth/`` (only its addresses replaced), in front of
an echo upstream, asking the gate's ``/saml/auth`` about every request.

The gate's public host (``auth.example.test``, its ``base_url``) and each proxy's site
(``nginx.example.test``, ``caddy.example.test``) are different hosts to the browser, as in
production: one sign-in covers the sites through ``cookie_domain`` and ``allowed_hosts``. The
browser is an ``httpx.Client`` with cookies; the test IdP (``saml_gate.testing``) signs its
Responses. The upstream verifies the identity JWT against the gate's JWKS with PyJWT, on its own.
The harness and the configurations alone (with a stand-in gate): ``tests/forward_auth/``.
"""

from __future__ import annotations

import json
import os
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
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from websockets.exceptions import InvalidStatus

from saml_gate import SamlGate
from saml_gate.testing import NAVIGATION, SamlTestIdp
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
    )
    signed_in = Starlette(routes=[Route("/", lambda _: PlainTextResponse("Signed in."))])
    app = SamlGate(signed_in, **options)
    with serving(app, port=port), serving(upstream.app) as app_port:
        upstream.jwt_check = JwtCheck(
            jwks_url=f"http://127.0.0.1:{port}/saml/jwks.json", issuer=url, audience=url
        )
        yield Gate(idp, url, f"127.0.0.1:{port}", upstream, f"127.0.0.1:{app_port}")


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def proxy(
    request: pytest.FixtureRequest, gate: Gate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningProxy]:
    runtime = tmp_path_factory.mktemp(request.param)
    with proxies.proxy_for(request.param, gate.address, gate.app_address, runtime) as running:
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
    assert claims["iss"] == claims["aud"] == gate.url
    assert claims["sid"]
    assert identity_of(gate.upstream.received[-1]) == {
        "X-Forwarded-User": ["alice@example.test"],
        "X-Forwarded-Email": ["alice@example.test"],
        "X-Forwarded-Groups": ["staff,admins"],
    }


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
        upstream.jwt_check = JwtCheck(f"http://{gate_at}/saml/jwks.json", url, url)
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
