"""A multi-host rehearsal: three gates (three "hosts" on loopback ports) behind HAProxy.

Each gate is its own uvicorn process running :func:`tests.test_multiworker.create_app` (every
response names the process that answered, ``x-worker-pid``), all configured with the load
balancer's URL as ``base_url`` and sharing one Redis. HAProxy (Debian's) spreads requests over
the three and, when a gate is down, retries the request on another (``option redispatch``).
The test signs in through one gate, sends requests to all, signs out on another, replays the
Response to a third, and kills one gate with SIGKILL and starts it again in the middle of the
run: nobody is signed out, and the restarted gate honours the sign-out it never saw.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from saml_gate.saml.keys import KeyPair
from tests.conftest import TEST_REDIS_URL
from tests.test_multiworker import (
    JSON,
    ROOT,
    Browser,
    Workers,
    gate_env,  # noqa: F401 (a fixture, used by name)
)
from tests.test_store_outage import free_port

pytestmark = pytest.mark.anyio

START_GUARD = 60.0  # a bound on start-up, not a timing assertion


def wait_until_answers(url: str, process: subprocess.Popen[bytes], log: Path) -> str:
    """Poll ``url`` until it answers; the pid that answered."""
    deadline = time.monotonic() + START_GUARD
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            return httpx.get(url, timeout=2.0).headers.get("x-worker-pid", "")
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{url} never answered:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Gate:
    """One gate process ("a host") on its own loopback port."""

    name: str
    port: int
    env: dict[str, str]
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    pid: str = ""

    def start(self) -> None:
        command = [sys.executable, "-m", "uvicorn", "tests.test_multiworker:create_app"]
        command += ["--factory", "--host", "127.0.0.1", "--port", str(self.port)]
        log = self.folder / f"{self.name}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{self.port}/saml/metadata"
        self.pid = wait_until_answers(url, self.process, log)

    async def send(
        self, method: str, path: str, cookies: dict[str, str], **kw: Any
    ) -> httpx.Response:
        """Straight to this gate, past the load balancer: an action that must land here."""
        base_url = f"http://127.0.0.1:{self.port}"
        async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=30) as client:
            r = await client.request(method, path, **kw)
        assert r.headers["x-worker-pid"] == self.pid
        return r

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


HAPROXY_CONFIG = """
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend gates
    bind 127.0.0.1:{port}
    default_backend gates
backend gates
    balance roundrobin
{servers}
"""


@dataclass
class Site:
    """HAProxy in front of the gates."""

    url: str
    haproxy: subprocess.Popen[bytes]
    gates: list[Gate] = field(default_factory=list)

    def workers(self) -> Workers:
        """The load balancer as test_multiworker's Workers: aim a request at one gate by pid."""
        return Workers(
            base_url=self.url,
            process=self.haproxy,
            log=Path(os.devnull),
            pids={g.pid for g in self.gates},
        )


@pytest.fixture
def site(tmp_path: Path, gate_env: dict[str, str], redis_prefix: str) -> Iterator[Site]:  # noqa: F811
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.skip("no haproxy program: apt-get install haproxy (.ci/run does)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **gate_env,
        "SAML_GATE_BASE_URL": url,
        "SAML_GATE_STORE": TEST_REDIS_URL,
        "SAML_GATE_STORE_PREFIX": redis_prefix,
    }
    gates = [Gate(f"gate{i}", free_port(), env, tmp_path) for i in (1, 2, 3)]
    servers = "\n".join(f"    server {g.name} 127.0.0.1:{g.port}" for g in gates)
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    log = tmp_path / "haproxy.log"
    started: list[Gate] = []
    try:
        for gate in gates:
            gate.start()
            started.append(gate)
        with log.open("wb") as out:
            haproxy = subprocess.Popen(
                [binary, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        running = Site(url, haproxy, gates)
        wait_until_answers(url + "/saml/metadata", haproxy, log)
        yield running
    finally:
        for gate in started:
            gate.stop()
        if "haproxy" in locals():
            haproxy.terminate()
            haproxy.wait(timeout=10)


async def test_three_hosts_behind_haproxy_share_sign_ins_sign_outs_and_replay_protection(
    site: Site, idp_keys: KeyPair
) -> None:
    workers = site.workers()
    assert len(workers.pids) == 3
    browser = Browser(workers, idp_keys)

    # Sign in through one gate; the session works on every gate.
    signed_in_on, form = await browser.login("okta-1")
    alice = browser.cookies["saml_gate_session"]
    assert await browser.status_on_each_worker(alice) == dict.fromkeys(workers.pids, 200)

    # A second session, signed out on a gate other than the one that signed it in.
    second_on, _ = await browser.login("okta-2")
    bob = browser.cookies["saml_gate_session"]
    cookies = {"saml_gate_session": bob}
    out_on = next(g for g in site.gates if g.pid != second_on)
    page = await out_on.send("GET", "/saml/logout", cookies)
    token = page.text.split("name=token value='")[1].split("'")[0]
    out = await out_on.send("POST", "/saml/logout", cookies, data={"token": token})
    assert out.status_code == 303, out.text  # signed out, on to the IdP's SLO endpoint
    await browser.refused_on_each_worker(bob)  # pushed to the others through Redis pub/sub

    # The first Response, replayed to a third gate (neither the one that accepted it nor the
    # one that signed bob out), is refused.
    third = next(g for g in site.gates if g.pid not in (signed_in_on, out_on.pid))
    replay = await third.send("POST", "/saml/acs", browser.cookies, data=form)
    assert replay.status_code == 400 and "replayed" in replay.text

    # One gate dies (SIGKILL, no goodbye) in the middle of traffic through the load balancer:
    # every request is still answered, by the two others, and alice stays signed in.
    victim = next(g for g in site.gates if g.pid == signed_in_on)
    async with workers.client({"saml_gate_session": alice}) as client:
        answered: list[tuple[str, int]] = []
        for i in range(30):
            if i == 10:
                victim.kill()
            r = await client.get("/private/p", headers=JSON)
            answered.append((r.headers.get("x-worker-pid", ""), r.status_code))
    assert {status for _, status in answered} == {200}, answered
    assert {pid for pid, _ in answered[:9]} == workers.pids  # round robin over all three
    assert victim.pid not in {pid for pid, _ in answered[12:]}

    # It comes back (a new process, empty memory): alice is still signed in there, and bob's
    # sign-out, which it never saw, holds there too.
    victim.start()
    assert victim.pid != signed_in_on
    workers = site.workers()
    browser.workers = workers
    assert await browser.status_on_each_worker(alice) == dict.fromkeys(workers.pids, 200)
    assert await browser.status_on_each_worker(bob) == dict.fromkeys(workers.pids, 401)
    replay = await victim.send("POST", "/saml/acs", browser.cookies, data=form)
    assert replay.status_code == 400 and "replayed" in replay.text
