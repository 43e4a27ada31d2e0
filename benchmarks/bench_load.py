"""Load generators on raw asyncio sockets (HTTP/1.1 keep-alive), run in their own processes.

    python benchmarks/bench_load.py load  --port P --cookie C --connections 16 --seconds 3
    python benchmarks/bench_load.py probe --port P --cookie C
    python benchmarks/bench_load.py storm --port P --world W --kind logins|bogus --count N
    python benchmarks/bench_load.py paced --port P --cookie C --rate R --seconds S
    python benchmarks/bench_load.py signins --port P --requests FILE --session-cookie NAME

``load`` is the fallback when wrk is not installed. ``probe``, ``storm``, ``paced`` and
``signins`` print ``ready`` once set up, start on a ``go`` line on stdin (``probe`` stops on
``stop``), and print one JSON line. ``paced`` sends authenticated GETs at ``rate`` per second in
all, spread over ``connections`` connections: the storm's request rate without its sign-in work.
``signins`` sends pre-built sign-ins (each a list of raw requests; the last one's answer must set
the session cookie): the peers section.
A few dozen lines of client keep the load generator's own cost low and predictable, which an
httpx client would not on a two-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import pickle
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench_common import Login, World, fresh_responses, mint_login, response_b64

from saml_gate.session.relay import RelayTracker


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Reply:
        return await self.exchange(raw_request(method, path, headers, body))

    async def exchange(self, request: bytes) -> Reply:
        """Send one complete request; read its reply (Content-Length or chunked body)."""
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        pairs = [tuple(h.split(":", 1)) for h in header_lines if ":" in h]
        parsed = [(k.strip().lower(), v.strip()) for k, v in pairs]
        if any(k == "transfer-encoding" and "chunked" in v.lower() for k, v in parsed):
            payload = await self._chunked()
        else:
            length = int(next((v for k, v in parsed if k == "content-length"), "0"))
            payload = await self._reader.readexactly(length) if length else b""
        return Reply(int(status_line.split()[1]), parsed, payload)

    async def _chunked(self) -> bytes:
        chunks = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readuntil(b"\r\n")  # no trailers are expected
        return b"".join(chunks)

    def close(self) -> None:
        self._writer.close()


def raw_request(
    method: str, path: str, headers: dict[str, str], body: bytes = b"", host: str = "127.0.0.1:8000"
) -> bytes:
    """An HTTP/1.1 request as bytes (``host``: the Host header)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _stdin_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


# ---------------------------------------------------------------------------------- load
async def load(port: int, cookie: str, connections: int, seconds: float) -> dict[str, Any]:
    """Closed-loop GET /hello on ``connections`` connections for ``seconds``."""
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        conn = await Connection.open(port)
        headers = {"Cookie": cookie} if cookie else {}
        while time.perf_counter() < deadline:
            reply = await conn.request("GET", "/hello", headers)
            done += 1
            errors += reply.status != 200
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return {"requests": done, "errors": errors, "rps": done / elapsed}


# ---------------------------------------------------------------------------------- probe
async def probe(port: int, cookie: str, interval: float) -> dict[str, Any]:
    """Authenticated GETs one at a time, ``interval`` apart, from ``go`` until ``stop``."""
    conn = await Connection.open(port)
    headers = {"Cookie": cookie}
    reply = await conn.request("GET", "/hello", headers)
    if reply.status != 200:
        raise RuntimeError(f"the probe's cookie is not accepted: {reply.status}")
    print("ready", flush=True)
    await _stdin_line()
    stop = asyncio.ensure_future(_stdin_line())
    latencies: list[float] = []
    errors = 0
    while not stop.done():
        start = time.perf_counter()
        reply = await conn.request("GET", "/hello", headers)
        latencies.append(time.perf_counter() - start)
        errors += reply.status != 200
        await asyncio.sleep(interval)
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
        "max_ms": latencies[-1] * 1e3,
    }


# ---------------------------------------------------------------------------------- paced
async def paced(
    port: int, cookie: str, connections: int, rate: float, seconds: float
) -> dict[str, Any]:
    """Authenticated GET /hello at ``rate`` per second in all (each connection on its own
    schedule, staggered), for ``seconds``."""
    conns = [await Connection.open(port) for _ in range(connections)]
    print("ready", flush=True)
    await _stdin_line()
    done = 0
    every = connections / rate
    start = time.perf_counter()

    async def worker(index: int, conn: Connection) -> None:
        nonlocal done
        due = start + every * index / connections
        while due < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await conn.request("GET", "/hello", {"Cookie": cookie})
            done += 1
            due += every

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    for conn in conns:
        conn.close()
    return {"requests": done, "per_second": done / (time.perf_counter() - start)}


# ---------------------------------------------------------------------------------- storms
def logins(world: World, count: int) -> list[Login]:
    """``count`` ready-to-post sign-ins (pending cookie, RelayState, fresh signed Response)."""
    relay = RelayTracker(world.settings())
    pairs = fresh_responses(world, "both-signed", count, datetime.now(UTC))
    return [mint_login(world.settings(), b64, rid, relay) for rid, b64 in pairs]


def bogus(world: World, count: int) -> list[Login]:
    """What an attacker can post for free: forged signatures, garbage, oversize, no cookie."""
    forged = [
        response_b64(world, "both-signed", request_id="id-none", keys=world.attacker)
        for _ in range(8)
    ]
    junk = base64.b64encode(random.randbytes(200_000)).decode()
    variants = [*forged, junk, "not base64 at all!", forged[0][: len(forged[0]) // 2]]
    return [
        Login(cookie=b"", body=urlencode({"SAMLResponse": variants[i % len(variants)]}).encode())
        for i in range(count)
    ]


async def storm(port: int, items: list[Login], concurrency: int, kind: str) -> dict[str, Any]:
    """Post every item to the ACS, ``concurrency`` at a time; a login also starts one first."""
    queue = list(reversed(items))
    statuses: dict[int, int] = {}
    print("ready", flush=True)
    await _stdin_line()

    async def worker() -> None:
        conn = await Connection.open(port)
        while queue:
            item = queue.pop()
            if kind == "logins":  # the browser's first request: 303 to the IdP
                reply = await conn.request("GET", "/page", {"Accept": "text/html"})
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if item.cookie:
                headers["Cookie"] = item.cookie.decode()
            reply = await conn.request("POST", "/saml/acs", headers, item.body)
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "posts": len(items),
        "seconds": elapsed,
        "per_second": len(items) / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


# ---------------------------------------------------------------------------------- sign-ins
def sets_session(reply: Reply, cookie: str) -> bool:
    """Is ``reply`` a redirect setting a non-empty cookie whose name starts with ``cookie``?"""
    if not 300 <= reply.status < 400:
        return False
    for name, value in reply.headers:
        if name == "set-cookie" and value.startswith(cookie):
            pair = value.split(";", 1)[0]
            if pair.partition("=")[2]:
                return True
    return False


def _closes(reply: Reply) -> bool:
    return any(k == "connection" and v.lower() == "close" for k, v in reply.headers)


async def signins(
    port: int, items: list[list[bytes]], concurrency: int, cookie: str
) -> dict[str, Any]:
    """Complete sign-ins, ``concurrency`` at a time: each item's requests in order on one
    keep-alive connection (reopened when the server closes it); the last must set ``cookie``."""
    queue = list(reversed(items))
    statuses: dict[int, int] = {}
    ok = 0
    print("ready", flush=True)
    await _stdin_line()

    async def worker() -> None:
        nonlocal ok
        conn = await Connection.open(port)
        while queue:
            for request in queue.pop():
                reply = await conn.exchange(request)
                if _closes(reply):
                    conn.close()
                    conn = await Connection.open(port)
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
            ok += sets_session(reply, cookie)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "signins": len(items),
        "ok": ok,
        "seconds": elapsed,
        "per_second": ok / elapsed,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["load", "probe", "storm", "paced", "signins"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cookie", default="")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=0.002)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--kind", choices=["logins", "bogus"], default="logins")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--requests", type=Path, help="signins: a pickled list of request lists")
    parser.add_argument("--session-cookie", default="", help="signins: the cookie's name (prefix)")
    args = parser.parse_args()
    if args.mode == "load":
        result = asyncio.run(load(args.port, args.cookie, args.connections, args.seconds))
    elif args.mode == "probe":
        result = asyncio.run(probe(args.port, args.cookie, args.interval))
    elif args.mode == "signins":
        items = pickle.loads(args.requests.read_bytes())
        result = asyncio.run(signins(args.port, items, args.connections, args.session_cookie))
    elif args.mode == "paced":
        result = asyncio.run(
            paced(args.port, args.cookie, args.connections, args.rate, args.seconds)
        )
    else:
        world: World = pickle.loads(args.world.read_bytes())
        make = logins if args.kind == "logins" else bogus
        items = make(world, args.count)
        result = asyncio.run(storm(args.port, items, args.connections, args.kind))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
