"""Forwarding one HTTP request to the upstream with httpx, bodies streamed both ways.

* The request body is framed again: ``Content-Length`` when the client sent one valid length,
  else chunked. Both ``Transfer-Encoding`` and ``Content-Length``, lengths that disagree or are
  not digits, and a method httpx would rewrite are refused with 400 ``bad_request``.
* An unreachable upstream is a 502 ``upstream_unavailable``, one too slow a 504
  ``upstream_timeout``.
* An upstream that breaks HTTP (garbage, an invalid header, conflicting lengths, closing before
  its answer is complete) is a 502 ``upstream_protocol_error``, logged on one line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import anyio
import h11
import httpx
from starlette.types import Message, Receive, Scope, Send

from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.errors import GateError
from saml_gate.proxy.failures import answer_failure, describe_exception, log_failure
from saml_gate.proxy.headers import HeaderRules


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class HttpForwarder:
    """Forwards HTTP requests to the upstream through one connection pool."""

    def __init__(self, settings: ProxySettings, headers: HeaderRules, *, debug: bool) -> None:
        self._origin = settings.upstream
        self._headers = headers
        self._debug = debug
        read = settings.upstream_timeout or None
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=read, write=read, pool=settings.connect_timeout
        ).as_dict()
        self._transport: httpx.AsyncHTTPTransport | None = None

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        """One connection pool to the upstream. A bare transport: no cookie jar shared between
        visitors, no redirects followed, no proxy variables obeyed."""
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(
                retries=0, limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            )
        return self._transport

    async def aclose(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()

    async def _fail(self, scope: Scope, receive: Receive, send: Send, error: GateError) -> None:
        await answer_failure(scope, receive, send, error, debug=self._debug)

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one request and relay the upstream's answer, or an error page."""
        try:
            length = declared_length(scope)
        except GateError as error:
            await self._fail(scope, receive, send, error)
            return
        headers = self._headers.request_headers(scope)
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

        target = request_target(scope)
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
            broken = GateError("upstream_protocol_error", describe_exception(exc))
            await self._fail(scope, receive, send, broken)
            return
        except httpx.TransportError as exc:
            await self._fail(
                scope, receive, send, GateError("upstream_unavailable", describe_exception(exc))
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": self._headers.response_headers(response.headers.raw),
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
                    cut = "response cut short: " + describe_exception(exc)
                    log_failure(
                        scope,
                        GateError("upstream_timeout" if slow else "upstream_protocol_error", cut),
                    )
                else:
                    await send({"type": "http.response.body", "body": b""})
                group.cancel_scope.cancel()
        finally:
            await response.aclose()


def request_target(scope: Scope) -> str:
    """The path and query to ask the upstream for, as the client sent them."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    path = raw.decode("latin-1")
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def declared_length(scope: Scope) -> bytes | None:
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


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Stop streaming a response to a client that went away."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
