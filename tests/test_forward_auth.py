"""Forward-auth (``/saml/auth``) through the real endpoint: the original request read strictly
from a trusted proxy's headers, the access rules and the request-side hardening applied to it,
200 / 401 / 302 / 403 as nginx, Caddy and Traefik expect, and ``return_to`` URLs for other
hosts (``allowed_hosts``). Spoofing from an untrusted peer goes through uvicorn and a raw
socket."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import jwt
import pytest

from saml_gate.jwt_verify import IdentityVerifier, InvalidIdentity
from tests.support import BASE_URL, Harness, decode_redirect_request
from tests.test_websocket_uvicorn import serve

pytestmark = pytest.mark.anyio

APP = "https://app.example.test"
NGINX = {"X-Original-URL": APP + "/private/page?x=1", "X-Original-Method": "GET"}
TRAEFIK = {
    "X-Forwarded-Method": "GET",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.example.test",
    "X-Forwarded-Uri": "/private/page?x=1",
}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def anonymous(h: Harness) -> httpx.AsyncClient:
    """A second browser on the same gate, without a session."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gate), base_url=BASE_URL)


async def signed_in(make_harness: Any, **options: Any) -> Harness:
    """A gate serving forward-auth, and a browser signed in to it."""
    h: Harness = make_harness(
        allowed_hosts=["app.example.test", "*.corp.example.test"], forward_auth=True, **options
    )
    r = await h.login()
    assert r.status_code == 303, r.text
    return h


async def test_signed_in_gets_identity_headers_and_a_jwt_the_jwks_verifies(
    make_harness: Any,
) -> None:
    h = await signed_in(make_harness)
    for described in (NGINX, TRAEFIK):
        r = await h.client.get("/saml/auth", headers=described)
        assert r.status_code == 200, r.text
        assert r.headers["x-forwarded-user"] == "alice@example.com"
        assert r.headers["x-forwarded-email"] == "alice@example.com"
        assert r.headers["x-forwarded-groups"] == "admins,users"
        assert r.headers["cache-control"] == "no-store"
    keys = (await h.client.get("/saml/jwks.json")).json()
    token = r.headers["x-saml-gate-jwt"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    key = jwt.PyJWKSet.from_dict(keys)[header["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=APP,  # the app served, not the gate: a token for one app fails at another
        issuer=BASE_URL,
        options={"verify_exp": False, "verify_iat": False},  # the harness clock is frozen
    )
    assert claims["sub"] == "alice@example.com"
    assert claims["groups"] == ["admins", "users"]
    assert claims["exp"] - claims["iat"] == 120
    assert claims["sid"]


async def test_without_a_session_an_api_request_gets_401_with_the_login_url(
    make_harness: Any,
) -> None:
    h = await signed_in(make_harness)
    api = {"Accept": "*/*", "Sec-Fetch-Mode": "cors"}  # a script's fetch()
    async with anonymous(h) as client:
        for described in (NGINX, {**TRAEFIK, **api}, {**TRAEFIK, "Accept": "application/json"}):
            r = await client.get("/saml/auth", headers=described)
            assert r.status_code == 401
            body = r.json()
            assert body["error"] == "not_authenticated"
            login = urlsplit(body["login_url"])
            assert parse_qs(login.query)["return_to"] == [APP + "/private/page?x=1"]
        # nginx describes even a page load with X-Original-URL: it turns 401 into the redirect
        r = await client.get("/saml/auth", headers={**NGINX, **HTML})
        assert r.status_code == 401


async def test_a_traefik_or_caddy_page_load_is_redirected_to_sign_in_and_lands_back(
    make_harness: Any,
) -> None:
    h = await signed_in(make_harness)
    async with anonymous(h) as client:
        r = await client.get("/saml/auth", headers={**TRAEFIK, **HTML})
        assert r.status_code == 302
        location = r.headers["location"]
        assert location.startswith(BASE_URL + "/saml/login?return_to=")
        # the browser follows it: the IdP, then the ACS, then the page it asked for
        r = await client.get(location, headers=HTML)
        assert r.status_code == 303
        request, relay = decode_redirect_request(r.headers["location"])
        answer = h.response_b64(h.spec(in_response_to=request.get("ID")))
        r = await client.post("/saml/acs", data={"SAMLResponse": answer, "RelayState": relay})
        assert r.status_code == 303
        assert r.headers["location"] == APP + "/private/page?x=1"
        r = await client.get("/saml/auth", headers=TRAEFIK)
        assert r.status_code == 200


async def test_no_identity_when_refused_and_on_a_public_path_only_with_a_live_session(
    make_harness: Any,
) -> None:
    h = await signed_in(make_harness, access_rules=["/ops/ groups=ops"], public_paths=["/public/"])
    refused = {"X-Original-URL": APP + "/ops/x", "X-Original-Method": "GET"}
    r = await h.client.get("/saml/auth", headers=refused)
    assert r.status_code == 403
    assert "x-forwarded-user" not in r.headers
    assert "x-saml-gate-jwt" not in r.headers
    public = {"X-Original-URL": APP + "/public/a", "X-Original-Method": "GET"}
    r = await h.client.get("/saml/auth", headers=public)  # signed in: who, for a greeting
    assert r.status_code == 200
    assert r.headers["x-forwarded-user"] == "alice@example.com"
    assert "x-saml-gate-jwt" in r.headers
    async with anonymous(h) as client:
        for cookie in ("", "saml_gate_session=garbage", "saml_gate_session=a; saml_gate_session=b"):
            r = await client.get("/saml/auth", headers={**public, "Cookie": cookie})
            assert r.status_code == 200  # anonymous: never refused, no cookie cleared
            assert "x-forwarded-user" not in r.headers
            assert "x-saml-gate-jwt" not in r.headers
            assert "set-cookie" not in r.headers


@pytest.mark.parametrize("path", ["/private/page", "/public/page"])
async def test_the_answer_carries_the_apps_cookie_without_the_gates(
    make_harness: Any, path: str
) -> None:
    """What the shipped configurations send the app as Cookie: every Cookie line joined, the
    gate's cookies (``saml_gate_*``) out, each other pair byte for byte; no header at all when
    nothing else is left. The same as proxy mode's (one function)."""
    h = await signed_in(make_harness, public_paths=["/public/"])
    session = h.client.cookies["saml_gate_session"]
    described = {"X-Original-URL": APP + path, "X-Original-Method": "GET"}
    lines = [f"a=1; saml_gate_session={session}", "saml_gate_reqslot=2;b=x y", "c=caf\xe9"]
    async with anonymous(h) as client:  # the cookies exactly as given, no jar
        r = await client.get(
            "/saml/auth",
            headers=[*described.items(), *(("Cookie", line.encode("latin-1")) for line in lines)],
        )
        assert r.status_code == 200, r.text
        assert r.headers.get_list("cookie") == ["a=1; b=x y; c=caf\xe9"]
        assert r.headers["x-forwarded-user"] == "alice@example.com"  # public pages too
        alone = await client.get(
            "/saml/auth", headers={**described, "Cookie": f"saml_gate_session={session}"}
        )
        assert alone.status_code == 200 and "cookie" not in alone.headers


@pytest.mark.parametrize(
    ("url", "method", "code"),
    [
        (APP + "/public/../private/page", "GET", "bad_path"),
        (APP + "/public/%2e%2e/private/page", "GET", "bad_path"),
        (APP + "/public/..%2Fprivate/page", "GET", "bad_path"),
        (APP + "/public;x/page", "GET", "bad_path"),
        (APP + "/public/a", "get", "bad_method"),
        (APP + "/public/a", "G ET", "bad_method"),
        (APP + "/public/a?_method=delete!", "GET", "bad_method"),
    ],
)
async def test_the_request_side_hardening_applies_to_the_original_request(
    make_harness: Any, url: str, method: str, code: str
) -> None:
    h = await signed_in(make_harness, public_paths=["/public/"])
    r = await h.client.get(
        "/saml/auth", headers={"X-Original-URL": url, "X-Original-Method": method}
    )
    assert r.status_code == 400
    assert f"<code>{code}</code>" in r.text


async def test_method_rules_and_overrides_apply_to_the_original_method(make_harness: Any) -> None:
    h = await signed_in(make_harness, access_rules=["/api/ public methods=GET"])
    async with anonymous(h) as client:
        get = {"X-Original-URL": APP + "/api/items", "X-Original-Method": "GET"}
        assert (await client.get("/saml/auth", headers=get)).status_code == 200
        post = {**get, "X-Original-Method": "POST"}
        assert (await client.get("/saml/auth", headers=post)).status_code == 401
        # the upstream may run a GET as DELETE: it must be allowed as DELETE too
        override = {**get, "X-HTTP-Method-Override": "DELETE"}
        assert (await client.get("/saml/auth", headers=override)).status_code == 401


@pytest.mark.parametrize("in_body", [True, False])
async def test_every_original_post_may_carry_a_method_in_its_body(
    make_harness: Any, in_body: bool
) -> None:
    """Forward-auth never sees the body, so an original POST may carry ``_method=DELETE`` for
    the upstream: with ``method_override_in_body`` (default) it must meet DELETE's rule too."""
    h = await signed_in(
        make_harness,
        access_rules=["/api/ methods=DELETE groups=ops"],
        method_override_in_body=in_body,
    )
    get = {"X-Original-URL": APP + "/api/items/1", "X-Original-Method": "GET"}
    assert (await h.client.get("/saml/auth", headers=get)).status_code == 200
    post = {**get, "X-Original-Method": "POST"}
    r = await h.client.get("/saml/auth", headers=post)
    assert r.status_code == (403 if in_body else 200)
    delete = {**get, "X-Original-Method": "DELETE"}
    assert (await h.client.get("/saml/auth", headers=delete)).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Original-URL": APP + "/private/page"},  # no method
        {"X-Original-URL": "/private/page", "X-Original-Method": "GET"},  # not absolute
        {"X-Original-URL": "https://user@app.example.test/p", "X-Original-Method": "GET"},
        {"X-Original-URL": APP + "/p q", "X-Original-Method": "GET"},
        {"X-Original-URL": "ftp://app.example.test/p", "X-Original-Method": "GET"},
        {"X-Original-URL": "https://app.example.testhttp://x/p", "X-Original-Method": "GET"},
        {"X-Original-URL": "https://app.example.test\\@evil/p", "X-Original-Method": "GET"},
        {**TRAEFIK, "X-Forwarded-Uri": "private/page"},
        {**TRAEFIK, "X-Forwarded-Host": "evil.example/x"},
        {k: v for k, v in TRAEFIK.items() if k != "X-Forwarded-Host"},
    ],
)
async def test_a_malformed_description_is_400(make_harness: Any, headers: dict[str, str]) -> None:
    h = await signed_in(make_harness)
    r = await h.client.get("/saml/auth", headers=headers)
    assert r.status_code == 400
    assert "<code>bad_original_request</code>" in r.text
    assert "x-forwarded-user" not in r.headers


async def test_a_repeated_original_url_is_400(make_harness: Any) -> None:
    h = await signed_in(make_harness)
    headers = [
        ("X-Original-URL", APP + "/public/a"),
        ("X-Original-URL", APP + "/private/page"),
        ("X-Original-Method", "GET"),
    ]
    r = await h.client.get("/saml/auth", headers=headers)
    assert r.status_code == 400
    assert "<code>bad_original_request</code>" in r.text


async def test_auth_is_served_only_where_forward_auth_is_configured(make_harness: Any) -> None:
    """A tunnel's agent (ngrok) connects from loopback, a trusted proxy by default: were
    /saml/auth served by every gate, any internet client could ask it about any URL with
    someone's cookie and read back who they are."""
    through_tunnel = {**NGINX, "X-Forwarded-For": "203.0.113.9"}
    h: Harness = make_harness()  # forward_auth is off by default
    assert (await h.login()).status_code == 303
    r = await h.client.get("/saml/auth", headers=through_tunnel)
    assert r.status_code == 404 and "<code>not_found</code>" in r.text
    assert "x-forwarded-user" not in r.headers and "x-saml-gate-jwt" not in r.headers
    assert (await h.client.get("/saml/jwks.json")).status_code == 200  # every mode's upstreams
    on = await signed_in(make_harness)  # forward_auth=True, as `saml-gate forward-auth` sets
    r = await on.client.get("/saml/auth", headers=through_tunnel)
    assert r.status_code == 200 and r.headers["x-forwarded-user"] == "alice@example.com"


async def test_a_peer_outside_trusted_proxies_is_refused(make_harness: Any) -> None:
    h = await signed_in(make_harness, trusted_proxies=["10.1.2.3"])
    r = await h.client.get("/saml/auth", headers=NGINX)
    assert r.status_code == 403
    assert "<code>untrusted_proxy</code>" in r.text
    assert "x-saml-gate-jwt" not in r.headers


def raw_get(host_port: str, path: str, headers: list[tuple[str, str]]) -> bytes:
    """One HTTP/1.1 request over a raw socket, header lines exactly as given."""
    host, port = host_port.rsplit(":", 1)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host_port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_spoofed_headers_over_a_real_socket(make_harness: Any) -> None:
    """Through uvicorn: a client that reaches the gate directly (not a trusted proxy) cannot
    ask about any URL, even with a session; a trusted (loopback) proxy can, and a forged
    X-Forwarded-For does not make a client a proxy."""
    for trusted, expected in ((["10.1.2.3"], b" 403 "), (["127.0.0.1"], b" 200 ")):
        h = await signed_in(make_harness, trusted_proxies=trusted)
        cookie = "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))
        async with serve(h.gate) as host_port:
            spoof = [
                ("Cookie", cookie),
                ("X-Forwarded-For", "10.1.2.3"),
                ("X-Original-URL", APP + "/private/page"),
                ("X-Original-Method", "GET"),
                ("X-Forwarded-User", "mallory@example.com"),
            ]
            answer = await anyio.to_thread.run_sync(raw_get, host_port, "/saml/auth", spoof)
        status, _, rest = answer.partition(b"\r\n")
        assert expected in status, answer[:300]
        if expected == b" 200 ":
            assert b"x-forwarded-user: alice@example.com" in rest.lower()
            assert b"mallory" not in rest


async def ask_login(make_harness: Any, target: str) -> tuple[Harness, httpx.Response]:
    """A gate allowing app.example.test and *.corp.example.test, asked to return to target."""
    h: Harness = make_harness(allowed_hosts=["app.example.test", "*.corp.example.test"])
    r = await h.client.get("/saml/login", params={"return_to": target}, headers=HTML)
    return h, r


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "https://app.example.test.evil.com/",
        "https://app.example.test@evil.com/",
        "https://app.example.test\\@evil.com/",
        "https:\\\\evil.com",
        "https://evil.com\\app.example.test/",
        "https%3A%2F%2Fevil.example",
        "https://corp.example.test/",  # *.corp.example.test: its subdomains, not itself
        "https://app.example.test//evil.example",
        "https://app.example.test/%2F%2Fevil.example",
        "http://app.example.test:80@evil.com/",
        " https://app.example.test/",
        "https://app.example.test/\r\nSet-Cookie: x=1",
        "javascript://app.example.test/%0Aalert(1)",
    ],
)
async def test_login_refuses_return_to_outside_allowed_hosts(
    make_harness: Any, target: str
) -> None:
    _, r = await ask_login(make_harness, target)
    assert r.status_code == 400
    assert "bad_relay_state" in r.text
    assert "location" not in r.headers


@pytest.mark.parametrize(
    "target",
    [
        "https://app.example.test/private/page?x=1",
        "http://app.example.test:8443/",
        "https://wiki.corp.example.test/a",
        "https://a.b.corp.example.test/",
        BASE_URL + "/private/page",
    ],
)
async def test_login_returns_to_an_allowed_host_after_sign_in(
    make_harness: Any, target: str
) -> None:
    h, r = await ask_login(make_harness, target)
    assert r.status_code == 303
    request, relay = decode_redirect_request(r.headers["location"])
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=request.get("ID"))), relay)
    assert r.status_code == 303
    assert r.headers["location"] == target


@pytest.mark.parametrize(
    "port",
    ["\u00b2", "\u0663", "\uff18\uff10", "\u00b9\u00b2\u00b3"],
    ids=["superscript-two", "arabic-indic-three", "fullwidth-80", "superscript-123"],
)
async def test_a_port_in_other_digits_than_ascii_is_refused(make_harness: Any, port: str) -> None:
    """str.isdigit says yes to all of them (int reads "\u0663" as 3 and fails on "\u00b2")."""
    _, r = await ask_login(make_harness, f"https://app.example.test:{port}/")
    assert r.status_code == 400 and "bad_relay_state" in r.text


@pytest.mark.parametrize("port", ["\u00b2", "\u00b9"], ids=["superscript-two", "superscript-one"])
async def test_a_forwarded_host_with_a_latin1_digit_port_is_a_400(
    make_harness: Any, port: str
) -> None:
    """X-Forwarded-Host is read as Latin-1: the byte 0xB2 is "\u00b2", a digit to str.isdigit
    that int() refuses (it was a 500)."""
    h = await signed_in(make_harness)
    cookie = "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))
    described = [
        ("Cookie", cookie),
        ("Accept", "application/json"),
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.test:" + port),  # one byte on the wire
        ("X-Forwarded-Uri", "/private/page"),
    ]
    async with serve(h.gate) as host_port:
        answer = await anyio.to_thread.run_sync(raw_get, host_port, "/saml/auth", described)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"bad_original_request" in answer


async def test_without_allowed_hosts_other_hosts_are_refused(make_harness: Any) -> None:
    h: Harness = make_harness()
    r = await h.client.get("/saml/login", params={"return_to": APP + "/"}, headers=HTML)
    assert r.status_code == 400


async def test_cookie_domain_lets_the_session_cover_subdomains(make_harness: Any) -> None:
    h: Harness = make_harness(cookie_domain="example.test")
    session = h.gate.core.sessions
    r = await h.client.get("/private/page", headers=HTML)
    assert r.status_code == 303
    for cookie in r.headers.get_list("set-cookie"):
        assert "Domain=example.test" in cookie
    assert b"Domain=example.test" in session.clear_cookie()


def test_the_forward_auth_command_parses_its_flags(tmp_path: Any) -> None:
    from saml_gate.cli import build_parser, forward_auth
    from saml_gate.cli.options import gate_options

    args = build_parser().parse_args(
        [
            "forward-auth",
            "--allowed-host",
            "app.example.test",
            "--allowed-host",
            "*.corp.example.test,b.example.test",
            "--cookie-domain",
            "example.test",
            "--user-header",
            "X-Auth-User",
        ]
    )
    assert args.func is forward_auth.command
    options = gate_options(args)
    assert options["allowed_hosts"] == (
        "app.example.test",
        "*.corp.example.test",
        "b.example.test",
    )
    assert options["cookie_domain"] == "example.test"
    assert options["user_header"] == "X-Auth-User"


def test_the_forward_auth_command_refuses_a_bad_header_name(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", "forward-auth", "--user-header", "X User"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SAML_GATE_STATE_DIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 2
    assert "--user-header: 'X User' is not a header name" in result.stderr


async def test_jwks_is_public_and_cacheable(make_harness: Any) -> None:
    h: Harness = make_harness()
    async with anonymous(h) as client:
        r = await client.get("/saml/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["cache-control"]
    (key,) = json.loads(r.text)["keys"]
    assert key["kty"] == "EC" and key["alg"] == "ES256" and key["kid"]
    assert "d" not in key  # never the private half


async def test_the_python_verifier_accepts_the_gate_token(make_harness: Any) -> None:
    h = await signed_in(make_harness)
    r = await h.client.get("/saml/auth", headers=NGINX)
    keys = (await h.client.get("/saml/jwks.json")).json()
    verifier = IdentityVerifier(keys, issuer=BASE_URL, audience=APP, leeway=10**9)
    assert verifier.verify(r.headers["x-saml-gate-jwt"])["email"] == "alice@example.com"
    elsewhere = IdentityVerifier(keys, issuer=BASE_URL, audience=BASE_URL, leeway=10**9)
    with pytest.raises(InvalidIdentity):  # the gate's own host is another app
        elsewhere.verify(r.headers["x-saml-gate-jwt"])


async def test_a_session_due_for_refresh_comes_back_as_set_cookie(make_harness: Any) -> None:
    h = await signed_in(make_harness)
    r = await h.client.get("/saml/auth", headers=NGINX)
    assert "set-cookie" not in r.headers  # not due: nothing to pass on
    h.clock.advance(h.gate.core.sessions.refresh_after + 1)
    r = await h.client.get("/saml/auth", headers=NGINX)
    assert r.status_code == 200
    assert r.headers["set-cookie"].startswith("saml_gate_session=")


async def test_an_expired_session_is_401_and_cleared(make_harness: Any) -> None:
    h = await signed_in(make_harness, inactivity_timeout=600)
    h.clock.advance(601)
    r = await h.client.get("/saml/auth", headers=NGINX)
    assert r.status_code == 401
    assert r.headers["set-cookie"].startswith("saml_gate_session=;")


def test_the_forward_auth_command_serves_the_gate_alone(tmp_path: Any) -> None:
    """``saml-gate forward-auth`` as a subprocess: /saml/auth and /saml/jwks.json answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "SAML_GATE_BASE_URL": f"http://127.0.0.1:{port}",
        "SAML_GATE_SECRET_KEY": "s" * 40,
        "SAML_GATE_DEV_IDP": "true",
        "SAML_GATE_STATE_DIR": str(tmp_path),
        "SAML_GATE_VERIFY_ISOLATION": "thread",
    }
    command = [sys.executable, "-m", "saml_gate.cli", "forward-auth", "--port", str(port)]
    command += ["--allowed-host", "app.example.test", "--groups-header", "X-Auth-Groups"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            for _ in range(600):  # until it listens (or has exited)
                try:
                    jwks = client.get("/saml/jwks.json")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.communicate()[0]
                    anyio.run(anyio.sleep, 0.05)
            assert jwks.json()["keys"][0]["alg"] == "ES256"
            r = client.get("/saml/auth", headers=NGINX)
            assert r.status_code == 401
            assert parse_qs(urlsplit(r.json()["login_url"]).query)["return_to"] == [
                APP + "/private/page?x=1"
            ]
            r = client.get("/saml/login", params={"return_to": APP + "/"}, headers=HTML)
            assert r.status_code in (302, 303)  # to the development IdP: the host is allowed
    finally:
        process.terminate()
        process.wait(30)


async def test_identity_header_names_are_configurable(make_harness: Any) -> None:
    h = await signed_in(make_harness, user_header="X-Auth-User", email_header="")
    h2 = await signed_in(make_harness, groups_header="X-Auth-Groups")
    r = await h.client.get("/saml/auth", headers=NGINX)
    assert r.headers["x-auth-user"] == "alice@example.com"
    assert r.headers["x-forwarded-groups"] == "admins,users"
    assert "x-forwarded-user" not in r.headers and "x-forwarded-email" not in r.headers
    r = await h2.client.get("/saml/auth", headers=NGINX)
    assert r.headers["x-auth-groups"] == "admins,users" and "x-forwarded-groups" not in r.headers


@pytest.mark.parametrize(
    "client_sent",
    [
        ("X-Original-URL", APP + "/public/x"),  # Caddy-style proxy that does not strip it
        ("X-Original-Method", "OPTIONS"),
    ],
)
async def test_a_client_copy_of_the_other_style_cannot_rename_the_request(
    make_harness: Any, client_sent: tuple[str, str]
) -> None:
    """A proxy that writes X-Forwarded-* (Caddy, Traefik) but passes the client's own
    X-Original-* on: the two descriptions disagree, and the gate refuses instead of choosing
    (it used to believe X-Original-URL and served /private/page as the public /public/x)."""
    h = await signed_in(make_harness, public_paths=["/public/"], options_passthrough=True)
    async with serve(h.gate) as host_port:
        headers = [(k, v) for k, v in TRAEFIK.items()]
        headers.append(client_sent)
        if client_sent[0] == "X-Original-Method":
            headers.append(("X-Original-URL", APP + "/private/page?x=1"))
        else:
            headers.append(("X-Original-Method", "GET"))
        answer = await anyio.to_thread.run_sync(raw_get, host_port, "/saml/auth", headers)
    assert b" 400 " in answer.split(b"\r\n", 1)[0], answer[:300]
    assert b"bad_original_request" in answer
