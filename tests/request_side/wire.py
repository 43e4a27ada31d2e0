"""Raw HTTP/1.1 over a socket: requests exactly as written, answers parsed by hand.

A client library would normalise most of the corpus away (upper-case the method, resolve dot
segments, drop a fragment, merge duplicate headers), so every case goes out as bytes on a
fresh connection, with ``Connection: close``, and the answer is read to the end.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import unquote

TIMEOUT: Final = 15.0
"""Seconds to wait for an answer: a guard against a hang, never reached by a passing case."""
WS_KEY: Final = b"dGhlIHNhbXBsZSBub25jZQ=="


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes
    frame: bytes | None = None
    """The first WebSocket text frame after a 101 (what the app sent on accept)."""
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def served(self) -> tuple[str, str, str] | None:
        """(resource, site path, method) when the app (not the gate) served a resource."""
        if self.status == 101:  # only the app accepts a WebSocket; it reports in a frame
            report = json.loads(self.frame or b"{}")
            return (
                str(report.get("resource", "?")),
                str(report.get("path", "?")),
                str(report.get("method", "?")),
            )
        resource = self.header("x-served-resource")
        if resource is None or not 200 <= self.status < 300:
            return None
        return (
            resource,
            unquote(self.header("x-served-path") or ""),
            unquote(self.header("x-served-method") or ""),
        )

    def summary(self) -> str:
        """The head (long lines cut) and the start of the body, for failure messages."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        lines = [line if len(line) < 200 else line[:200] + "..." for line in head[:40]]
        return "\n".join(lines) + "\n\n" + (self.frame or self.body)[:400].decode("latin-1")


class NoAnswer(AssertionError):
    pass


def _recv(sock: socket.socket, what: str) -> bytes:
    """The next bytes (b"" at the end); a server that goes silent fails the case."""
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise NoAnswer(f"no {what} within {TIMEOUT:.0f} s") from None
    except ConnectionResetError:
        return b""


def _read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := _recv(sock, "complete answer"):
        data += chunk
    return bytes(data)


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def parse_answer(raw: bytes) -> Answer:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        raise NoAnswer(f"not an HTTP answer: {raw[:300]!r}")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    answer = Answer(status, headers, body, raw)
    if any(v.lower() == "chunked" for v in answer.headers_named("transfer-encoding")):
        answer.body = _dechunk(body)
    return answer


def exchange(port: int, request: bytes) -> Answer:
    """Send ``request`` on a new connection; the whole answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        raw = _read_all(sock)
    if not raw:
        raise NoAnswer("the server closed the connection without answering")
    return parse_answer(raw)


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the complete server frames in ``data`` (servers never mask)."""
    frames: list[tuple[int, bytes]] = []
    while len(data) >= 2:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        offset = 2
        if length == 126:
            if len(data) < 4:
                break
            (length,), offset = struct.unpack(">H", data[2:4]), 4
        elif length == 127:
            if len(data) < 10:
                break
            (length,), offset = struct.unpack(">Q", data[2:10]), 10
        if len(data) < offset + length:
            break
        frames.append((opcode, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


#: A client's close frame, code 1000 (client frames are masked; this mask is all zeroes).
CLOSE_FRAME: Final = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
Ending = Literal["reply", "close-first", "drop"]


def handshake(port: int, request: bytes, *, ending: Ending = "reply") -> Answer:
    """A WebSocket handshake: the HTTP answer, and after a 101 the first text frame.

    How the client ends: ``reply`` waits for the server's close frame and answers it (the
    polite way); ``close-first`` sends its own close right after the first text frame, while
    the server may be closing too; ``drop`` just goes away, as a closed browser tab does."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = bytearray()
        while b"\r\n\r\n" not in data and (chunk := _recv(sock, "handshake answer")):
            data += chunk
        if not data.startswith(b"HTTP/1.1 101"):
            data += _read_all(sock)
            return parse_answer(bytes(data))
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        frames = bytearray(rest)
        wanted = (1, 8) if ending != "reply" else (8,)
        while not any(op in wanted for op, _ in _frames(bytes(frames))) and (
            chunk := _recv(sock, "WebSocket frame")
        ):
            frames += chunk
        if ending != "drop":
            try:
                sock.sendall(CLOSE_FRAME)
                _read_all(sock)
            except (BrokenPipeError, ConnectionResetError):
                pass
    answer = parse_answer(head + b"\r\n\r\n")
    answer.body = b""
    text = [payload for op, payload in _frames(bytes(frames)) if op == 1]
    answer.frame = text[0] if text else None
    return answer


def request(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (),
    body: bytes = b"",
    *,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    """A request message, byte for byte (the caller adds Host and Connection)."""
    lines = [method + b" " + target + b" " + version]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
