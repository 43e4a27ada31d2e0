"""Reverse-proxy mode: the gate in front of any web app, in any language, on this machine.

``build_proxy_app("http://127.0.0.1:3000", **options)`` returns a :class:`SamlGate` around a
:class:`ReverseProxy`: requests the gate lets through are forwarded with httpx, bodies streamed
both ways (never buffered), WebSockets relayed message by message.

Header contract, towards the upstream:

* ``X-Forwarded-User`` (the NameID), ``X-Forwarded-Email`` (when known) and
  ``X-Forwarded-Groups`` (comma-separated) on every request from a signed-in person; none of
  them on public paths or passed-through OPTIONS. Values are UTF-8, percent-encoded only where
  they hold ``%``, control or non-ASCII characters (and ``,`` inside a group name). Names are
  configurable (``user_header``, ``email_header``, ``groups_header``; empty turns one off).
* Whatever the client sent under those names, or the default names, is removed first, comparing
  case-insensitively with ``_`` read as ``-`` (servers that map headers to ``HTTP_*`` variables
  would otherwise merge ``X_Forwarded_User`` into ``X-Forwarded-User``).
* Every header through which a proxy reports what it saw of the request (the client's address,
  the scheme, host, port, path or method it used, its TLS client certificate: the
  :data:`FORWARDING_HEADERS`) is removed the same way: the gate is the proxy the upstream hears
  from. It sets ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` to what the browser used, and
  ``X-Forwarded-For`` to the client's own ``X-Forwarded-For`` lines (only when the peer is one of
  ``trusted_proxies``; spelled exactly so) followed by the peer's address.
* ``Host`` is the upstream's unless ``preserve_host``.
* The request body is framed again: ``Content-Length`` when the client sent one valid length,
  else chunked. Both ``Transfer-Encoding`` and ``Content-Length``, lengths that disagree or are
  not digits, and a method httpx would rewrite are refused with 400 ``bad_request``.
* The gate's own cookies (``{cookie_prefix}_*``) are removed from ``Cookie``.
* Hop-by-hop headers (``Connection`` and what it names, ``Keep-Alive``, ``Proxy-*``, ``TE``,
  ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Expect``) are not forwarded either way
  (from the client: in any spelling, as above).
  An upstream ``Location`` on the upstream's own origin is rewritten to ``base_url``; the
  upstream's ``Date`` and ``Server`` give way to those of the server running the gate; an
  upstream ``Content-Length`` beside ``Transfer-Encoding`` is dropped (RFC 9112 §6.3).
* An upstream that breaks HTTP (garbage, an invalid header, conflicting lengths, closing before
  its answer is complete) is a 502 ``upstream_protocol_error``, logged on one line.
* WebSockets: an upstream refusing the handshake passes its 4xx/5xx status on (other answers
  are a 502, as is an unreachable upstream); close codes and reasons are relayed both ways, and
  an upstream that drops its connection is closed to the client with 1014 (Bad Gateway).
  However a relayed WebSocket ends, the proxy logs one line and no traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

import anyio
import h11
import httpx
from starlette.types import Message, Receive, Scope, Send

from saml_gate.config.settings import ENV_PREFIX, GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.middleware import SamlGate
from saml_gate.user import SamlUser
from saml_gate.web.forwarded import CLIENT_HEADERS, ClientAddresses
from saml_gate.web.pages import error_response
from saml_gate.web.ws_refusal import refuse_handshake

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("saml_gate.proxy")

DEFAULT_IDENTITY_HEADERS: Final = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups")
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
#: Headers through which a proxy tells the app what it saw of the request (lower-case, ``-``
#: only): the client's address (:data:`saml_gate.web.forwarded.CLIENT_HEADERS` and the rest below),
#: the scheme, host, port, path or method it used, the TLS client certificate it checked. The
#: gate is the proxy the upstream hears from, so whatever the client sent under these names, in
#: any case and with ``_`` for ``-``, is never forwarded; the gate sets ``X-Forwarded-For``,
#: ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` itself (see :meth:`ReverseProxy.request_headers`).
FORWARDING_HEADERS: Final = CLIENT_HEADERS | frozenset(
    {
        # the client's address
        b"client-ip",
        b"forwarded-for",
        b"x-forwarded",
        b"x-originating-ip",
        b"x-remote-addr",
        b"x-remote-ip",
        b"x-envoy-external-address",
        # the scheme
        b"x-forwarded-proto",
        b"x-forwarded-protocol",
        b"x-forwarded-scheme",
        b"x-forwarded-ssl",
        b"x-url-scheme",
        b"x-scheme",
        b"front-end-https",
        b"x-arr-ssl",
        # the host, port and server
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-server",
        b"x-original-host",
        b"x-host",
        b"x-http-host-override",
        # the path or URL
        b"x-forwarded-prefix",
        b"x-forwarded-path",
        b"x-forwarded-uri",
        b"x-original-url",
        b"x-original-uri",
        b"x-rewrite-url",
        b"x-envoy-original-path",
        b"x-script-name",
        # the method
        b"x-original-method",
        b"x-forwarded-method",
        # the TLS client certificate
        b"x-forwarded-client-cert",
        b"x-client-cert",
        b"x-ssl-client-cert",
        b"ssl-client-cert",
        b"x-ssl-client-verify",
        b"x-client-verify",
        b"x-ssl-client-dn",
        b"x-ssl-client-s-dn",
        b"x-arr-clientcert",
    }
)
#: The serving ASGI server sends its own (as nginx hides the upstream's by default).
SERVER_OWNED: Final = frozenset({b"date", b"server"})
#: Set by the WebSocket client library itself, or negotiated per hop.
WEBSOCKET_HANDSHAKE: Final = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)
_HEADER_NAME: Final = re.compile(r"[A-Za-z0-9-]+")
_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_MAX_WS_MESSAGE: Final = 16 * 1024 * 1024  # uvicorn's default for client messages


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """Options of the reverse proxy (the gate's own settings are separate)."""

    upstream: str
    """The app to protect: ``http://127.0.0.1:3000`` (scheme, host and port only)."""
    user_header: str = DEFAULT_IDENTITY_HEADERS[0]
    email_header: str = DEFAULT_IDENTITY_HEADERS[1]
    groups_header: str = DEFAULT_IDENTITY_HEADERS[2]
    preserve_host: bool = False
    """Send the browser's Host to the upstream (HTTP only) instead of the upstream's."""
    connect_timeout: float = 10.0
    upstream_timeout: float = 300.0
    """Seconds to wait for the upstream's next bytes; 0 waits forever (long polls, SSE)."""

    @classmethod
    def load(
        cls, upstream: str, environ: Mapping[str, str] | None = None, **options: Any
    ) -> ProxySettings:
        """From keywords, filling the rest from ``SAML_GATE_<NAME>`` variables; validated."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if f.name == "upstream" or raw is None or raw == "":
                continue
            try:
                values[f.name] = _parse(str(f.type), raw)
            except ValueError:
                raise ConfigError(f.name, f"{ENV_PREFIX}{f.name.upper()}={raw!r}") from None
        values.update({k: v for k, v in options.items() if v is not None})
        return cls(upstream=_check_upstream(upstream), **values)._checked()

    def _checked(self) -> ProxySettings:
        for name in ("user_header", "email_header", "groups_header"):
            value = getattr(self, name)
            if value and not _HEADER_NAME.fullmatch(value):
                raise ConfigError(name, f"{value!r} is not a header name (letters, digits, '-')")
        if not 0.1 <= self.connect_timeout <= 300:
            raise ConfigError("connect_timeout", "must be between 0.1 and 300 seconds")
        if not 0 <= self.upstream_timeout <= 86400:
            raise ConfigError("upstream_timeout", "must be between 0 (no limit) and 86400 seconds")
        return self


def _parse(kind: str, raw: str) -> Any:
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(raw)
        return lowered in ("1", "true", "yes", "on")
    if kind == "float":
        return float(raw)
    return raw


def _check_upstream(value: Any) -> str:
    parts = urlsplit(str(value).strip()) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise ConfigError(
            "upstream", f"{value!r} must be an http(s) URL such as http://127.0.0.1:3000"
        )
    return f"{parts.scheme}://{parts.netloc}"


def header_value(value: str, *, list_item: bool = False) -> bytes:
    """An identity value as a header value (see the module docstring)."""
    safe = _SAFE.replace(",", "") if list_item else _SAFE
    return quote(value, safe=safe).encode("ascii")


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class ReverseProxy:
    """An ASGI app forwarding every request to the upstream (put the gate in front of it)."""

    def __init__(self, settings: ProxySettings, gate: GateSettings) -> None:
        self.settings = settings
        self._origin = settings.upstream
        self._ws_origin = "ws" + settings.upstream[4:]
        names = {n.lower() for n in DEFAULT_IDENTITY_HEADERS}
        names |= {n.lower() for n in (settings.user_header, settings.email_header) if n}
        names |= {settings.groups_header.lower()} if settings.groups_header else set()
        self._drop = frozenset(n.encode() for n in names) | FORWARDING_HEADERS | HOP_BY_HOP
        self._user_header = settings.user_header.lower().encode()
        self._email_header = settings.email_header.lower().encode()
        self._groups_header = settings.groups_header.lower().encode()
        public = urlsplit(gate.base_url)
        self._proto = public.scheme.encode()
        self._public_host = public.netloc.encode()
        self._base_url = gate.base_url
        self._gate_cookie_prefix = gate.cookie_prefix + "_"
        self._debug = gate.debug
        self._addresses = ClientAddresses(gate.trusted_proxies)
        read = settings.upstream_timeout or None
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=read, write=read, pool=settings.connect_timeout
        ).as_dict()
        self._transport: httpx.AsyncHTTPTransport | None = None

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        """One connection pool to the upstream. A bare transport: no cookie jar shared between
        visitors, no redirects followed, no proxy variables obeyed."""
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(
                retries=0, limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            )
        return self._transport

    # ------------------------------------------------------------------ headers
    def request_headers(
        self, scope: Scope, *, websocket: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """The headers to send upstream, without ``Content-Length`` (see the module docstring).

        Names are compared in lower case with ``_`` read as ``-``: an upstream behind a
        server that maps headers to ``HTTP_*`` variables cannot tell them apart."""
        raw: Iterable[tuple[bytes, bytes]] = scope["headers"]
        listed = {
            token.strip().lower().replace(b"_", b"-")
            for name, value in raw
            if name.lower() == b"connection"
            for token in value.split(b",")
        }
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        trusted = self._addresses.trusts(peer)
        out: list[tuple[bytes, bytes]] = []
        forwarded_for: list[bytes] = []
        host = self._public_host
        for key, value in raw:
            name = key.lower()
            canonical = name.replace(b"_", b"-")
            if name == b"x-forwarded-for" and trusted:  # what trusted proxies saw before
                forwarded_for.append(value)
                continue
            if canonical in self._drop or canonical in listed or canonical == b"content-length":
                continue
            if name == b"host":
                host = value
                if websocket or not self.settings.preserve_host:
                    continue
            elif websocket and canonical in WEBSOCKET_HANDSHAKE:
                continue
            elif name == b"cookie":
                value = self._without_gate_cookies(value)
                if not value:
                    continue
            out.append((name, value))
        if peer:
            forwarded_for.append(peer.encode())
        if forwarded_for:
            out.append((b"x-forwarded-for", b", ".join(forwarded_for)))
        out.append((b"x-forwarded-proto", self._proto))
        out.append((b"x-forwarded-host", host))
        user = scope.get("user")
        if isinstance(user, SamlUser):
            if self._user_header:
                out.append((self._user_header, header_value(user.name_id)))
            if self._email_header and user.email:
                out.append((self._email_header, header_value(user.email)))
            if self._groups_header:
                groups = b",".join(header_value(g, list_item=True) for g in user.groups)
                out.append((self._groups_header, groups))
        return out

    def _without_gate_cookies(self, header: bytes) -> bytes:
        kept = [
            pair
            for pair in header.split(b";")
            if not pair.strip().decode("latin-1").startswith(self._gate_cookie_prefix)
        ]
        return b";".join(kept).strip()

    def response_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        pairs = [(k.lower(), v) for k, v in headers]
        listed = {t.strip().lower() for k, v in pairs if k == b"connection" for t in v.split(b",")}
        out: list[tuple[bytes, bytes]] = []
        origin = self._origin.encode()
        # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which must not be passed on
        # (the body is re-framed by the serving ASGI server, to a length that may differ).
        chunked = any(name == b"transfer-encoding" for name, _ in pairs)
        for name, value in pairs:
            if name in HOP_BY_HOP or name in listed or name in SERVER_OWNED:
                continue
            if chunked and name == b"content-length":
                continue
            if name == b"location" and _on_origin(value, origin):
                value = self._base_url.encode() + value[len(origin) :]
            out.append((name, value))
        return out

    @staticmethod
    def _target(scope: Scope) -> str:
        raw = scope.get("raw_path") or quote(scope["path"]).encode()
        path = raw.decode("latin-1")
        query = scope.get("query_string", b"")
        return path + ("?" + query.decode("latin-1") if query else "")

    # ------------------------------------------------------------------ HTTP
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            length = _declared_length(scope)
        except GateError as error:
            await self._fail(scope, receive, send, error)
            return
        headers = self.request_headers(scope)
        if length is not None:
            headers.append((b"content-length", length))
        # HTTP/2 servers may pass a body without either header: POST, PUT and PATCH always
        # stream (an empty body then costs one empty chunk).
        has_body = (
            length is not None
            or scope["method"] in ("POST", "PUT", "PATCH")
            or any(k.lower() == b"transfer-encoding" for k, _ in scope["headers"])
        )

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk: bytes = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        target = self._target(scope)
        try:
            if not target.startswith("/"):  # OPTIONS * (passed through), absolute-form, ...
                raise httpx.InvalidURL(target)
            request = httpx.Request(
                scope["method"],
                self._origin + target,
                headers=headers,
                content=body() if has_body else None,
                extensions={"timeout": self._timeout},
            )
        except httpx.InvalidURL:
            await self._fail(scope, receive, send, GateError("bad_request", "request target"))
            return
        if request.method != scope["method"]:  # httpx upper-cases: not the method checked
            await self._fail(
                scope,
                receive,
                send,
                GateError("bad_method", "the method is not an upper-case token"),
            )
            return
        try:
            response = await self.transport.handle_async_request(request)
        except _ClientGone:
            return
        except httpx.TimeoutException as exc:
            await self._fail(
                scope, receive, send, GateError("upstream_timeout", type(exc).__name__)
            )
            return
        # httpcore passes h11's own errors on while it sends the request body.
        except (httpx.ProtocolError, h11.ProtocolError) as exc:
            broken = GateError("upstream_protocol_error", _describe(exc))
            await self._fail(scope, receive, send, broken)
            return
        except httpx.TransportError as exc:
            await self._fail(
                scope, receive, send, GateError("upstream_unavailable", _describe(exc))
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": self.response_headers(response.headers.raw),
                }
            )
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                try:
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except (httpx.TransportError, h11.ProtocolError) as exc:
                    # Too late for a 502: the response stays incomplete, so the server closes
                    # the connection and the client sees the body was cut short.
                    slow = isinstance(exc, httpx.TimeoutException)
                    code = "upstream_timeout" if slow else "upstream_protocol_error"
                    self._log(scope, GateError(code, "response cut short: " + _describe(exc)))
                else:
                    await send({"type": "http.response.body", "body": b""})
                group.cancel_scope.cancel()
        finally:
            await response.aclose()

    @staticmethod
    def _log(scope: Scope, error: GateError) -> None:
        """One line per proxy failure, no traceback."""
        log.warning(
            "saml-gate proxy: %s %r: %s (%s)",
            scope["method"],
            scope["path"],
            error.code,
            error.detail,
            extra={"event": "proxy_error", "error_code": error.code},
        )

    async def _fail(self, scope: Scope, receive: Receive, send: Send, error: GateError) -> None:
        self._log(scope, error)
        accept = dict(scope["headers"]).get(b"accept", b"")
        wants_json = b"json" in accept and b"text/html" not in accept
        response = error_response(error, wants_json=wants_json, show_detail=self._debug)
        await response(scope, receive, send)

    # ------------------------------------------------------------------ WebSocket
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in self.request_headers(scope, websocket=True)
        ]
        path = scope["path"]
        try:
            upstream = await connect(
                self._ws_origin + self._target(scope),
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                user_agent_header=None,
                proxy=None,
                open_timeout=self.settings.connect_timeout,
                max_size=_MAX_WS_MESSAGE,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            log.info("saml-gate proxy: WebSocket %r: the upstream refused it (%d)", path, status)
            await self._deny_websocket(scope, receive, send, status if status >= 400 else 502)
            return
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning(
                "saml-gate proxy: WebSocket %r: upstream_unavailable (%s)",
                path,
                _describe(exc),
                extra={"event": "proxy_error", "error_code": "upstream_unavailable"},
            )
            await self._deny_websocket(scope, receive, send, 502)
            return
        async with upstream:
            try:
                await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            except OSError:  # the client left while the upstream answered
                log.debug("saml-gate proxy: WebSocket %r: the client left before accept", path)
                return
            level, ending = await _Relay(receive, send, upstream).run()
        log.log(level, "saml-gate proxy: WebSocket %r %s", path, ending)

    @staticmethod
    async def _deny_websocket(scope: Scope, receive: Receive, send: Send, status: int) -> None:
        body = b'{"error":"upstream_refused"}' if status < 500 else b'{"error":"bad_gateway"}'
        close_code = 1008 if status < 500 else 1011
        await refuse_handshake(
            scope, receive, send, status=status, body=body, close_code=close_code
        )


def _declared_length(scope: Scope) -> bytes | None:
    """The body length the client declared, checked: None when it declared none.

    The ASGI server has read the body with the client's framing already; the proxy frames it
    again (this length, else chunked) and never forwards the client's framing headers. A request
    with both Transfer-Encoding and Content-Length is refused rather than forwarded without the
    length (RFC 9112 §6.3 allows either): no HTTP client sends both, request smugglers do, and
    which of the two the server obeyed cannot be seen from ASGI. Lengths that are not digits or
    disagree, and more than one Host, are refused as well (RFC 9112 §3.2, §6.3).
    """
    lengths: set[bytes] = set()
    chunked = hosts = 0
    for key, value in scope["headers"]:
        name = key.lower()
        if name == b"content-length":
            lengths |= {item.strip(b" \t") for item in value.split(b",")}
        elif name == b"transfer-encoding":
            chunked += 1
        elif name == b"host":
            hosts += 1
    if hosts > 1:
        raise GateError("bad_request", "more than one Host")
    if not lengths:
        return None
    if chunked:
        raise GateError("bad_request", "both Transfer-Encoding and Content-Length")
    if len(lengths) > 1:
        raise GateError("bad_request", "Content-Length values disagree")
    (length,) = lengths
    if not (length.isdigit() and len(length) <= 18):  # bytes.isdigit: ASCII digits only
        raise GateError("bad_request", "Content-Length is not a number")
    return str(int(length)).encode()


def _describe(exc: BaseException) -> str:
    """An exception on one short line, without the raw bytes h11 quotes in some messages (an
    upstream header line may hold a cookie)."""
    text = re.split(r"bytearray\(|\bb['\"]", str(exc), maxsplit=1)[0].rstrip(" :")
    return " ".join(f"{type(exc).__name__}: {text}".split())[:200]


def _on_origin(location: bytes, origin: bytes) -> bool:
    """Whether a Location points at the upstream's own origin (not e.g. port 30001 of 3000)."""
    if not location.lower().startswith(origin):
        return False
    rest = location[len(origin) : len(origin) + 1]
    return rest in (b"", b"/", b"?", b"#")


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Stop streaming a response to a client that went away."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


class _Relay:
    """One accepted WebSocket, relayed message by message both ways until one side ends; the
    other side is then ended with the same close code (an upstream gone without a closing
    handshake as 1014, Bad Gateway).

    However it ends, nothing is raised: the client may be gone whenever the proxy sends to it
    (uvicorn raises ``ClientDisconnected``, an ``OSError``; its ``websocket.disconnect`` follows)
    and the upstream whenever the proxy sends upstream (``ConnectionClosed``). An exception from
    either direction would leave the task group as an exception group, which the ASGI server
    logs with a traceback.
    """

    def __init__(self, receive: Receive, send: Send, upstream: ClientConnection) -> None:
        self.receive = receive
        self.send = send
        self.upstream = upstream
        self.client_end: Message | None = None

    async def run(self) -> tuple[int, str]:
        """Relay until the end: a log level and what happened, for one log line."""
        told: int | None = None  # stays None when the client ended first
        async with anyio.create_task_group() as group:
            group.start_soon(self._from_client, group.cancel_scope)
            told = await self._from_upstream()
            if told is not None:
                group.cancel_scope.cancel()
            # else the client is gone and _from_client ends the relay on its disconnect
        if told is not None:  # the upstream ended first (any disconnect since is the echo)
            if told == 1014:
                return logging.INFO, "dropped by the upstream (told the client 1014)"
            return logging.DEBUG, f"closed by the upstream ({told})"
        if self.client_end is None:  # the upstream closed as the client left
            return logging.DEBUG, "closed by both sides"
        code = int(self.client_end.get("code", 1000))
        reason = str(self.client_end.get("reason") or "")
        if _sendable(code):
            await self.upstream.close(code, reason)
        else:  # 1005 (no code, or a dropped connection), 1006
            await self.upstream.close(1000)
        return logging.DEBUG, f"closed by the client ({code})"

    async def _from_client(self, relay: anyio.CancelScope) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                self.client_end = message
                relay.cancel()  # before anything more is sent to the client
                return
            if message["type"] == "websocket.receive":
                text = message.get("text")
                try:
                    await self.upstream.send(
                        text if text is not None else message.get("bytes") or b""
                    )
                except ConnectionClosed:  # _from_upstream reports the upstream's end
                    return

    async def _from_upstream(self) -> int | None:
        """The upstream's messages, then its close, to the client: the close code sent, or
        None when the client was gone."""
        from websockets.exceptions import ConnectionClosed

        upstream = self.upstream
        try:
            try:
                async for data in upstream:
                    key = "text" if isinstance(data, str) else "bytes"
                    await self.send({"type": "websocket.send", key: data})
            except ConnectionClosed:  # ended without a closing handshake
                pass
            code, reason = upstream.close_code, upstream.close_reason or ""
            if code is None or code == 1006:  # the connection dropped
                code, reason = 1014, ""
            elif not _sendable(code):  # 1005: closed without a code
                code, reason = 1000, ""
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:  # the client is gone (uvicorn's ClientDisconnected)
            return None
        return code


def _sendable(code: int) -> bool:
    """Close codes an endpoint may send (1005, 1006 and 1015 are reserved for reporting)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000


PROXY_OPTIONS: Final = frozenset(f.name for f in dataclasses.fields(ProxySettings)) - {"upstream"}


def build_proxy_app(upstream: str, **options: Any) -> SamlGate:
    """The gate in front of ``upstream``. ``options``: :class:`GateSettings` fields, ``store``
    (as for :class:`SamlGate`) and :class:`ProxySettings` fields (``user_header``,
    ``email_header``, ``groups_header``, ``preserve_host``, ``connect_timeout``,
    ``upstream_timeout``); the rest come from ``SAML_GATE_*`` variables."""
    proxy_options = {k: options.pop(k) for k in list(options) if k in PROXY_OPTIONS}
    store = options.pop("store", None)
    if isinstance(store, str):  # the store setting ("memory", "redis://..."), not an object
        options["store"], store = store, None
    settings = GateSettings.load(**options)
    proxy = ReverseProxy(ProxySettings.load(upstream, **proxy_options), settings)
    return SamlGate(proxy, settings, store=store)


__all__ = ["ProxySettings", "ReverseProxy", "build_proxy_app", "header_value"]
