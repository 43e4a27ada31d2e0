"""Real servers on loopback for the interop and browser tests: ports, uvicorn in a thread.

The gate (and the ngrok-like proxy in front of it) run under a real uvicorn server, so every
request crosses a real socket with real headers, exactly as in production.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0


def bound_socket(host: str = LOOPBACK) -> socket.socket:
    """A listening-ready TCP socket on a free port (kept open, so no other process can take it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def free_port(host: str = LOOPBACK) -> int:
    """A port free right now, for programs that must bind it themselves (php -S, node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: Callable[[], bool],
    what: str,
    process: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> None:
    """Poll ``ready`` until it is true; fail with the program's log if it dies or never is."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        return httpx.get(url, timeout=2.0).status_code == 200

    return check


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_logged(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    what: str,
    ready_url: str,
) -> subprocess.Popen[Any]:
    """Start ``command`` with its output in ``log``; return once ``ready_url`` answers 200
    (the process is stopped again if it never does)."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(http_ok(ready_url), what, process, log)
    except BaseException:
        stop_process(process)
        raise
    return process


class UvicornThread:
    """An ASGI app served by uvicorn in a daemon thread, on a socket bound beforehand.

    Binding first means the port (hence ``base_url``) is known before the app is built.
    uvicorn keeps its defaults otherwise: ``proxy_headers`` on, trusting forwarded headers from
    127.0.0.1 only, as a user running ``uvicorn app:app`` behind the ngrok agent would have.
    """

    def __init__(self, sock: socket.socket, **config: Any) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self._config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: ASGIApp) -> UvicornThread:
        # The stack of a default install (h11, asyncio) unless a test asks for another: the test
        # environment also has httptools and uvloop (the benchmark's fast stack), which uvicorn
        # would otherwise pick on its own, so every server would silently change parser.
        stack = {"http": "h11", "loop": "asyncio", **self._config}
        config = uvicorn.Config(app, log_level="warning", lifespan="on", **stack)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.sock]}, daemon=True, name="uvicorn"
        )
        thread.start()
        self._server, self._thread = server, thread
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self.sock.close()
