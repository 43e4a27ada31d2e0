"""The harness and the shipped proxy configurations on their own, with a stand-in gate
(``stub_gate``): what nginx and Caddy tell the gate, what they make of its answers, and what
they let reach the upstream. The end-to-end tests with the real gate are in
``tests/test_forward_auth_proxies.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.exceptions import InvalidStatus

from saml_gate.testing import NAVIGATION
from tests.forward_auth import proxies
from tests.forward_auth.proxies import Addresses, RunningProxy, websocket_echo
from tests.forward_auth.servers import (
    IDENTITY,
    SPOOFED,
    EchoUpstream,
    Received,
    browser,
    serving,
    spellings,
)
from tests.forward_auth.stub_gate import LOGIN, StubGate

API = {"accept": "application/json"}


class Stack:
    def __init__(self, proxy: RunningProxy, gate: StubGate, upstream: EchoUpstream) -> None:
        self.proxy, self.gate, self.upstream = proxy, gate, upstream


@pytest.fixture(scope="module")
def stub_servers() -> Iterator[tuple[StubGate, EchoUpstream, int, int]]:
    gate, upstream = StubGate(), EchoUpstream()
    with serving(gate.app) as gate_port, serving(upstream.app) as app_port:
        yield gate, upstream, gate_port, app_port


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def stack(
    request: pytest.FixtureRequest,
    stub_servers: tuple[StubGate, EchoUpstream, int, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    gate, upstream, gate_port, app_port = stub_servers
    gate_at, app_at = f"127.0.0.1:{gate_port}", f"127.0.0.1:{app_port}"
    runtime = tmp_path_factory.mktemp(request.param)
    with proxies.proxy_for(request.param, gate_at, app_at, runtime) as proxy:
        yield Stack(proxy, gate, upstream)


def last(stack: Stack) -> Received:
    return stack.upstream.received[-1]


def test_the_rendered_configurations_keep_no_example_address(tmp_path: Path) -> None:
    to = Addresses(gate="127.0.0.1:1111", app="127.0.0.1:2222", port=3333, site="x.example.test")
    for rendered in (proxies.render_nginx(to, tmp_path), proxies.render_caddy(to)):
        lines = rendered.splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        assert "4180" not in text and "8080" not in text and "3000" not in text
        assert "acme" not in text
        assert "127.0.0.1:1111" in text and "127.0.0.1:2222" in text and "3333" in text


def test_a_page_load_goes_to_sign_in_with_the_original_url(stack: Stack) -> None:
    target = "/private/page?a=1&b=%26+c"
    with browser() as client:
        answer = client.get(stack.proxy.url + target, headers=NAVIGATION)
    original = stack.proxy.url + target
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == f"{LOGIN}?return_to={quote(original, safe='')}"
    asked = stack.gate.asked[-1]
    assert (asked.url, asked.method) == (original, "GET")


def test_an_api_client_gets_401(stack: Stack) -> None:
    before = len(stack.upstream.received)
    with browser() as client:
        answer = client.post(stack.proxy.url + "/private/api", headers=API, json={"a": 1})
    assert answer.status_code == 401
    assert answer.json()["error"] == "not_authenticated"
    assert stack.gate.asked[-1].method == "POST"
    assert len(stack.upstream.received) == before


@pytest.mark.parametrize("user", ["alice", "noemail"])
def test_identity_headers_come_from_the_gate_only(stack: Stack, user: str) -> None:
    spoofed = [(name, "mallory@evil.test") for name in SPOOFED]
    with browser() as client:
        client.cookies.set("stub_session", user)
        answer = client.get(stack.proxy.url + "/private/page", headers=spoofed)
    assert answer.status_code == 200, answer.text
    seen = last(stack)
    assert "mallory@evil.test" not in str(seen.headers)
    assert seen.values("X-Forwarded-User") == [user]
    assert seen.values("X-Forwarded-Groups") == ["admins,users"]
    assert seen.values("X-Saml-Gate-Jwt") == ["stub-token"]
    email = [f"{user}@example.test"] if user != "noemail" else []
    assert [v for v in seen.values("X-Forwarded-Email") if v] == email
    for name in IDENTITY:
        assert len(seen.names_like(name)) <= 1, seen.headers


def test_the_client_cannot_tell_the_gate_another_url(stack: Stack) -> None:
    lies = {
        "X-Original-URL": "http://nginx.example.test/public/x",
        "X-Original-Method": "OPTIONS",
        "X-Forwarded-Uri": "/public/x",
        "X-Forwarded-Method": "OPTIONS",
        "X-Forwarded-Host": "evil.test",
        "X-Forwarded-Proto": "https",
    }
    with browser() as client:
        client.get(stack.proxy.url + "/private/page", headers={**API, **lies})
    asked = stack.gate.asked[-1]
    assert (asked.url, asked.method) == (stack.proxy.url + "/private/page", "GET")
    told = {k.lower(): v for k, v in asked.headers}
    assert (
        told.get("x-forwarded-host")
        == stack.proxy.addresses.site + f":{stack.proxy.addresses.port}"
    )
    assert told.get("x-forwarded-uri") == "/private/page"


def test_not_allowed_gets_the_gates_403(stack: Stack) -> None:
    before = len(stack.upstream.received)
    with browser() as client:
        client.cookies.set("stub_session", "blocked")
        answer = client.get(stack.proxy.url + "/private/page", headers=NAVIGATION)
    assert answer.status_code == 403
    assert answer.json() == {"error": "not_allowed"}
    assert len(stack.upstream.received) == before


def test_a_websocket_is_gated(stack: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        websocket_echo(stack.proxy, "/ws")
    assert refused.value.response.status_code == 401
    echo = websocket_echo(stack.proxy, "/ws", "stub_session=alice")
    assert echo["method"] == "WEBSOCKET"
    assert ["x-forwarded-user", "alice"] in echo["headers"]


def test_the_traefik_configuration_names_the_same_headers() -> None:
    """Traefik is not packaged here, so its configuration is only read: it copies the headers
    the Caddyfile copies, and removes every other spelling of them and X-Original-*."""
    caddyfile = (proxies.EXAMPLES / "Caddyfile").read_text()
    traefik = (proxies.EXAMPLES / "traefik.yml").read_text()
    copied = re.findall(r"copy_headers (.+)", caddyfile)
    assert copied[0].split() == list(IDENTITY)
    assert copied[1] == "Cookie>X-Saml-Gate-Cookie"  # the app's cookies, as the gate answers
    listed = re.search(r"authResponseHeaders:\n((?: +(?:- [\w-]+|#.*)\n)+)", traefik)
    assert listed is not None
    assert re.findall(r"- ([\w-]+)", listed.group(1)) == [*IDENTITY, "Cookie"]
    removed = set(re.findall(r'^ +([\w-]+): ""$', traefik, re.MULTILINE))
    expected = {s for name in IDENTITY for s in spellings(name) if s != name}
    expected |= {s for name in ("X-Original-URL", "X-Original-Method") for s in spellings(name)}
    assert removed == expected
    assert 'address: "http://127.0.0.1:4180/saml/auth"' in traefik
    assert "trustForwardHeader: false" in traefik
