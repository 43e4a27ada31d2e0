"""Debian's nginx and Caddy, each running a configuration shipped in ``examples/forward_auth/``
with only its addresses replaced, on a free loopback port, stopped at the end."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "forward_auth"
INSTALL = "apt-get install nginx caddy (.ci/run does)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replace_each(text: str, replacements: Mapping[str, str], source: str) -> str:
    """``text`` with each key replaced; every key must occur, so an example that changes its
    addresses breaks the test here rather than testing something else."""
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(
                f"{source} no longer contains {old!r}: update the test's rendering"
            )
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class Addresses:
    """Where each piece listens (``host:port`` on loopback) and the site's name."""

    gate: str
    app: str
    port: int
    site: str
    """The host name the browser uses for this proxy's first app, the example's wiki
    (``nginx.example.test``)."""
    other_app: str = ""
    """Where the example's other app (grafana) listens; ``app`` when empty."""

    @property
    def url(self) -> str:
        return f"http://{self.site}:{self.port}"

    @property
    def other_site(self) -> str:
        """The example's other app, grafana (``grafana-nginx.example.test``)."""
        return "grafana-" + self.site

    @property
    def other_url(self) -> str:
        return f"http://{self.other_site}:{self.port}"


def render_nginx(to: Addresses, runtime: Path) -> str:
    """The shipped nginx.conf for these addresses; its logs, pid and temporary files in
    ``runtime`` (not /var), so the test runs next to a system nginx."""
    text = replace_each(
        (EXAMPLES / "nginx.conf").read_text(),
        {
            "127.0.0.1:4180": to.gate,
            "127.0.0.1:8080": to.app,
            "127.0.0.1:3000": to.other_app or to.app,
            "listen 80;": f"listen 127.0.0.1:{to.port};",
            "server_name grafana.acme.example wiki.acme.example;": (
                f"server_name {to.other_site} {to.site};"
            ),
            "grafana\\.acme\\.example": re.escape(to.other_site),
            "wiki\\.acme\\.example": re.escape(to.site),
            "http {\n": "http {\n" + _nginx_runtime(runtime),
        },
        "examples/forward_auth/nginx.conf",
    )
    # As root (CI), the workers would run as nobody, who cannot enter pytest's 0700 folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = f"pid {runtime}/nginx.pid;\ndaemon off;\nerror_log {runtime}/error.log notice;\n"
    return user + main + text


def _nginx_runtime(runtime: Path) -> str:
    temp = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    lines = [f"    {name}_temp_path {runtime}/{name};\n" for name in temp]
    return "".join(lines) + f"    access_log {runtime}/access.log;\n"


def render_caddy(to: Addresses) -> str:
    """The shipped Caddyfile for these addresses: plain HTTP on loopback, no admin endpoint."""
    site = replace_each(
        (EXAMPLES / "Caddyfile").read_text(),
        {
            "127.0.0.1:4180": to.gate,
            "127.0.0.1:8080": to.app,
            "127.0.0.1:3000": to.other_app or to.app,
            "grafana.acme.example, wiki.acme.example {": (
                f"http://{to.other_site}:{to.port}, http://{to.site}:{to.port} {{"
            ),
            "host grafana.acme.example": f"host {to.other_site}",
            "host wiki.acme.example": f"host {to.site}",
        },
        "examples/forward_auth/Caddyfile",
    )
    return "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n" + site


def executable(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.skip(f"{name} is not installed: {INSTALL}")
    return path


@dataclass
class RunningProxy:
    name: str
    addresses: Addresses
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return self.addresses.url

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _wait_listening(proxy: RunningProxy) -> None:
    """Until the proxy accepts connections; its log in the failure if it exits first (or
    hangs: the deadline is a guard, not a measurement)."""
    deadline = time.monotonic() + 60
    while True:
        if proxy.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{proxy.name} did not start:\n{proxy.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", proxy.addresses.port), timeout=1):
                return
        except OSError:
            with suppress(subprocess.TimeoutExpired):  # a short pause, or its exit
                proxy.process.wait(0.02)


@contextmanager
def running(
    name: str, command: list[str], to: Addresses, log: Path, env: Mapping[str, str]
) -> Iterator[RunningProxy]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(env))
    proxy = RunningProxy(name, to, process, log)
    try:
        _wait_listening(proxy)
        yield proxy
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def nginx(to: Addresses, runtime: Path) -> Iterator[RunningProxy]:
    """Debian's nginx running the shipped nginx.conf."""
    binary = executable("nginx")
    runtime.mkdir(parents=True, exist_ok=True)
    conf = runtime / "nginx.conf"
    conf.write_text(render_nginx(to, runtime))
    command = [binary, "-p", str(runtime), "-c", str(conf), "-e", str(runtime / "error.log")]
    with running("nginx", command, to, runtime / "error.log", os.environ) as proxy:
        yield proxy


@contextmanager
def caddy(to: Addresses, runtime: Path) -> Iterator[RunningProxy]:
    """Debian's Caddy running the shipped Caddyfile."""
    binary = executable("caddy")
    runtime.mkdir(parents=True, exist_ok=True)
    conf = runtime / "Caddyfile"
    conf.write_text(render_caddy(to))
    env = {
        **os.environ,
        "HOME": str(runtime),
        "XDG_DATA_HOME": str(runtime / "data"),
        "XDG_CONFIG_HOME": str(runtime / "config"),
    }
    command = [binary, "run", "--config", str(conf), "--adapter", "caddyfile"]
    with running("caddy", command, to, runtime / "caddy.log", env) as proxy:
        yield proxy


@contextmanager
def proxy_for(
    name: str, gate: str, app: str, runtime: Path, other_app: str = ""
) -> Iterator[RunningProxy]:
    """``nginx`` or ``caddy`` on a free port, as ``{name}.example.test`` in front of ``app``
    and ``grafana-{name}.example.test`` in front of ``other_app`` (default: ``app``), asking
    ``gate`` (``host:port`` each)."""
    to = Addresses(gate, app, free_port(), f"{name}.example.test", other_app)
    start = {"nginx": nginx, "caddy": caddy}[name]
    with start(to, runtime) as proxy:
        yield proxy


def websocket_echo(proxy: RunningProxy, path: str, cookie: str | None = None) -> dict[str, Any]:
    """Open a WebSocket through ``proxy`` (with ``cookie``) and read the upstream's one message;
    ``websockets.exceptions.InvalidStatus`` if the handshake is refused."""
    sock = socket.create_connection(("127.0.0.1", proxy.addresses.port))
    headers = {"Cookie": cookie} if cookie else {}
    url = proxy.url.replace("http://", "ws://") + path
    with connect(url, sock=sock, additional_headers=headers, open_timeout=10) as ws:
        message: dict[str, Any] = json.loads(ws.recv(timeout=10))
        return message
