"""Section 3: end to end over HTTP, uvicorn with and without the gate, same load generator.

Two uvicorn servers run side by side (one worker each, same small Starlette app, one behind the
gate); the load generator (wrk if installed, else bench_load.py's asyncio client) hits them in
turn with the same concurrency, rounds interleaved, best round kept for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_common import (
    Budget,
    Report,
    Row,
    World,
    acs_scope,
    call,
    header_values,
    hello_app,
    mint_login,
    new_request_id,
    response_b64,
    status_of,
)

HERE = Path(__file__).resolve().parent
SECTION = "3 HTTP"
CONNECTIONS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def server(
    world: World,
    *,
    gated: bool,
    monitor: bool = False,
    stack: str = "h11",
    under: Sequence[str] = (),
    start_timeout: float = 30,
    **gate_options: Any,
) -> Iterator[Server]:
    """A uvicorn server in its own process, stopped on exit; ``stack``: bench_server.STACKS;
    ``under``: a command that runs it (valgrind and its options)."""
    folder = Path(tempfile.mkdtemp(prefix="saml-gate-bench-srv-"))
    options = folder / "options.json"
    options.write_text(json.dumps({**world.write(folder), **gate_options}))
    port = free_port()
    args = [*under, sys.executable, str(HERE / "bench_server.py"), "--port", str(port)]
    args += ["--options", str(options)]
    args += ["--gated"] * gated + ["--monitor"] * monitor + ["--stack", stack]
    process = subprocess.Popen(args)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the benchmark server did not start (exit {process.poll()})")
            time.sleep(0.05)
        yield Server(port, process)
    finally:
        process.terminate()
        process.wait(max(10, start_timeout))


def session_cookie(world: World) -> str:
    """A session cookie for the servers (same secret), from a real sign-in in this process."""

    async def sign_in() -> str:
        gate = world.gate(hello_app)
        request_id = new_request_id()
        b64 = response_b64(world, "both-signed", request_id=request_id)
        login = mint_login(gate.settings, b64, request_id, gate.core.relay)
        sent = await call(gate, acs_scope(login), login.body)
        assert status_of(sent) == 303, sent
        name = gate.core.sessions.name.encode() + b"="
        cookies = [c for c in header_values(sent, b"set-cookie") if c.startswith(name)]
        return cookies[0].split(b";")[0].decode()

    return asyncio.run(sign_in())


def check_status(port: int, cookie: str, expected: int) -> None:
    """One request by hand: wrk cannot tell a 303 (cookie refused) from a 200."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(
            f"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nCookie: {cookie}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status = int(s.recv(100).split()[1])
    if status != expected:
        raise RuntimeError(f"GET /hello answered {status}, expected {expected}")


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk_run(
    port: int,
    seconds: float,
    *,
    path: str = "/hello",
    headers: dict[str, str] | None = None,
    connections: int = CONNECTIONS,
) -> WrkRun:
    """wrk (one thread, keep-alive) on ``path``; any 4xx/5xx answer or socket error is an error
    (a slow answer is not: 30 s before wrk's timeout)."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if done is None:
        raise RuntimeError(f"wrk's output is not understood:\n{out}")
    unit = 1e-3 if done.group(3) == "ms" else 1.0
    return WrkRun(int(done.group(1)), float(done.group(2)) * unit)


def wrk(port: int, cookie: str, seconds: int) -> float:
    return wrk_run(port, seconds, headers={"Cookie": cookie}).per_second


def asyncio_load(port: int, cookie: str, seconds: int) -> float:
    args = [sys.executable, str(HERE / "bench_load.py"), "load", "--port", str(port)]
    args += ["--cookie", cookie, "--connections", str(CONNECTIONS), "--seconds", str(seconds)]
    result = json.loads(subprocess.run(args, capture_output=True, check=True, text=True).stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed")
    return float(result["rps"])


def run(budget: Budget, report: Report, world: World) -> None:
    generator = "wrk" if shutil.which("wrk") else "asyncio client"
    measure = wrk if generator == "wrk" else asyncio_load
    seconds = 1 if budget.quick else 4
    best = {"bare": 0.0, "gated": 0.0}
    with server(world, gated=False) as bare, server(world, gated=True) as gated:
        ports = {"bare": bare.port, "gated": gated.port}
        for _ in range(budget.rounds):
            cookie = session_cookie(world)  # fresh each round: no refresh is due during it
            check_status(gated.port, cookie, 200)
            check_status(gated.port, "", 303)
            for mode, port in ports.items():
                best[mode] = max(best[mode], measure(port, cookie, seconds))
            check_status(gated.port, cookie, 200)
    setting = f"uvicorn 1 worker, {generator}, {CONNECTIONS} connections, keep-alive"
    report.add(Row(SECTION, "bare Starlette app over HTTP", f"{best['bare']:,.0f} req/s", "", None))
    report.add(Row(SECTION, "same app behind SamlGate", f"{best['gated']:,.0f} req/s"))
    ratio = best["gated"] / best["bare"]
    report.add(
        Row(SECTION, "gated / bare throughput", f"{ratio:.3f}", "≥ 0.90", ratio >= 0.9, setting)
    )
