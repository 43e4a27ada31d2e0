"""The gate under uvicorn with two worker processes: shared state through Redis, for real.

uvicorn runs :func:`create_app` (configured by ``SAML_GATE_*`` variables) in two processes on one
socket; every response says which process answered (``x-worker-pid``), and every request opens a
new connection, so the test can aim at "the other worker" by retrying until it answers. With the
memory store, each worker warns at start-up that replay protection is per process.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saml_gate import SamlGate
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml.keys import KeyPair
from tests.conftest import TEST_REDIS_URL
from tests.support import IDP_ENTITY_ID, decode_redirect_request, make_app
from tests.test_logout import Pysaml2Idp, query_of

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
ATTEMPTS = 200


# ------------------------------------------------------------------------------------ the app
class WorkerPid:
    """Adds ``x-worker-pid`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-worker-pid", self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid if scope["type"] == "http" else send)


def create_app() -> ASGIApp:
    """uvicorn's ``--factory``: the test app behind the gate, settings from the environment."""
    return WorkerPid(SamlGate(make_app()))


# ------------------------------------------------------------------------------------ the server
@dataclass
class Workers:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    pids: set[str] = field(default_factory=set)

    def client(self, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
        """No keep-alive: each request may land on either worker."""
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=30.0, cookies=cookies
        )

    async def on(
        self,
        pid: str | None,
        method: str,
        path: str,
        *,
        avoid: str | None = None,
        cookies: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """Send until the worker ``pid`` answers (or any worker but ``avoid``)."""
        async with self.client(cookies) as client:
            for _ in range(ATTEMPTS):
                r = await client.request(method, path, **kw)
                answered = r.headers["x-worker-pid"]
                if (pid is None or answered == pid) and answered != avoid:
                    return r
        raise AssertionError(f"worker {pid or 'other than ' + str(avoid)} never answered")


def start_workers(tmp_path: Path, env: dict[str, str]) -> Workers:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "tests.test_multiworker:create_app", "--factory"]
    command += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env, "SAML_GATE_BASE_URL": base_url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    workers = Workers(base_url=base_url, process=process, log=log)
    deadline = time.monotonic() + 60
    while len(workers.pids) < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(workers)
            raise RuntimeError("uvicorn did not start two workers:\n" + log.read_text())
        try:
            r = httpx.get(base_url + "/saml/metadata", timeout=2.0)
            workers.pids.add(r.headers["x-worker-pid"])
        except httpx.HTTPError:
            time.sleep(0.1)
    return workers


def stop(workers: Workers) -> None:
    workers.process.terminate()
    try:
        workers.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        workers.process.kill()
        workers.process.wait(timeout=10)


@pytest.fixture
def gate_env(gate_env: dict[str, str], tmp_path: Path, idp_keys: KeyPair) -> dict[str, str]:
    """conftest's, trusting an IdP whose metadata has an SLO endpoint."""
    idp = Pysaml2Idp(idp_keys, tmp_path / "idp")
    Path(gate_env["SAML_GATE_IDP_METADATA"]).write_text(idp.metadata)
    return gate_env


@pytest.fixture
def workers(tmp_path: Path, gate_env: dict[str, str], redis_prefix: str) -> Iterator[Workers]:
    env = {**gate_env, "SAML_GATE_STORE": TEST_REDIS_URL, "SAML_GATE_STORE_PREFIX": redis_prefix}
    running = start_workers(tmp_path, env)
    yield running
    stop(running)


# ------------------------------------------------------------------------------------ a browser
@dataclass
class Browser:
    workers: Workers
    idp_keys: KeyPair
    cookies: dict[str, str] = field(default_factory=dict)

    def keep(self, response: httpx.Response) -> None:
        for cookie in response.cookies.jar:
            if cookie.value:
                self.cookies[cookie.name] = cookie.value
            else:
                self.cookies.pop(cookie.name, None)

    async def login(self, session_index: str) -> tuple[str, dict[str, str]]:
        """Sign in; (the worker whose ACS accepted it, the ACS form that was posted)."""
        # the browser's cookies but its session (this is a new sign-in): the pending-sign-in turn
        # cookie comes back, so each sign-in takes the next slot and none overwrites another's
        # pending cookie (a replay test re-posts an earlier sign-in's form with them)
        jar = {k: v for k, v in self.cookies.items() if k != "saml_gate_session"}
        start = await self.workers.on(None, "GET", "/private/page", headers=HTML, cookies=jar)
        self.keep(start)
        request, relay = decode_redirect_request(start.headers["location"])
        spec = ResponseSpec(
            issuer=IDP_ENTITY_ID,
            destination=self.workers.base_url + "/saml/acs",
            audience=self.workers.base_url + "/saml/metadata",
            name_id="alice@example.com",
            attributes={"email": ["alice@example.com"], "groups": ["users"]},
            in_response_to=request.get("ID"),
            session_index=session_index,
            now=datetime.now(UTC),
        )
        form = {
            "SAMLResponse": base64.b64encode(issue_response(spec, self.idp_keys)).decode(),
            "RelayState": relay or "",
        }
        posted = await self.workers.on(None, "POST", "/saml/acs", data=form, cookies=self.cookies)
        assert posted.status_code == 303, posted.text
        self.keep(posted)
        return posted.headers["x-worker-pid"], form

    async def refused_on_each_worker(self, session: str) -> None:
        """Every worker refuses ``session`` once the revocation (pushed through Redis pub/sub)
        reaches it; a hang guard, not a timing assertion."""
        for _ in range(ATTEMPTS):
            if await self.status_on_each_worker(session) == dict.fromkeys(self.workers.pids, 401):
                return
        raise AssertionError("a worker still accepts the revoked session")

    async def status_on_each_worker(self, session: str) -> dict[str, int]:
        cookies = {"saml_gate_session": session}
        return {
            pid: (
                await self.workers.on(pid, "GET", "/private/p", headers=JSON, cookies=cookies)
            ).status_code
            for pid in sorted(self.workers.pids)
        }


# ------------------------------------------------------------------------------------ tests
async def test_two_workers_share_replay_protection_and_sign_outs(
    workers: Workers, idp_keys: KeyPair, tmp_path: Path
) -> None:
    browser = Browser(workers, idp_keys)
    accepted_by, form = await browser.login("okta-1")
    first = browser.cookies["saml_gate_session"]
    # The same Response (with the browser's cookies, as an attacker who copied them has) is
    # refused by the other worker: its replay cache is the shared one.
    replay = await workers.on(
        None, "POST", "/saml/acs", avoid=accepted_by, data=form, cookies=browser.cookies
    )
    assert replay.status_code == 400 and "replayed" in replay.text
    assert await browser.status_on_each_worker(first) == dict.fromkeys(workers.pids, 200)

    # IdP-initiated logout received by one worker ends the session in both.
    await browser.login("okta-2")
    second = browser.cookies["saml_gate_session"]
    sp_metadata = httpx.get(workers.base_url + "/saml/metadata").text
    idp = Pysaml2Idp(idp_keys, tmp_path / "idp-slo", sp_metadata)
    slo_url = workers.base_url + "/saml/slo"
    request = idp.logout_request(["okta-2"], destination=slo_url)
    url = idp.redirect(request, slo_url, response=False)
    parts = urlsplit(url)
    ended = await workers.on(None, "GET", parts.path + "?" + parts.query)
    assert ended.status_code == 303 and "SAMLResponse" in query_of(ended.headers["location"])
    await browser.refused_on_each_worker(second)
    assert await browser.status_on_each_worker(first) == dict.fromkeys(workers.pids, 200)

    # A sign-out on one worker: the (copied) cookie stops working on both.
    cookies = {"saml_gate_session": first}
    page = await workers.on(None, "GET", "/saml/logout", cookies=cookies)
    token = page.text.split("name=token value='")[1].split("'")[0]
    out = await workers.on(None, "POST", "/saml/logout", data={"token": token}, cookies=cookies)
    assert out.status_code == 303  # on to the IdP's SLO endpoint
    await browser.refused_on_each_worker(first)


async def test_memory_store_with_several_workers_warns_at_startup(
    tmp_path: Path, gate_env: dict[str, str]
) -> None:
    running = start_workers(tmp_path, gate_env)
    stop(running)
    log = running.log.read_text()
    assert log.count("replay protection and sign-outs are per process") == 2, log
