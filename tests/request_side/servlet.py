"""The proxy target's upstream: a raw HTTP/1.1 server that reads requests as Java stacks do.

It serves the policy's resources, but decides *which* resource and *which method* the way
Tomcat, Jetty and Spring (and Express / Rails middleware) do, so that every reading on which
they differ from a plain ASGI app is exercised through the proxy:

* the path: ``;params`` removed from each segment *before* percent-decoding (Tomcat), then
  percent-decoded (UTF-8, strict), ``\\`` read as ``/``, ``//`` collapsed, ``.``/``..``
  resolved, a ``#fragment`` dropped, an absolute-form target reduced to its path; routes match
  with a trailing ``/`` ignored (Spring's trailing-slash match, on by default before Spring 6)
  and with any suffix after a ``.`` in the last segment (Spring MVC's suffix pattern match, on
  by default before 5.3: ``/admin.tar.gz`` is ``/admin``);
* the method: upper-cased (Tomcat takes any token, frameworks upper-case it); for a POST,
  ``X-HTTP-Method-Override`` / ``X-HTTP-Method`` / ``X-Method-Override`` (header names compared
  case-insensitively with ``_`` read as ``-``, as CGI-style servers do; the last such header
  wins, its first comma-separated value) and else the first ``_method`` parameter of the query
  string or of a urlencoded form body (Spring's HiddenHttpMethodFilter), upper-cased;
* ``X-Original-URL`` / ``X-Rewrite-URL``, when present, give the path instead of the request
  target (as Symfony's Request and IIS's URL Rewrite module read them).

Each answer reports the resource, its canonical path and the effective method in the same
``X-Served-*`` headers as the other targets, and in its JSON body the identity headers and the
Cookie header it received (the proxy must strip what the client sent and add its own).
WebSocket handshakes are accepted (101) and get the same report as a text frame.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import parse_qs, parse_qsl, unquote

from tests.interop.servers import bound_socket
from tests.request_side.apps import report_body, report_headers

OVERRIDE_HEADERS: Final = frozenset(
    {"x-http-method-override", "x-http-method", "x-method-override"}
)
#: Headers whose path replaces the request's (Symfony's Request, IIS's URL Rewrite module).
REWRITE_HEADERS: Final = frozenset({"x-original-url", "x-rewrite-url"})
IDENTITY_HEADERS: Final = frozenset({"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups"})
_ABSOLUTE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_WS_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class BadRequest(Exception):
    pass


def servlet_path(target: str) -> str:
    """The canonical path a servlet container serves for ``target``."""
    match = _ABSOLUTE.match(target)
    if match:
        target = target[match.end() :] or "/"
    target = target.split("#", 1)[0].split("?", 1)[0]
    if not target.startswith("/"):
        raise BadRequest("not a path")
    raw = "/".join(segment.split(";", 1)[0] for segment in target.split("/"))
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest("invalid UTF-8") from exc
    if "\x00" in decoded:
        raise BadRequest("NUL")
    decoded = decoded.replace("\\", "/")
    parts: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise BadRequest("above the root")
            parts.pop()
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


def resource_of(path: str) -> str:
    """Route ``path`` (canonical, trailing slash already ignored), case-sensitively."""

    def under(prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    if path == "/health":
        return "health"
    for name in ("static", "admin", "api", "docs", "forms"):
        if under("/" + name):
            return name
    if re.fullmatch(r"/reports/[0-9]+", path):
        return "reports"
    return "home" if path == "/" else "page"


def suffix_match(path: str) -> tuple[str, str]:
    """(resource, the path it is mapped at): a mapping without a ``.`` also serves its path
    followed by ``.`` and anything (Spring's ``pattern + ".*"``), before the catch-all."""
    resource = resource_of(path)
    dot = path.find(".", path.rfind("/") + 1)
    if resource == "page" and dot > 0:
        stem = path[:dot].rstrip("/") or "/"
        if resource_of(stem) != "page":
            return resource_of(stem), stem
    return resource, path


def _names(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header names as CGI-style servers see them: lower-case, ``_`` read as ``-``."""
    return [(name.lower().replace("_", "-"), value) for name, value in headers]


def effective_method(
    method: str, headers: list[tuple[str, str]], query: str, form: str | None
) -> str:
    method = method.upper()
    if method != "POST":
        return method
    overrides = [value for name, value in _names(headers) if name in OVERRIDE_HEADERS]
    if overrides:
        return overrides[-1].split(",")[0].strip().upper()
    for source in (query, form or ""):
        for key, value in parse_qsl(source, keep_blank_values=True):
            if key == "_method" and value:
                return value.strip().upper()
    return method


class ServletUpstream:
    """The server, on its own event loop in a daemon thread (``start`` / ``stop``)."""

    def __init__(self) -> None:
        self.sock = bound_socket()
        self.port = int(self.sock.getsockname()[1])
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="servlet-upstream")
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServletUpstream:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the servlet upstream did not start")
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.sock.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self.sock.listen(128)
            self._server = await asyncio.start_server(self._handle, sock=self.sock, limit=1 << 20)
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    # ------------------------------------------------------------------ one connection
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._exchange(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except Exception:
            self.errors.append(traceback.format_exc())
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head[:-4].split("\r\n")
        method, target, _version = request_line.split(" ")
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        lower = {k.lower(): v for k, v in headers}
        body = await _read_body(reader, lower)
        is_form = lower.get("content-type", "").startswith("application/x-www-form-urlencoded")
        form = body.decode("latin-1") if is_form else None
        rewritten = [v for k, v in _names(headers) if k in REWRITE_HEADERS]
        try:
            path = servlet_path(rewritten[-1] if rewritten else target)
        except BadRequest as exc:
            writer.write(_answer(400, {}, str(exc).encode()))
            await writer.drain()
            return
        canonical = path.rstrip("/") or "/"
        query = target.partition("?")[2].split("#", 1)[0]
        served = effective_method(method, headers, query, form)
        resource, canonical = suffix_match(canonical)
        report = report_body(resource, canonical, served)
        seen = {
            **report,
            "identity": [[k, v] for k, v in _names(headers) if k in IDENTITY_HEADERS],
            "cookie": lower.get("cookie"),
        }
        if lower.get("upgrade", "").lower() == "websocket" and "sec-websocket-key" in lower:
            hold = "hold" in parse_qs(query, keep_blank_values=True)
            await _websocket(reader, writer, lower["sec-websocket-key"], seen, hold=hold)
            return
        payload = json.dumps(seen).encode()
        headers_out = {**report_headers(resource, canonical, served)}
        headers_out["Content-Type"] = "application/json"
        writer.write(_answer(200, headers_out, payload, head_only=method.upper() == "HEAD"))
        await writer.drain()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(body)
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def _answer(status: int, headers: dict[str, str], body: bytes, *, head_only: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


async def _websocket(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key: str,
    seen: Mapping[str, object],
    *,
    hold: bool,
) -> None:
    """Accept, send the report, then close -- or, with ``?hold``, leave the closing to the
    client (answering its close frame)."""
    accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    payload = json.dumps(seen).encode()
    assert len(payload) < 65536
    size = bytes([len(payload)]) if len(payload) < 126 else b"\x7e" + len(payload).to_bytes(2)
    close = b"\x88\x02\x03\xe8"  # code 1000
    writer.write(b"\x81" + size + payload + (b"" if hold else close))
    await writer.drain()
    with contextlib.suppress(TimeoutError):  # the client's close, or the end of the connection
        await asyncio.wait_for(reader.read(65536), 10)
    if hold:
        writer.write(close)
        await writer.drain()
