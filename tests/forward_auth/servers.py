"""The servers around the proxies: an ASGI app on a loopback port (a thread of the test
process), the echo upstream that verifies the identity JWT, and a browser that resolves the
test's host names to loopback.

Host names matter: the gate's public host (``auth.example.test``) and each proxy's site
(``nginx.example.test``, ``caddy.example.test``) are different hosts to the browser's cookie jar,
as in production, so a sign-in covers the sites only through ``cookie_domain``.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

IDENTITY = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Saml-Gate-Jwt")
"""The gate's identity headers (default names), in the order the proxies copy them."""


def spellings(name: str) -> list[str]:
    """``name`` with each ``-`` after its first word as ``-`` or ``_``."""
    first, *rest = name.split("-")
    return [
        first + "".join(sep + part for sep, part in zip(seps, rest, strict=True))
        for seps in itertools.product("-_", repeat=len(rest))
    ]


SPOOFED = [*(s for name in IDENTITY for s in spellings(name)), "x-forwarded-user"]
"""What a client may send to pass as someone: every spelling of the identity headers."""

TEST_DOMAIN = "example.test"
"""Every ``*.example.test`` name is 127.0.0.1 to :class:`LoopbackNames`."""


@contextmanager
def serving(app: ASGIApp, port: int = 0) -> Iterator[int]:
    """Serve ``app`` with uvicorn on loopback ``port`` (default: a free one) in a thread: the
    port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", proxy_headers=False, http="h11", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    deadline = time.monotonic() + 60  # a hang guard, not a measurement
    while not started.wait(0.01):  # a server that cannot start ends its thread: fail, not hang
        if server.started:
            started.set()
        elif not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start (see the log above)")
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


# ---------------------------------------------------------------------- the echo upstream
@dataclass(frozen=True)
class Received:
    """One request (or WebSocket handshake) as the upstream received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    """Every header line, in order, names as sent (lower-case from uvicorn)."""
    identity: dict[str, Any] | None
    """The JWT's claims, verified against the gate's JWKS; None without a JWT."""
    jwt_error: str | None
    """Why a JWT that came was refused."""

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names_like(self, name: str) -> list[str]:
        """Header names equal to ``name`` when case and ``_``/``-`` are ignored."""
        want = name.lower().replace("_", "-")
        return [k for k, _ in self.headers if k.lower().replace("_", "-") == want]

    def echo(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "headers": self.headers,
            "identity": self.identity,
            "jwt_error": self.jwt_error,
        }


@dataclass
class JwtCheck:
    """What the upstream trusts: the gate's JWKS, its issuer (base_url) and the audience (None:
    its own origin, ``http://`` and the Host it was asked for, as each app behind forward-auth
    checks)."""

    jwks_url: str
    issuer: str
    audience: str | None = None
    header: str = "X-Saml-Gate-Jwt"
    _client: jwt.PyJWKClient | None = field(default=None, repr=False)

    def verify(self, token: str, host: str = "") -> dict[str, Any]:
        """The claims (raises a PyJWT error if the token is not the gate's, expired, or for
        someone else: another app than ``host``'s when no audience is set)."""
        if self._client is None:
            self._client = jwt.PyJWKClient(self.jwks_url, cache_keys=True)
        key = self._client.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=["ES256", "ES384", "RS256", "PS256", "EdDSA"],
            audience=self.audience or f"http://{host}",
            issuer=self.issuer,
            options={"require": ["iss", "aud", "sub", "iat", "exp"]},
        )
        return claims


class EchoUpstream:
    """An ASGI app answering every request with a JSON echo of what it received (headers, the
    verified JWT's claims), and every WebSocket with one such message; ``received`` keeps them."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.jwt_check: JwtCheck | None = None
        self.app = Starlette(
            routes=[
                Route("/{rest:path}", self._http, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
                WebSocketRoute("/{rest:path}", self._websocket),
            ]
        )

    def _record(self, method: str, target: str, raw: list[tuple[bytes, bytes]]) -> Received:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        identity, error = None, None
        header = self.jwt_check.header if self.jwt_check else "X-Saml-Gate-Jwt"
        tokens = [v for k, v in headers if k.lower() == header.lower()]
        if tokens:
            try:
                if self.jwt_check is None or len(tokens) != 1:
                    raise jwt.InvalidTokenError("no JWKS configured, or several tokens")
                hosts = [v for k, v in headers if k.lower() == "host"]
                identity = self.jwt_check.verify(tokens[0], hosts[0] if len(hosts) == 1 else "")
            except jwt.PyJWTError as e:
                error = f"{type(e).__name__}: {e}"
        seen = Received(method, target, headers, identity, error)
        self.received.append(seen)
        return seen

    async def _http(self, request: Request) -> JSONResponse:
        target = request.scope["raw_path"].decode("latin-1")
        if request.scope["query_string"]:
            target += "?" + request.scope["query_string"].decode("latin-1")
        seen = self._record(request.method, target, request.scope["headers"])
        return JSONResponse(seen.echo())

    async def _websocket(self, websocket: WebSocket) -> None:
        """One echo message, then closed; a path ending in ``/stay`` stays open afterwards,
        answering each text message with itself, until the client leaves."""
        path = websocket.scope["raw_path"].decode()
        seen = self._record("WEBSOCKET", path, websocket.scope["headers"])
        await websocket.accept()
        await websocket.send_json(seen.echo())
        if not path.endswith("/stay"):
            await websocket.close()
            return
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())


# ---------------------------------------------------------------------- the browser
class LoopbackNames(httpx.HTTPTransport):
    """Connects to 127.0.0.1 for every ``*.example.test`` name, as an /etc/hosts entry would;
    the request (its ``Host``, the cookie jar's view of it) keeps the name."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host.endswith("." + TEST_DOMAIN):
            request = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1"),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return super().handle_request(request)


def browser() -> httpx.Client:
    """A client that keeps cookies, as a browser does (redirects followed only when asked)."""
    return httpx.Client(transport=LoopbackNames(), timeout=30)
