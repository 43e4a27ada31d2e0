"""Universal Logout across hosts: two gate processes sharing Redis, real sockets, real WebSockets.

Each "host" is its own uvicorn process running :func:`create_app` (the gate around a small app
with a WebSocket that echoes), configured by ``SAML_GATE_*`` variables: the same base URL,
secret and keys, one Redis. A person signs in on both hosts (a session through each) and opens
a WebSocket on each; so does a bystander. One signed Universal Logout request, the test kit's as
Okta shapes it, goes to the first host: both hosts then refuse the person's sessions (401 to
an API call, a new sign-in for a page load), both WebSockets are closed with 1008, and the
bystander is untouched. How long that takes is the benchmark's business
(benchmarks/bench_universal_logout.py); here a hang guard only stops a test that would wait
forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

from saml_gate import SamlGate
from saml_gate.testing import NAVIGATION, SamlTestIdp
from tests.conftest import TEST_REDIS_URL
from tests.interop.client import HostMap
from tests.test_store_outage import free_port

pytestmark = pytest.mark.anyio

websockets = pytest.importorskip("websockets", reason="pip install -e '.[test]'")
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 30.0  # a bound on waiting, not a timing assertion
JSON = {"accept": "application/json"}
ANN, BOB = "ann@example.com", "bob@example.com"


# ------------------------------------------------------------------------------------ the app
async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.name_id, "pid": os.getpid()})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


def create_app() -> ASGIApp:
    """uvicorn's ``--factory``: the gate, its settings from the environment."""
    app = Starlette(routes=[Route("/private/{rest:path}", whoami), WebSocketRoute("/ws", echo)])
    return SamlGate(app)


# ------------------------------------------------------------------------------------ hosts
@dataclass
class Host:
    name: str
    port: int
    public_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, cookie: str | None = None) -> httpx.AsyncClient:
        """A browser the load balancer sends to this host (the public URL, the Host header and
        the cookies stay the public URL's)."""
        cookies = {"saml_gate_session": cookie} if cookie else None
        routes = {httpx.URL(self.public_url).host: self.port}
        return httpx.AsyncClient(
            base_url=self.public_url, cookies=cookies, timeout=30.0, transport=HostMap(routes)
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def host_environment(saml_idp: SamlTestIdp, base_url: str, folder: Path) -> dict[str, str]:
    """The test kit's gate options as ``SAML_GATE_*`` variables (what every host shares)."""
    options = saml_idp.gate_options(base_url=base_url)
    env = {
        "SAML_GATE_BASE_URL": base_url,
        "SAML_GATE_IDP_METADATA": str(options["idp_metadata"]),
        "SAML_GATE_SECRET_KEY": str(options["secret_key"]),
        "SAML_GATE_SP_KEY": str(options["sp_key"]),
        "SAML_GATE_SP_CERT": str(options["sp_cert"]),
        "SAML_GATE_STATE_DIR": str(folder / "state"),
        "SAML_GATE_VERIFY_ISOLATION": "thread",
        "SAML_GATE_UNIVERSAL_LOGOUT_ISSUER": str(options["universal_logout_issuer"]),
        "SAML_GATE_UNIVERSAL_LOGOUT_KEYS": str(options["universal_logout_keys"]),
        "SAML_GATE_STORE": TEST_REDIS_URL,
    }
    return env


def start_host(
    name: str,
    port: int,
    env: dict[str, str],
    folder: Path,
    app: str = "tests.test_universal_logout_hosts:create_app",
) -> Host:
    log = folder / f"{name}.log"
    command = [sys.executable, "-m", "uvicorn", app]
    command += ["--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    host = Host(name, port, env["SAML_GATE_BASE_URL"], process, log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            host.stop()
            raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(host.url + "/saml/ready", timeout=2.0).status_code == 200:
                return host
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


@pytest.fixture
def hosts(saml_idp: SamlTestIdp, tmp_path: Path, redis_prefix: str) -> Iterator[list[Host]]:
    ports = [free_port(), free_port()]
    # the public URL both hosts serve, as behind a load balancer (HostMap plays it)
    base_url = "http://app.test"
    env = host_environment(saml_idp, base_url, tmp_path) | {"SAML_GATE_STORE_PREFIX": redis_prefix}
    started: list[Host] = []
    try:
        for number, port in enumerate(ports, 1):
            started.append(start_host(f"host{number}", port, env, tmp_path))
        yield started
    finally:
        for host in started:
            host.stop()


# ------------------------------------------------------------------------------------ browsers
async def sign_in_through(saml_idp: SamlTestIdp, host: Host, email: str) -> str:
    """Sign in through ``host``'s login and ACS; the session cookie's value."""
    async with host.client() as client:
        answer = await saml_idp.sign_in_async(client, email=email, path="/private/x")
        assert answer.status_code == 303
        return str(client.cookies["saml_gate_session"])


async def status(host: Host, cookie: str) -> int:
    async with host.client(cookie) as client:
        return (await client.get("/private/x", headers=JSON)).status_code


async def opened(host: Host, cookie: str) -> ClientConnection:
    """A WebSocket to ``host`` with this session, past its hello and one echo."""
    return await opened_with(host, ("Cookie", f"saml_gate_session={cookie}"))


async def opened_with(host: Host, credential: tuple[str, str]) -> ClientConnection:
    """A WebSocket to ``host`` with this header (a session cookie, a bearer token), past its
    hello and one echo."""
    public = httpx.URL(host.public_url)  # its Host: the public URL's, as behind the balancer
    ws = await connect(
        f"ws://{public.netloc.decode()}/ws",
        additional_headers=[credential],
        host="127.0.0.1",
        port=host.port,
    )
    assert await ws.recv() == "hello"
    await ws.send("ping")
    assert await ws.recv() == "ping"
    return ws


async def closed_with(ws: ClientConnection) -> int | None:
    """Wait for the server to close ``ws``: its close code."""
    with anyio.fail_after(HANG_GUARD):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
    return ws.close_code


async def refused_everywhere(hosts: list[Host], cookie: str) -> None:
    """Wait until every host refuses the session (the revocation reaches each through Redis)."""
    with anyio.fail_after(HANG_GUARD):
        for host in hosts:
            while await status(host, cookie) != 401:
                await anyio.sleep(0.01)


# ------------------------------------------------------------------------------------ the test
async def test_one_universal_logout_ends_a_person_on_every_host(
    saml_idp: SamlTestIdp, hosts: list[Host]
) -> None:
    first, second = hosts
    ann_here = await sign_in_through(saml_idp, first, ANN)
    ann_there = await sign_in_through(saml_idp, second, ANN)
    bob = await sign_in_through(saml_idp, second, BOB)
    for cookie in (ann_here, ann_there, bob):  # every session works on every host
        assert [await status(host, cookie) for host in hosts] == [200, 200]
    sockets = [await opened(first, ann_there), await opened(second, ann_here)]
    bystander = await opened(second, bob)

    async with first.client() as okta:
        answer = await saml_idp.universal_logout_async(okta, email=ANN)
    assert answer.status_code == 204, answer.text

    for cookie in (ann_here, ann_there):
        await refused_everywhere(hosts, cookie)
        async with second.client(cookie) as browser:  # a page load: a new sign-in
            page = await browser.get("/private/x", headers=NAVIGATION)
            assert page.status_code == 303 and "SAMLRequest=" in page.headers["location"]
    assert [await closed_with(ws) for ws in sockets] == [1008, 1008]
    assert [await status(host, bob) for host in hosts] == [200, 200]
    await bystander.send("still here")
    assert await bystander.recv() == "still here"
    await bystander.close()
