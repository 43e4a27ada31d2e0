"""Reverse-proxy mode against a real upstream server process, through a real uvicorn gate.

The upstream (a small Starlette app in its own process, written out below) reports what it
received. Streaming is proven by handshakes instead of timings: the upload's second chunk is
produced only after the upstream has reported the first, and the download's second chunk is
released only after the client has read the first. A proxy that buffered would deadlock (the
``fail_after`` guards turn that into a failure).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.proxy import ProxySettings, ReverseProxy, build_proxy_app, header_value
from tests.support import BASE_URL, SECRET, FrozenClock, Harness, gate_options, idp_metadata
from tests.test_websocket_uvicorn import (
    serve,
    session_cookie,
)

pytestmark = pytest.mark.anyio

from websockets.asyncio.client import connect  # noqa: E402  (test_websocket_uvicorn skips first)
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

UPSTREAM_APP = r'''
"""The upstream of the proxy tests: reports what it receives."""
import asyncio, hashlib, socket, sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute

state = {"received": 0}
release = asyncio.Event()


def seen(scope):
    query = scope["query_string"].decode()
    return {
        "target": scope["raw_path"].decode() + ("?" + query if query else ""),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
    }


async def echo(request):
    body = await request.body()
    extra = {"Connection": "X-Upstream-Hop", "X-Upstream-Hop": "1", "X-Upstream-Kept": "1"}
    return JSONResponse(
        {"method": request.method, "body": body.decode("latin-1"), **seen(request.scope)},
        headers={**extra, "Keep-Alive": "timeout=5"},
    )


async def upload(request):
    state["received"] = 0
    digest = hashlib.sha256()
    async for chunk in request.stream():
        digest.update(chunk)
        state["received"] += len(chunk)
    return JSONResponse({
        "bytes": state["received"],
        "sha256": digest.hexdigest(),
        "content_length": request.headers.get("content-length"),
        "transfer_encoding": request.headers.get("transfer-encoding"),
    })


async def progress(request):
    return JSONResponse({"received": state["received"]})


async def stream(request):
    release.clear()

    async def chunks():
        yield b"first chunk\n"
        await release.wait()
        yield b"second chunk\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def do_release(request):
    release.set()
    return PlainTextResponse("released")


async def big(request):
    size = int(request.query_params["bytes"])

    async def chunks():
        block = bytes(range(256)) * 4096
        sent = 0
        while sent < size:
            part = block[: size - sent]
            sent += len(part)
            yield part

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def redirect(request):
    return RedirectResponse(f"http://127.0.0.1:{PORT}/echo/landed?a=1", status_code=302)


async def cookies(request):
    response = JSONResponse({"cookie": request.headers.get("cookie")})
    response.set_cookie("app_a", "1")
    response.set_cookie("app_b", "2")
    return response


async def slow(request):
    await asyncio.Event().wait()


async def ws(websocket):
    protocols = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=protocols[0] if protocols else None)
    await websocket.send_json(seen(websocket.scope))
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await websocket.close(4001, "bye to you")
            return
        if message.get("text") is not None:
            await websocket.send_text("echo:" + message["text"])
        else:
            await websocket.send_bytes(message["bytes"][::-1])


async def ws_refuse(websocket):
    await websocket.close(1008)


app = Starlette(routes=[
    Route("/echo/{rest:path}", echo, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    Route("/upload", upload, methods=["POST"]),
    Route("/progress", progress),
    Route("/stream", stream),
    Route("/release", do_release, methods=["POST"]),
    Route("/big", big),
    Route("/redirect", redirect),
    Route("/cookies", cookies),
    Route("/slow", slow),
    WebSocketRoute("/ws", ws),
    WebSocketRoute("/ws-refuse", ws_refuse),
])

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
PORT = sock.getsockname()[1]
print(PORT, flush=True)
config = uvicorn.Config(
    app, log_level="warning", ws="websockets-sansio", timeout_graceful_shutdown=1
)
uvicorn.Server(config).run([sock])
'''

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = tmp_path_factory.mktemp("upstream") / "upstream_app.py"
    script.write_text(UPSTREAM_APP)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), "the upstream server did not start"
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(trust_env=False) as client:
            for _ in range(300):
                try:
                    client.get(url + "/progress")
                    break
                except httpx.TransportError:
                    anyio.run(anyio.sleep, 0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
async def proxy_harnesses(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Callable[..., Harness]]:
    """A factory of harnesses whose gate is ``build_proxy_app(upstream_url, ...)``."""
    harnesses: list[Harness] = []

    def factory(upstream_url: str, **options: Any) -> Harness:
        gate = build_proxy_app(
            upstream_url, **gate_options(idp_keys, sp_keys, clock, str(tmp_path), **options)
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        h = Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)
        harnesses.append(h)
        return h

    yield factory
    for h in harnesses:
        await h.client.aclose()
        assert isinstance(h.gate.app, ReverseProxy)
        await h.gate.app.aclose()


@pytest.fixture
def make_proxy(upstream: str, proxy_harnesses: Callable[..., Harness]) -> Callable[..., Harness]:
    """``proxy_harnesses`` in front of the reporting upstream unless told otherwise."""

    def factory(upstream_url: str = upstream, **options: Any) -> Harness:
        return proxy_harnesses(upstream_url, **options)

    return factory


@asynccontextmanager
async def browser(h: Harness, *, signed_in: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client talking to the proxy gate served by uvicorn."""
    async with serve(h.gate, lifespan="on") as address:
        headers = {"cookie": session_cookie(h)} if signed_in else {}
        async with httpx.AsyncClient(
            base_url=f"http://{address}", headers=headers, trust_env=False, timeout=60
        ) as client:
            yield client


def seen_headers(body: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        out.setdefault(name, []).append(value)
    return out


SPOOFED = [
    ("X-Forwarded-User", "mallory@evil.example"),
    ("X_Forwarded_User", "mallory@evil.example"),
    ("x-forwarded-groups", "admins"),
    ("X-Forwarded-Email", "mallory@evil.example"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("Forwarded", "for=1.2.3.4;host=evil.example"),
]


# ---------------------------------------------------------------------- headers
async def test_identity_headers_replace_anything_the_client_sent(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    async with browser(h) as client:
        cookie = session_cookie(h) + "; app_pref=dark"
        extra = [("X-Forwarded-For", "10.0.0.1"), ("Connection", "X-Secret"), ("X-Secret", "s")]
        r = await client.get(
            "/echo/a%20b/c?x=1&y=%20",
            headers=[*SPOOFED, *extra, ("X-App", "kept"), ("Cookie", cookie), *JSON.items()],
        )
        assert r.status_code == 200, r.text
        body = r.json()
        seen = seen_headers(body)
        address = str(client.base_url.netloc.decode())
    assert body["target"] == "/echo/a%20b/c?x=1&y=%20"
    assert seen["x-forwarded-user"] == ["alice@example.com"]
    assert seen["x-forwarded-email"] == ["alice@example.com"]
    assert seen["x-forwarded-groups"] == ["admins,users"]
    assert "x_forwarded_user" not in seen and "forwarded" not in seen
    assert seen["x-forwarded-host"] == [address]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-for"] == ["10.0.0.1, 127.0.0.1"]
    upstream_netloc = httpx.URL(h.gate.app.settings.upstream).netloc.decode()  # type: ignore[attr-defined]
    assert seen["host"] == [upstream_netloc]
    assert seen["cookie"] == ["app_pref=dark"]  # the gate's own cookies stay with the gate
    assert seen["x-app"] == ["kept"]
    assert "x-secret" not in seen and "connection" not in seen
    assert r.headers["x-upstream-kept"] == "1"
    assert "x-upstream-hop" not in r.headers and "keep-alive" not in r.headers
    assert len(r.headers.get_list("date")) == len(r.headers.get_list("server")) == 1


async def test_identity_values_are_encoded_where_needed(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    groups = ["Finance, EMEA", "Ünïcode", "50%", "plain group"]
    await h.login(attributes={"email": ["alice@example.com"], "groups": groups})
    async with browser(h) as client:
        seen = seen_headers((await client.get("/echo/x", headers=JSON)).json())
    assert seen["x-forwarded-groups"] == ["Finance%2C EMEA,%C3%9Cn%C3%AFcode,50%25,plain group"]
    assert header_value("bob@example.com") == b"bob@example.com"


async def test_public_paths_carry_no_identity(make_proxy: Any) -> None:
    h: Harness = make_proxy(public_paths=["/echo/public/"])
    async with browser(h, signed_in=False) as client:
        r = await client.get("/echo/public/x", headers=[*SPOOFED, *JSON.items()])
        assert r.status_code == 200
        seen = seen_headers(r.json())
    assert not {"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups"} & set(seen)


async def test_header_names_are_configurable_and_defaults_still_stripped(make_proxy: Any) -> None:
    h: Harness = make_proxy(user_header="X-Auth-Request-User", groups_header="")
    await h.login()
    async with browser(h) as client:
        r = await client.get("/echo/x", headers=[*SPOOFED, *JSON.items()])
        seen = seen_headers(r.json())
    assert seen["x-auth-request-user"] == ["alice@example.com"]
    assert "x-forwarded-user" not in seen and "x-forwarded-groups" not in seen
    assert seen["x-forwarded-email"] == ["alice@example.com"]


# ---------------------------------------------------------------------- access
async def test_the_gate_answers_before_the_upstream(make_proxy: Any) -> None:
    h: Harness = make_proxy(access_rules=["/echo/admin/ groups=finance"])
    async with browser(h, signed_in=False) as client:
        api = await client.get("/echo/x", headers=JSON)
        assert api.status_code == 401 and api.json()["error"] == "not_authenticated"
        # as the browser addresses base_url (the test server's own port is another one)
        page = await client.get("/echo/x", headers={**HTML, "host": "127.0.0.1:8000"})
        assert page.status_code == 303
    await h.login()
    async with browser(h) as client:
        assert (await client.get("/echo/admin/x", headers=JSON)).status_code == 403
        assert (await client.get("/echo/x", headers=JSON)).status_code == 200


async def test_methods_and_bodies(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    async with browser(h) as client:
        put = await client.put("/echo/doc", content=b'{"a": 1}', headers=JSON)
        assert put.json()["method"] == "PUT" and put.json()["body"] == '{"a": 1}'
        delete = await client.delete("/echo/doc", headers=JSON)
        assert delete.json()["method"] == "DELETE"
        head = await client.head("/echo/doc", headers=JSON)
        assert head.status_code == 200 and head.content == b""


async def test_a_form_posted_to_a_public_path_through_the_real_proxy(make_proxy: Any) -> None:
    """Over real sockets: a SAMLResponse posted to a public path gets the wrong_acs_url page;
    other form posts (large, streamed) reach the upstream byte for byte, framed as they came."""
    h: Harness = make_proxy(access_rules=["/upload public", "/echo/public/ public"])
    form = {"content-type": "application/x-www-form-urlencoded", **HTML}
    large = b"upload=" + bytes(range(97, 123)) * (2 * MIB // 26)

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(large), 100_000):
            yield large[start : start + 100_000]

    async with browser(h, signed_in=False) as client:
        saml = {"SAMLResponse": h.response_b64(h.spec()), "RelayState": "/"}
        r = await client.post("/echo/public/x", data=saml, headers=HTML)
        assert r.status_code == 400 and "<code>wrong_acs_url</code>" in r.text
        for content, framing in ((large, None), (streamed(), "chunked")):
            up = (await client.post("/upload", content=content, headers=form)).json()
            assert up["bytes"] == len(large) and up["transfer_encoding"] == framing
            assert up["sha256"] == hashlib.sha256(large).hexdigest()


# ---------------------------------------------------------------------- streaming
async def test_request_body_is_streamed_not_buffered(make_proxy: Any, upstream: str) -> None:
    h: Harness = make_proxy()
    await h.login()
    chunk = 64 * 1024
    async with (
        browser(h) as client,
        httpx.AsyncClient(base_url=upstream, trust_env=False) as direct,
    ):

        async def body() -> AsyncIterator[bytes]:
            yield b"a" * chunk
            with anyio.fail_after(30):  # the upstream must see chunk 1 before chunk 2 exists
                while (await direct.get("/progress")).json()["received"] < chunk:
                    await anyio.sleep(0.02)
            yield b"b" * chunk

        r = await client.post("/upload", content=body(), headers=JSON)
    result = r.json()
    assert result["bytes"] == 2 * chunk
    assert result["transfer_encoding"] == "chunked"
    assert result["sha256"] == hashlib.sha256(b"a" * chunk + b"b" * chunk).hexdigest()


async def test_response_body_is_streamed_not_buffered(make_proxy: Any, upstream: str) -> None:
    h: Harness = make_proxy()
    await h.login()
    async with (
        browser(h) as client,
        httpx.AsyncClient(base_url=upstream, trust_env=False) as direct,
        client.stream("GET", "/stream") as r,
    ):
        assert r.status_code == 200
        chunks = r.aiter_raw()
        received = b""
        with anyio.fail_after(30):  # chunk 2 is only produced after chunk 1 arrived here
            while b"first chunk\n" not in received:
                received += await chunks.__anext__()
        assert b"second" not in received
        await direct.post("/release")
        async for part in chunks:
            received += part
    assert received == b"first chunk\nsecond chunk\n"


async def test_large_bodies_both_ways(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    upload = bytes(range(256)) * (32 * MIB // 256)
    async with browser(h) as client:
        up = (await client.post("/upload", content=upload, headers=JSON)).json()
        assert up["bytes"] == len(upload) and up["content_length"] == str(len(upload))
        assert up["sha256"] == hashlib.sha256(upload).hexdigest()
        assert up["transfer_encoding"] is None
        digest = hashlib.sha256()
        size = 0
        async with client.stream("GET", f"/big?bytes={32 * MIB}") as r:
            async for part in r.aiter_raw():
                digest.update(part)
                size += len(part)
    expected = (bytes(range(256)) * 4096) * 32
    assert size == 32 * MIB and digest.hexdigest() == hashlib.sha256(expected).hexdigest()


# ---------------------------------------------------------------------- responses
async def test_redirects_are_rewritten_and_cookies_are_not_shared(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    async with browser(h) as client:
        r = await client.get("/redirect", headers=HTML)
        assert r.status_code == 302
        assert r.headers["location"] == BASE_URL + "/echo/landed?a=1"
        set_cookies = (await client.get("/cookies")).headers.get_list("set-cookie")
        assert [c.split(";")[0] for c in set_cookies] == ["app_a=1", "app_b=2"]
    async with browser(h) as other:  # another visitor: the proxy kept no cookie jar
        assert (await other.get("/cookies")).json()["cookie"] is None


async def test_upstream_down_is_a_502(make_proxy: Any) -> None:
    h: Harness = make_proxy("http://127.0.0.1:9")
    await h.login()
    api = await h.client.get("/echo/x", headers=JSON)
    assert api.status_code == 502 and api.json()["error"] == "upstream_unavailable"
    page = await h.client.get("/echo/x", headers=HTML)
    assert page.status_code == 502 and "upstream_unavailable" in page.text


async def test_upstream_too_slow_is_a_504(make_proxy: Any) -> None:
    h: Harness = make_proxy(upstream_timeout=0.5)
    await h.login()
    r = await h.client.get("/slow", headers=JSON)
    assert r.status_code == 504 and r.json()["error"] == "upstream_timeout"


async def test_an_absolute_form_target_is_refused_not_forwarded(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    cookie = b"Cookie: " + session_cookie(h).encode() + b"\r\n"
    async with serve(h.gate, lifespan="on") as address:
        answers = []
        # the gate's own Host: the target is refused; a Host it does not serve: that first
        for host, extra in ((address.encode(), cookie), (b"evil.example", b"")):
            at, port = address.split(":")
            stream = await anyio.connect_tcp(at, int(port))
            async with stream:
                await stream.send(
                    b"GET http://evil.example/echo/x HTTP/1.1\r\nHost: " + host + b"\r\n"
                    b"Accept: application/json\r\n" + extra + b"Connection: close\r\n\r\n"
                )
                answer = b""
                with anyio.fail_after(30):
                    while not answer.endswith(b"}"):
                        answer += await stream.receive()
            answers.append(answer)
    assert answers[0].startswith(b"HTTP/1.1 400 ") and b'"error":"bad_path"' in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 421 ") and b'"error":"unknown_host"' in answers[1]


def test_location_rewrite_stays_on_the_upstream_origin(idp_keys: Any) -> None:
    gate = GateSettings.load(
        environ={}, base_url=BASE_URL, secret_key=SECRET, idp_metadata=idp_metadata(idp_keys)
    )
    proxy = ReverseProxy(ProxySettings.load({}, upstream="http://127.0.0.1:3000"), gate)
    for location, expected in [
        (b"http://127.0.0.1:3000/x?y=1", BASE_URL.encode() + b"/x?y=1"),
        (b"http://127.0.0.1:3000", BASE_URL.encode()),
        (b"http://127.0.0.1:30001/x", b"http://127.0.0.1:30001/x"),
        (b"https://elsewhere.example/", b"https://elsewhere.example/"),
        (b"/relative", b"/relative"),
    ]:
        assert proxy.response_headers([(b"Location", location)]) == [(b"location", expected)]


# ---------------------------------------------------------------------- WebSockets
async def test_websocket_is_proxied_with_identity(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    await h.login()
    async with serve(h.gate, lifespan="on") as address:
        headers = [("Cookie", session_cookie(h)), *SPOOFED[:2]]
        async with connect(
            f"ws://{address}/ws?room=1", additional_headers=headers, subprotocols=["chat.v1"]
        ) as ws:
            assert ws.subprotocol == "chat.v1"
            first = json.loads(await ws.recv())
            seen = seen_headers(first)
            assert first["target"] == "/ws?room=1"
            assert seen["x-forwarded-user"] == ["alice@example.com"]
            assert "x_forwarded_user" not in seen and "cookie" not in seen
            await ws.send("hi")
            assert await ws.recv() == "echo:hi"
            await ws.send(b"\x01\x02\x03")
            assert await ws.recv() == b"\x03\x02\x01"
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 4001 and ws.close_reason == "bye to you"


async def test_websocket_refusals(make_proxy: Any) -> None:
    h: Harness = make_proxy()
    async with serve(h.gate, lifespan="on") as address:
        with pytest.raises(InvalidStatus) as anonymous:
            async with connect(f"ws://{address}/ws"):
                pass
        assert anonymous.value.response.status_code == 401
        await h.login()
        headers = [("Cookie", session_cookie(h))]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{address}/ws-refuse", additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403


# ---------------------------------------------------------------------- configuration
def test_configuration_errors_name_the_option(idp_keys: Any, tmp_path: Path) -> None:
    gate = GateSettings.load(
        environ={}, base_url=BASE_URL, secret_key=SECRET, idp_metadata=idp_metadata(idp_keys)
    )
    for upstream in ("ftp://127.0.0.1", "http://127.0.0.1:3000/app", "127.0.0.1:3000"):
        with pytest.raises(ConfigError) as info:
            ProxySettings.load({}, upstream=upstream)
        assert info.value.setting == "upstream"
    with pytest.raises(ConfigError) as info:
        ProxySettings.load({})
    assert info.value.setting == "upstream" and "SAML_GATE_UPSTREAM" in str(info.value)
    with pytest.raises(ConfigError) as info:
        GateSettings.load({}, **{**gate_basics(idp_keys), "user_header": "X Bad"})
    assert info.value.setting == "user_header"
    env = {"SAML_GATE_UPSTREAM_TIMEOUT": "soon"}
    with pytest.raises(ConfigError) as info:
        ProxySettings.load(env, upstream="http://127.0.0.1:3000")
    assert info.value.setting == "upstream_timeout"
    env = {"SAML_GATE_UPSTREAM": "http://127.0.0.1:3000/", "SAML_GATE_PRESERVE_HOST": "true"}
    loaded = ProxySettings.load(env)
    assert loaded.preserve_host and loaded.upstream == "http://127.0.0.1:3000"
    assert ReverseProxy(loaded, gate).settings is loaded
    renamed = GateSettings.load({"SAML_GATE_GROUPS_HEADER": "X-Groups"}, **gate_basics(idp_keys))
    assert renamed.groups_header == "X-Groups"


def gate_basics(idp_keys: Any) -> dict[str, Any]:
    return {"base_url": BASE_URL, "secret_key": SECRET, "idp_metadata": idp_metadata(idp_keys)}


def test_build_proxy_app_reads_the_upstream_from_the_environment(
    idp_keys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAML_GATE_UPSTREAM", "http://127.0.0.1:3000")
    gate = build_proxy_app(**gate_basics(idp_keys), state_dir=str(tmp_path), upstream_timeout=5)
    assert isinstance(gate.app, ReverseProxy)
    assert gate.app.settings.upstream == "http://127.0.0.1:3000"
    assert gate.app.settings.upstream_timeout == 5
