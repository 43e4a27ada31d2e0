"""A TLS-terminating reverse proxy shaped like the ngrok agent, for tests on loopback.

Like the agent in front of a local app: HTTPS on a public host name at the edge, plain HTTP to
the upstream, the ``Host`` header preserved, ``X-Forwarded-Proto: https``,
``X-Forwarded-Host`` set to the public host, and the client's address appended to
``X-Forwarded-For``. The upstream connection comes from 127.0.0.1, as the agent's does, so the
app's server (uvicorn's defaults) trusts these headers. Requests are buffered (they are small);
responses stream through untouched (no redirect following, no decompression).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Final

import httpx
from starlette.types import Message, Receive, Scope, Send

from tests.interop.servers import UvicornThread, bound_socket
from tests.interop.tls import TlsFiles

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
REPLACED: Final = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port"})


class ForwardingApp:
    """The proxy itself, as an ASGI app that forwards to ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1011})
            return
        assert self._client is not None
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k not in REPLACED]
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        client_ip = (scope.get("client") or ("",))[0].encode()
        chain = [v for k, v in headers if k == b"x-forwarded-for"]
        headers = [(k, v) for k, v in headers if k != b"x-forwarded-for"]
        headers += [
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", host),
            (b"x-forwarded-for", b", ".join([*chain, client_ip])),
        ]
        query = scope.get("query_string", b"")
        target = scope.get("raw_path") or scope["path"].encode()
        url = self.upstream + target.decode("latin-1")
        if query:
            url += "?" + query.decode("latin-1")
        request = self._client.build_request(
            scope["method"], url, headers=headers, content=bytes(body)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError:
            await _plain(send, 502, b"upstream unreachable")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.lower(), v)
                        for k, v in response.headers.raw
                        if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(follow_redirects=False, timeout=30.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": text})


class NgrokLikeProxy:
    """``https://public_host`` → the proxy on a free loopback port → ``upstream``.

    Clients reach the public name through a host mapping (Chromium's --host-resolver-rules,
    :class:`tests.interop.client.HostMap`), so URLs carry no port, as ngrok's do.
    """

    def __init__(self, public_host: str, upstream: str, tls: TlsFiles) -> None:
        self.public_host = public_host
        sock = bound_socket()
        self.port = int(sock.getsockname()[1])
        self._server = UvicornThread(
            sock,
            ssl_certfile=str(tls.cert),
            ssl_keyfile=str(tls.key),
            # The edge: it sees the real client and must not believe its forwarded headers.
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
        self._app = ForwardingApp(upstream)

    @property
    def public_url(self) -> str:
        return "https://" + self.public_host

    def start(self) -> NgrokLikeProxy:
        self._server.start(self._app)
        return self

    def stop(self) -> None:
        self._server.stop()


def open_tunnel(stack: ExitStack, public_host: str, upstream: str, tls: TlsFiles) -> NgrokLikeProxy:
    """Start a proxy for ``public_host``; ``stack`` stops it."""
    proxy = NgrokLikeProxy(public_host, upstream, tls).start()
    stack.callback(proxy.stop)
    return proxy
