"""Reverse-proxy mode: what the client may not pass to the upstream, and how bodies are framed.

The attacks go through a real uvicorn server running ``build_proxy_app`` and are written on raw
sockets, so header case, ``_``, repeated lines and framing reach the gate exactly as written.
The upstream is a raw socket server that records the bytes it receives (h11 only tells it where
a request ends) and answers each request with the bytes its path names, valid HTTP or not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import h11
import pytest
from anyio.abc import SocketStream
from starlette.types import Message

from saml_gate.proxy import FORWARDING_HEADERS, ReverseProxy
from tests.support import Harness
from tests.test_proxy import proxy_harnesses  # noqa: F401  (a fixture)
from tests.test_websocket_uvicorn import serve, session_cookie

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: What the upstream answers, by request path (anything else gets ``OK``).
ANSWERS: dict[str, bytes] = {
    "/garbage": b"this is not HTTP at all\r\n\r\n",
    "/bad-status": b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok",
    "/bad-header": b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
    "/folded-header": b"HTTP/1.1 200 OK\r\n X-Folded: x\r\nContent-Length: 2\r\n\r\nok",
    "/conflicting-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "/bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
    "/silent-close": b"",
    "/half-head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "/cut-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
    "/chunked-and-length": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
}


@dataclass
class RawUpstream:
    url: str
    received: list[bytes] = field(default_factory=list)
    """Every request, exactly as it arrived (one per connection: every answer closes)."""

    def last(self) -> Recorded:
        assert self.received, "the upstream received no request"
        return Recorded.parse(self.received[-1])


@dataclass
class Recorded:
    request_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Recorded:
        head, _, body = raw.partition(b"\r\n\r\n")
        first, *lines = head.split(b"\r\n")
        pairs = [line.partition(b":") for line in lines]
        return cls(first, [(n.lower(), v.strip()) for n, _, v in pairs], body)

    def values(self, name: bytes) -> list[bytes]:
        """Every value under ``name``, however spelled (case, ``_`` for ``-``)."""
        return [v for n, v in self.headers if n.replace(b"_", b"-") == name]


@asynccontextmanager
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    """A loopback server recording each request's bytes, then answering ``ANSWERS[path]``."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    upstream = RawUpstream(f"http://127.0.0.1:{port}")

    async def handle(stream: SocketStream) -> None:
        async with stream:
            parser = h11.Connection(h11.SERVER)
            raw = bytearray()
            path = ""
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    try:
                        chunk = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        chunk = b""
                    raw += chunk
                    parser.receive_data(chunk)
                elif isinstance(event, h11.Request):
                    path = event.target.decode().split("?")[0]
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            upstream.received.append(bytes(raw))
            await stream.send(ANSWERS.get(path, OK))

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        try:
            yield upstream
        finally:
            group.cancel_scope.cancel()


@asynccontextmanager
async def proxy_gate(
    make: Callable[..., Harness], **options: Any
) -> AsyncIterator[tuple[str, str, RawUpstream]]:
    """(the gate's ``host:port`` under uvicorn, a session cookie, the recording upstream)."""
    async with raw_upstream() as upstream:
        h = make(upstream.url, **options)
        await h.login()
        async with serve(h.gate, lifespan="on") as address:
            yield address, session_cookie(h), upstream


def request(
    cookie: str, *lines: str, method: str = "GET", target: str = "/app", body: bytes = b""
) -> bytes:
    head = [
        f"{method} {target} HTTP/1.1",
        "Host: 127.0.0.1:8000",
        "Accept: application/json",
        f"Cookie: {cookie}",
        "Connection: close",
        *lines,
    ]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body


async def exchange(address: str, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    host, port = address.split(":")
    answer = b""
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(data)
        with anyio.fail_after(30):  # a hang fails the test instead of blocking it
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return answer


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@contextmanager
def uvicorn_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Also capture uvicorn's own loggers (they do not propagate to the root logger).

    Enter inside ``serve``: uvicorn's logging set-up replaces the handlers when it starts."""
    logger = logging.getLogger("uvicorn")
    logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)


def assert_one_line_no_traceback(caplog: pytest.LogCaptureFixture, code: str) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Exception in ASGI application" not in record.getMessage()
    failures = [r for r in caplog.records if getattr(r, "event", None) == "proxy_error"]
    assert [getattr(r, "error_code", None) for r in failures] == [code]
    assert "\n" not in failures[0].getMessage()


# ---------------------------------------------------------------------- forwarding headers
#: What the security review sent (finding 6), plus the ones the gate always dropped.
CLIENT_FORWARDING = [
    "X-Real-IP",
    "True-Client-IP",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Forwarded-Ssl",
    "X-Forwarded-Scheme",
    "X-Url-Scheme",
    "Front-End-Https",
    "X-Client-IP",
    "CF-Connecting-IP",
    "X-Cluster-Client-IP",
    "Fastly-Client-IP",
    "X-Original-Forwarded-For",
    "X-Original-Host",
    "X-Host",
    "X-Http-Host-Override",
    "X-Forwarded-Uri",
    "X-Original-Method",
    "X-Forwarded-Method",
    "X-Envoy-Original-Path",
    "Client-IP",
    "Forwarded",
    "X-Forwarded-Client-Cert",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-For",
]


def spellings(name: str) -> list[str]:
    """The name as written, lower-case with ``_``, and in odd case with ``_``."""
    odd = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))
    return [name, name.lower().replace("-", "_"), odd.replace("-", "_")]


@pytest.mark.parametrize("name", CLIENT_FORWARDING)
async def test_forwarding_headers_from_the_client_never_reach_the_upstream(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    name: str,
) -> None:
    lines = [f"{spelling}: spoofed-{i}" for i, spelling in enumerate(spellings(name))]
    # The peer (127.0.0.1) is no trusted proxy here, so its X-Forwarded-For is not kept either.
    async with proxy_gate(proxy_harnesses, trusted_proxies=["10.0.0.0/8"]) as (addr, cookie, up):
        status, _ = status_and_body(await exchange(addr, request(cookie, *lines)))
        assert status == 200
    assert b"spoofed" not in up.received[-1]
    seen = up.last()
    assert seen.values(b"x-forwarded-for") == [b"127.0.0.1"]
    assert seen.values(b"x-forwarded-proto") == [b"http"]
    assert seen.values(b"x-forwarded-host") == [b"127.0.0.1:8000"]
    assert seen.values(b"x-forwarded-user") == [b"alice@example.com"]


def test_the_forwarding_header_list_is_lower_case_with_dashes() -> None:
    assert {n.lower().encode() for n in CLIENT_FORWARDING} <= FORWARDING_HEADERS
    assert all(n == n.lower().replace(b"_", b"-") for n in FORWARDING_HEADERS)


async def test_hop_by_hop_and_length_headers_are_dropped_in_any_spelling(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    lines = [
        "Transfer_Encoding: spoofed-te",
        "content_length: 999",
        "Proxy_Authorization: Basic spoofed",
        "Keep_Alive: spoofed",
        "Connection: close, X_Secret",
        "X-Secret: spoofed-listed",
        "X-App: kept",
    ]
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        status, _ = status_and_body(await exchange(address, request(cookie, *lines)))
        assert status == 200
    assert b"spoofed" not in upstream.received[-1]
    seen = upstream.last()
    assert seen.values(b"content-length") == [] and seen.values(b"x-app") == [b"kept"]


# ---------------------------------------------------------------------- X-Forwarded-For
async def test_x_forwarded_for_is_kept_only_from_a_trusted_proxy(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    lines = [
        "X-Forwarded-For: 203.0.113.9",
        "x-forwarded-for: 198.51.100.1, 10.0.0.2",
        "X_Forwarded_For: 192.0.2.99",  # never read as X-Forwarded-For, trusted peer or not
    ]
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):  # trusts loopback
        status, _ = status_and_body(await exchange(address, request(cookie, *lines)))
        assert status == 200
    chain = b"203.0.113.9, 198.51.100.1, 10.0.0.2, 127.0.0.1"
    assert upstream.last().values(b"x-forwarded-for") == [chain]
    assert b"192.0.2.99" not in upstream.received[-1]

    async with proxy_gate(proxy_harnesses, trusted_proxies=["10.0.0.0/8"]) as (a, c, untrusted):
        status, _ = status_and_body(await exchange(a, request(c, *lines)))
        assert status == 200
    assert untrusted.last().values(b"x-forwarded-for") == [b"127.0.0.1"]


# ---------------------------------------------------------------------- framing
@pytest.mark.parametrize(
    "lines",
    [
        ["Transfer-Encoding: chunked", "Content-Length: 4"],
        ["Content-Length: 4", "Transfer-Encoding: chunked"],
        ["Content-Length: 5", "transfer-encoding: chunked"],
    ],
)
async def test_transfer_encoding_with_content_length_is_refused(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    lines: list[str],
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        with uvicorn_logs(caplog):
            data = request(cookie, *lines, method="POST", body=b"5\r\nhello\r\n0\r\n\r\n")
            status, body = status_and_body(await exchange(address, data))
    assert status == 400 and b'"error":"bad_request"' in body
    assert upstream.received == []
    assert_one_line_no_traceback(caplog, "bad_request")


async def test_a_chunked_body_is_forwarded_chunked(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        data = request(cookie, "Transfer-Encoding: chunked", method="POST", body=body)
        status, _ = status_and_body(await exchange(address, data))
    assert status == 200
    seen = upstream.last()
    assert seen.values(b"transfer-encoding") == [b"chunked"]
    assert seen.values(b"content-length") == []
    assert b"hello" in seen.body and b" world" in seen.body


@pytest.mark.parametrize(
    "lines", [["Content-Length: 5", "Content-Length: 5"], ["Content-Length: 005"]]
)
async def test_a_declared_length_is_forwarded_once_and_normalised(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    lines: list[str],
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        data = request(cookie, *lines, method="PUT", body=b"hello")
        status, _ = status_and_body(await exchange(address, data))
    assert status == 200
    seen = upstream.last()
    assert seen.values(b"content-length") == [b"5"] and seen.body == b"hello"
    assert seen.values(b"transfer-encoding") == []


@pytest.mark.parametrize(
    "lines",
    [
        ["Content-Length: 5", "Content-Length: 6"],
        ["Content-Length: 5, 6"],
        ["Content-Length: 5x"],
        ["Content-Length: +5"],
        ["Content-Length: -1"],
        ["Content-Length: 0x5"],
        ["Host: evil.example"],  # a second Host line
    ],
)
async def test_bad_framing_never_reaches_the_upstream(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    lines: list[str],
) -> None:
    """uvicorn (h11) refuses these itself; the proxy's own check is proven below over ASGI."""
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        data = request(cookie, *lines, method="POST", body=b"hello")
        status, _ = status_and_body(await exchange(address, data))
    assert status == 400
    assert upstream.received == []


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5"), (b"content-length", b"6")],
        [(b"content-length", b"5, 6")],
        [(b"content-length", b"5x")],
        [(b"content-length", b"")],
        [(b"content-length", b"\xd9\xa5")],  # UTF-8 of a digit, but not an ASCII one
        [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [(b"host", b"evil.example")],  # a second Host
    ],
)
async def test_the_proxy_checks_framing_whatever_the_server_lets_through(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    headers: list[tuple[bytes, bytes]],
) -> None:
    async with raw_upstream() as upstream:
        proxy = proxy_harnesses(upstream.url).gate.app
        assert isinstance(proxy, ReverseProxy)
        status, body = await call(proxy, method="POST", headers=headers, body=b"hello")
    assert status == 400 and b"bad_request" in body
    assert upstream.received == []


async def test_the_proxy_forwards_the_method_string_it_was_given_or_none(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    """httpx upper-cases methods: a lower-case one is refused, not forwarded as another."""
    async with raw_upstream() as upstream:
        proxy = proxy_harnesses(upstream.url).gate.app
        assert isinstance(proxy, ReverseProxy)
        status, _ = await call(proxy, method="delete")
        assert status == 400 and upstream.received == []
        status, _ = await call(proxy, method="PROPFIND")
        assert status == 200
        assert upstream.last().request_line == b"PROPFIND /app HTTP/1.1"


async def call(
    proxy: ReverseProxy,
    *,
    method: str,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One request straight into the proxy's ASGI interface, with headers as given."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/app",
        "raw_path": b"/app",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[Message] = []
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> Message:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(30):
        await proxy(scope, receive, send)
    await proxy.aclose()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def test_header_names_with_whitespace_or_folded_lines_do_not_smuggle_headers(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        spaced = request(cookie, "X-Forwarded-User : mallory@evil.example")
        status, _ = status_and_body(await exchange(address, spaced))
        assert status == 400 and upstream.received == []  # uvicorn refuses the request
        folded = request(cookie, "X-App: a", " X-Forwarded-User: mallory@evil.example")
        status, _ = status_and_body(await exchange(address, folded))
        assert status == 200
    seen = upstream.last()
    assert seen.values(b"x-forwarded-user") == [b"alice@example.com"]
    assert all(TOKEN.fullmatch(name) for name, _ in seen.headers)


# ---------------------------------------------------------------------- upstream errors
@pytest.mark.parametrize(
    "path",
    [
        "/garbage",
        "/bad-status",
        "/bad-header",
        "/folded-header",
        "/conflicting-lengths",
        "/bad-length",
        "/silent-close",
        "/half-head",
    ],
)
async def test_an_upstream_breaking_http_is_a_502(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, upstream):
        with uvicorn_logs(caplog):
            status, body = status_and_body(await exchange(address, request(cookie, target=path)))
    assert status == 502 and b'"error":"upstream_protocol_error"' in body
    assert len(upstream.received) == 1
    assert_one_line_no_traceback(caplog, "upstream_protocol_error")


async def test_an_upstream_closing_mid_body_leaves_the_answer_visibly_incomplete(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, _):
        with uvicorn_logs(caplog):
            answer = await exchange(address, request(cookie, target="/cut-body"))
    status, body = status_and_body(answer)
    assert status == 200 and b"content-length: 100" in answer.lower()
    assert body == b"only ten b"  # shorter than declared: the client knows it was cut
    assert_one_line_no_traceback(caplog, "upstream_protocol_error")


async def test_an_upstream_content_length_beside_chunked_is_not_passed_on(
    proxy_harnesses: Callable[..., Harness],  # noqa: F811
) -> None:
    async with proxy_gate(proxy_harnesses) as (address, cookie, _):
        answer = await exchange(address, request(cookie, target="/chunked-and-length"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length" not in head.lower()
    assert b"transfer-encoding: chunked" in head.lower() and b"\r\nhello\r\n" in body
