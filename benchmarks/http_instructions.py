"""Instructions the uvicorn server runs per request over HTTP, bare and gated, counted by
callgrind: the peers section's "server CPU per bare / gated request" in a measure that a loaded
machine does not move.

    python benchmarks/http_instructions.py [--stack fast|h11] [--requests 2000] [--cache]

Each variant is bench_server.py (one worker, the Starlette app bare or behind the gate's
defaults, identity JWT on) under ``valgrind --tool=callgrind``; one client in this process sends
keep-alive GETs of /hello over loopback (the session cookie to both, as http_breakdown.py's
"bare, sent the session cookie" row; minted once the server is up, so that no refresh is due:
a Set-Cookie in an answer stops the run). After a warm-up the counters are zeroed
(``callgrind_control -z``), N requests are sent, and the counters dumped (``-d``): the dump's
total divided by N is one request's instructions, server start-up and shutdown left out.
``--cache`` also simulates the caches (``--cache-sim=yes``: first-level and last-level misses
per request), the cold-cache cost a tight in-process loop never pays.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http
from bench_common import BASE_URL, World
from bench_http import session_cookie

WARM = 300
VARIANTS: dict[str, tuple[bool, dict[str, Any]]] = {
    "bare": (False, {}),
    "gated (defaults)": (True, {}),
    "gated, no identity JWT": (True, {"jwt_header": ""}),
}


@contextlib.contextmanager
def traced_server(
    world: World, gated: bool, stack: str, cache: bool, options: dict[str, Any]
) -> Iterator[tuple[int, int, Path]]:
    """(port, valgrind's pid, its output folder) of bench_server.py under callgrind."""
    folder = Path(tempfile.mkdtemp(prefix="saml-gate-bench-cg-"))
    valgrind = ["valgrind", "--tool=callgrind", f"--cache-sim={'yes' if cache else 'no'}"]
    valgrind += [f"--callgrind-out-file={folder}/callgrind.out.%p", "--dump-instr=no"]
    with bench_http.server(
        world, gated=gated, stack=stack, under=valgrind, start_timeout=300, **options
    ) as server:
        yield server.port, server.process.pid, folder


def send(port: int, cookie: str, count: int) -> None:
    """``count`` keep-alive GETs of /hello, each answered 200 before the next is sent."""
    host = BASE_URL.removeprefix("http://")
    request = f"GET /hello HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), 60) as s:
        reader = s.makefile("rb")
        for _ in range(count):
            s.sendall(request)
            status = reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"expected 200, got {status!r}")
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"set-cookie":  # a refresh on every request is not the
                    raise RuntimeError("a session refresh was due: mint the cookie later")
            reader.read(length)


def counted(pid: int, folder: Path) -> dict[str, int]:
    """Zero nothing: dump the counters since the last zeroing and read the dump's totals."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dumps = sorted(folder.glob(f"callgrind.out.{pid}.*"), key=lambda p: p.stat().st_mtime)
    text = dumps[-1].read_text(errors="replace")
    events = next(line for line in text.splitlines() if line.startswith("events:")).split()[1:]
    totals = next(line for line in text.splitlines() if line.startswith("totals:")).split()[1:]
    return dict(zip(events, map(int, totals), strict=False))


def measure(
    world: World, gated: bool, stack: str, cache: bool, n: int, options: Any
) -> dict[str, float]:
    with traced_server(world, gated, stack, cache, options) as (port, pid, folder):
        # minted now: the server's start under valgrind outlasts the session's refresh interval
        cookie = session_cookie(world)
        send(port, cookie, WARM)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        send(port, cookie, n)
        return {event: total / n for event, total in counted(pid, folder).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=["fast", "h11"], default="fast")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--cache", action="store_true", help="simulate the caches too")
    args = parser.parse_args()
    world = World.create()
    rows = {
        name: measure(world, gated, args.stack, args.cache, args.requests, options)
        for name, (gated, options) in VARIANTS.items()
    }
    bare = rows["bare"]["Ir"]
    events = list(rows["bare"])
    print(f"\nuvicorn {args.stack} stack, {args.requests} requests after {WARM}, callgrind")
    print("| variant | " + " | ".join(f"{e} per request" for e in events) + " | bare / this (Ir) |")
    print("|---|" + "---|" * (len(events) + 1))
    for name, row in rows.items():
        cells = " | ".join(f"{row[e]:,.0f}" for e in events)
        print(f"| {name} | {cells} | {bare / row['Ir']:.2f} |")


if __name__ == "__main__":
    main()
