"""Section 8: continuous authorization. How long an Okta Universal Logout takes to reach every
worker.

K gate processes (uvicorn, one worker each, as many hosts or workers behind a load balancer:
the same base URL, secret and keys) share one Redis. Each round signs a person in, checks that
every worker lets the session in, then sends one signed Universal Logout request (the test
kit's, shaped as Okta's) to one worker while a poller per worker sends the session's API call
back to back over a kept-alive connection. The figure is the time from sending the request to
the last worker's first 401, worst of N rounds (the target: within 1 s, issue 26); the request's
own answer (204) is reported beside it. The poll's granularity is one loopback round trip and
a 2 ms pause.
Needs Redis at 127.0.0.1:6379 (SAML_GATE_BENCH_REDIS); without it the row says so.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_common import Budget, Report, Row, World
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from saml_gate import SamlGate
from saml_gate.testing import SamlTestIdp

SECTION = "8 continuous authorization"
REDIS_URL = os.environ.get("SAML_GATE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PUBLIC_URL = "http://app.bench"
HERE = Path(__file__).resolve().parent
JSON = {"accept": "application/json"}
#: Between one worker's polls: back-to-back polls from every worker's poller would load the two
#: cores the workers share and slow down what is measured.
POLL_PAUSE = 0.002


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.name_id})


def create_app() -> ASGIApp:
    """uvicorn's ``--factory`` in each worker: the gate, configured by SAML_GATE_* variables."""
    return SamlGate(Starlette(routes=[Route("/private/{rest:path}", ok)]))


class Routed(httpx.AsyncBaseTransport):
    """Every request to one worker's port, the URL and Host left as the public URL's."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        routed = httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1", port=self._port),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(routed)

    async def aclose(self) -> None:
        await self._inner.aclose()


def worker_env(idp: SamlTestIdp, folder: str, prefix: str) -> dict[str, str]:
    options = idp.gate_options(base_url=PUBLIC_URL)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "SAML_GATE_BASE_URL": PUBLIC_URL,
        "SAML_GATE_IDP_METADATA": str(options["idp_metadata"]),
        "SAML_GATE_SECRET_KEY": str(options["secret_key"]),
        "SAML_GATE_SP_KEY": str(options["sp_key"]),
        "SAML_GATE_SP_CERT": str(options["sp_cert"]),
        "SAML_GATE_STATE_DIR": folder,
        "SAML_GATE_VERIFY_ISOLATION": "thread",
        "SAML_GATE_UNIVERSAL_LOGOUT_ISSUER": str(options["universal_logout_issuer"]),
        "SAML_GATE_UNIVERSAL_LOGOUT_KEYS": str(options["universal_logout_keys"]),
        "SAML_GATE_STORE": REDIS_URL,
        "SAML_GATE_STORE_PREFIX": prefix,
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_workers(count: int, env: dict[str, str], folder: str) -> list[tuple[int, Any]]:
    started: list[tuple[int, Any]] = []
    for number in range(count):
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "bench_universal_logout:create_app"]
        command += ["--factory", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--log-level", "warning"]
        log = open(Path(folder) / f"worker{number}.log", "wb")  # noqa: SIM115 (kept open)
        process = subprocess.Popen(command, cwd=HERE, env=env, stdout=log, stderr=log)
        started.append((port, process))
    for port, process in started:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a worker did not start: see {folder}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/saml/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    return started


async def one_round(
    idp: SamlTestIdp, clients: list[httpx.AsyncClient], logout_port: int, email: str
) -> tuple[float, float]:
    """(seconds from the request to the last worker refusing, seconds to the 204)."""
    signing_in = clients[0]
    await idp.sign_in_async(signing_in, email=email, path="/private/x")
    cookie = signing_in.cookies["saml_gate_session"]
    signing_in.cookies.clear()
    for client in clients:
        client.cookies.set("saml_gate_session", cookie)
        assert (await client.get("/private/x", headers=JSON)).status_code == 200
    refused: list[float | None] = [None] * len(clients)
    started = time.perf_counter()

    async def poll(index: int) -> None:
        client = clients[index]
        while (await client.get("/private/x", headers=JSON)).status_code != 401:
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"worker {index} never refused the session")
            await asyncio.sleep(POLL_PAUSE)
        refused[index] = time.perf_counter() - started

    async def logout() -> float:
        async with httpx.AsyncClient(base_url=PUBLIC_URL, transport=Routed(logout_port)) as okta:
            answer = await idp.universal_logout_async(okta, email=email)
        assert answer.status_code == 204, answer.text
        return time.perf_counter() - started

    pollers = [asyncio.create_task(poll(i)) for i in range(len(clients))]
    answered = await logout()
    await asyncio.gather(*pollers)
    for client in clients:
        client.cookies.clear()
    return max(t for t in refused if t is not None), answered


async def run(budget: Budget, report: Report, world: World) -> None:
    workers = 2 if budget.quick else 4
    rounds = budget.n(20, 3)
    what = f"Universal Logout: request to the last of {workers} workers refusing, worst of {rounds}"
    try:
        import redis.asyncio

        probe = redis.asyncio.Redis.from_url(REDIS_URL)
        await probe.ping()
        await probe.aclose()
    except Exception as exc:
        report.add(Row(SECTION, what, f"not measured: no Redis at {REDIS_URL} ({exc})"))
        return
    idp = SamlTestIdp()
    folder = tempfile.mkdtemp(prefix="saml-gate-bench-ulo-")
    prefix = f"saml-gate-bench:{os.urandom(4).hex()}:"
    started = start_workers(workers, worker_env(idp, folder, prefix), folder)
    ports = [port for port, _ in started]
    clients = [
        httpx.AsyncClient(base_url=PUBLIC_URL, transport=Routed(port), timeout=30.0)
        for port in ports
    ]
    try:
        results = [
            await one_round(idp, clients, ports[n % workers], f"person{n}@example.com")
            for n in range(rounds)
        ]
    finally:
        for client in clients:
            await client.aclose()
        for _, process in started:
            process.terminate()
            process.wait(10)
        await _forget(prefix)
    last = [r[0] for r in results]
    answers = [r[1] for r in results]
    after = [max(0.0, done - answered) for done, answered in results]
    worst = max(last) * 1000
    report.add(
        Row(
            SECTION,
            what,
            f"{worst:.1f} ms",
            "target ≤ 1000 ms",
            worst <= 1000,
            note=f"median {statistics.median(last) * 1000:.1f} ms; the request's own 204:"
            f" median {statistics.median(answers) * 1000:.1f} ms; last refusal after the 204:"
            f" median {statistics.median(after) * 1000:.1f} ms, worst {max(after) * 1000:.1f} ms",
        )
    )


async def _forget(prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
