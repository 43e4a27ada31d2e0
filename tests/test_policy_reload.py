"""Reloading the access policy from ``saml-gate.toml`` while the gate runs.

In process: a good file is applied between requests, a bad one changes nothing (one log line
naming the file, the line and the setting; a metric), a restart-only setting is reported and
not applied. A host added to ``allowed_hosts`` is served, returned to after sign-in and trusted
to sign out from, through the endpoints, and refused all three ways again once removed (with
``cookie_domain`` changed too, it waits for a restart). Then for real: ``saml-gate run
--workers 3`` in a subprocess, where every worker must apply a good file (each answers from its
own process id on a path, and a host, the new file opens) and a bad file must change nothing in
any of them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from saml_gate import SamlGate
from tests.conftest import TEST_REDIS_URL
from tests.support import IDP_SSO_URL, SECRET, Harness, decode_redirect_request, make_app
from tests.test_multiworker import gate_env  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
public_paths = ["/static/"]

[[rules]]
path = "/admin/"
groups = ["admins"]
"""
OPENED = """
public_paths = ["/static/", "/open/"]

[[rules]]
path = "/admin/"
groups = ["admins"]
"""
#: A host the reloaded files add to ``allowed_hosts`` (top-level keys come before [[rules]]).
NEW_HOST = "wiki.apps.example"
HOSTED = f'allowed_hosts = ["{NEW_HOST}"]\n' + GOOD
HOSTED_OPENED = f'allowed_hosts = ["{NEW_HOST}"]\n' + OPENED
BAD = """
public_paths = ["/static/"]

[[rules]]
path = "/admin/"
groups = ["admins"]

[[rules]]
path = "/ops/"
method = ["GET"]
"""


async def pid_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the workers: answers with its process id (so a test knows which worker
    passed the request on)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    pid = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-worker-pid", pid)]})
    await send({"type": "http.response.body", "body": pid})


# ------------------------------------------------------------------------------ in process
@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "saml-gate.toml"
    path.write_text(GOOD)
    return path


def gate_for(config: Path, **options: object) -> SamlGate:
    return SamlGate(
        make_app(),
        config_file=str(config),
        dev_idp=True,
        base_url="http://127.0.0.1:8000",
        secret_key=SECRET,
        metrics_path="/metrics",
        state_dir=str(config.parent / "state"),
        **options,  # type: ignore[arg-type]
    )


def reload_of(gate: SamlGate):  # type: ignore[no-untyped-def]
    reload = gate.core.policy_reload
    assert reload is not None
    return reload


def counter(gate: SamlGate, name: str) -> float:
    assert gate.core.metrics is not None
    value = gate.core.metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


def test_a_good_file_is_applied_and_counted(config: Path) -> None:
    gate = gate_for(config)
    before = gate.parts.gatekeeper._policy.current
    config.write_text(OPENED)
    result = reload_of(gate).reload()
    assert result.applied and result.error is None and result.restart == ()
    after = gate.parts.gatekeeper._policy.current
    assert after is not before
    assert after.rule_for("/open/x", "GET").public
    assert not before.rule_for("/open/x", "GET").public  # a request in flight keeps its own
    assert counter(gate, "saml_gate_policy_reloads_total") == 1.0


def test_a_bad_file_changes_nothing(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    gate = gate_for(config)
    before = gate.parts.gatekeeper._policy.current
    config.write_text(BAD)
    with caplog.at_level(logging.ERROR, logger="saml_gate"):
        result = reload_of(gate).reload()
    assert result.error is not None
    assert gate.parts.gatekeeper._policy.current is before
    lines = [r.getMessage() for r in caplog.records if r.name == "saml_gate"]
    assert len(lines) == 1
    assert f"{config}, line 10: saml-gate setting 'access_rules'" in lines[0]
    assert "unknown key 'method'" in lines[0]
    assert "\n" not in lines[0]
    assert counter(gate, "saml_gate_policy_reload_failures_total") == 1.0
    assert counter(gate, "saml_gate_policy_reloads_total") == 0.0


def test_a_restart_only_setting_is_reported_never_applied(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = gate_for(config)
    config.write_text('secret_key = "' + "n" * 40 + '"\nmaximum_duration = 7200\n' + OPENED)
    with caplog.at_level(logging.INFO, logger="saml_gate"):
        result = reload_of(gate).reload()
    # secret_key is given as a keyword, which wins: only maximum_duration changed in effect
    assert result.restart == ("maximum_duration",)
    assert result.applied  # the access policy is, as it may be
    assert gate.settings.maximum_duration == 8 * 3600.0
    assert gate.core.sessions is not None
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == [
        f"{config}: maximum_duration changed and needs a restart; not applied"
        " (the running value stays)"
    ]


def test_keywords_still_win_over_a_reloaded_file(config: Path) -> None:
    gate = gate_for(config, public_paths=["/kept/"])
    config.write_text(OPENED)
    reload_of(gate).reload()
    policy = gate.parts.gatekeeper._policy.current
    assert policy.rule_for("/kept/", "GET").public
    assert not policy.rule_for("/open/x", "GET").public


HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
#: What a browser's one-click "Sign out" form posts from an app's page on the new host.
SIGN_OUT = {"content-type": "application/x-www-form-urlencoded", "origin": f"http://{NEW_HOST}"}


async def on_new_host(h: Harness) -> httpx.Response:
    """A signed-in person's page on the new host (the app answers 200 when the rules let it)."""
    return await h.client.get("/private/page", headers={"host": NEW_HOST, **JSON})


async def login_to_new_host(h: Harness) -> httpx.Response:
    return await h.client.get(
        "/saml/login", params={"return_to": f"http://{NEW_HOST}/private/page"}, headers=HTML
    )


async def signed_in_here(h: Harness) -> bool:
    return (await h.client.get("/private/page", headers=HTML)).status_code == 200


async def assert_new_host_refused(h: Harness) -> None:
    """Not served, not returned to, not trusted to sign out from: as if never configured."""
    assert (await h.login()).status_code == 303
    r = await on_new_host(h)
    assert (r.status_code, r.json()["error"]) == (421, "unknown_host")
    r = await login_to_new_host(h)
    assert r.status_code == 400 and "bad_relay_state" in r.text
    r = await h.client.post("/saml/logout", headers=SIGN_OUT, content=b"")
    assert r.status_code == 303 and r.headers["location"] == "/saml/logout"  # asks first
    assert await signed_in_here(h)


@pytest.mark.anyio
async def test_a_reloaded_allowed_host_is_served_returned_to_and_signed_out_from(
    make_harness: Any, config: Path
) -> None:
    h: Harness = make_harness(config_file=str(config), idp_logout=False)
    await assert_new_host_refused(h)

    config.write_text(HOSTED)
    result = reload_of(h.gate).reload()
    assert result.applied and result.restart == () and result.error is None
    # served: the rules decide (any signed-in person here), no unknown_host
    r = await on_new_host(h)
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"
    assert (await h.client.get("/admin/x", headers={"host": NEW_HOST, **JSON})).status_code == 404
    # returned to after sign-in
    r = await login_to_new_host(h)
    assert r.status_code == 303 and r.headers["location"].startswith(IDP_SSO_URL)
    request, relay = decode_redirect_request(r.headers["location"])
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=request.get("ID"))), relay)
    assert r.status_code == 303 and r.headers["location"] == f"http://{NEW_HOST}/private/page"
    # an app's page there may sign out in one click
    r = await h.client.post("/saml/logout", headers=SIGN_OUT, content=b"")
    assert r.status_code == 200 and "You are signed out" in r.text
    assert not await signed_in_here(h)

    # A sign-in started for the host while it was allowed does not return there once removed.
    started = await login_to_new_host(h)
    assert started.status_code == 303
    config.write_text(GOOD)
    result = reload_of(h.gate).reload()
    assert result.applied and result.restart == ()
    request, relay = decode_redirect_request(started.headers["location"])
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=request.get("ID"))), relay)
    # its pending cookie names a return_to no longer allowed: the sign-in is not this browser's
    assert r.status_code == 400 and "unknown_request" in r.text and "location" not in r.headers
    await assert_new_host_refused(h)


@pytest.mark.anyio
async def test_allowed_hosts_changed_with_cookie_domain_waits_for_a_restart(
    make_harness: Any, config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h: Harness = make_harness(config_file=str(config), idp_logout=False)
    config.write_text('cookie_domain = "apps.example"\n' + HOSTED_OPENED)
    with caplog.at_level(logging.WARNING, logger="saml_gate"):
        result = reload_of(h.gate).reload()
    assert result.restart == ("cookie_domain", "allowed_hosts")
    assert result.applied  # the rules are not held back: they do not go with cookie_domain
    policy = h.gate.parts.gatekeeper._policy.current
    assert policy.rule_for("/open/x", "GET").public
    assert not policy.hosts.allows(NEW_HOST, 443)
    await assert_new_host_refused(h)
    # (the gate's own watch, started by the first request, reads the file again: same line)
    needs_restart = [
        r for r in caplog.records if getattr(r, "event", "") == "policy_reload_needs_restart"
    ]
    warnings = {r.getMessage() for r in needs_restart}
    assert warnings == {
        f"{config}: cookie_domain, allowed_hosts changed and needs a restart; not applied"
        " (the running value stays); allowed_hosts waits for that restart too, as it changed"
        " with cookie_domain: one is not applied without the other"
    }


@pytest.mark.anyio
async def test_the_watch_applies_a_change_through_the_endpoint(config: Path) -> None:
    gate = gate_for(config)
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        await gate.start()
        try:
            assert (
                await client.get("/open/page", headers={"accept": "application/json"})
            ).status_code == 401
            config.write_text(OPENED)
            for _ in range(200):  # the watch looks every second
                r = await client.get("/open/page", headers={"accept": "application/json"})
                if r.status_code != 401:
                    break
                await anyio.sleep(0.05)
            assert r.status_code == 404  # the app's own answer: the gate let it through
        finally:
            await gate.core.stop()


# ------------------------------------------------------------------------------ for real
@dataclass
class Running:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def pids_answering(
        self, path: str, want: int, attempts: int = 300, host: str | None = None
    ) -> set[str]:
        """The workers that pass ``path`` (on ``host``, None: base_url's) to the app (a new
        connection each time)."""
        headers = {"accept": "application/json", **({"host": host} if host else {})}
        seen: set[str] = set()
        for _ in range(attempts):
            r = httpx.get(self.base_url + path, headers=headers)
            if r.status_code not in (401, 421):
                seen.add(r.headers["x-worker-pid"])
            if len(seen) >= want:
                break
        return seen

    def statuses(self, path: str, count: int, host: str | None = None) -> set[int]:
        headers = {"accept": "application/json", **({"host": host} if host else {})}
        return {httpx.get(self.base_url + path, headers=headers).status_code for _ in range(count)}

    def new_host_answers(self, count: int) -> set[tuple[int, int, int]]:
        """(its page, /saml/login returning there, a sign-out POST from it) as answered,
        ``count`` times on new connections (so by the workers in turn): (421, 400, 303) when
        the new host is refused all three ways, (200, 303, 200) when it is allowed."""
        login = {"return_to": f"http://{NEW_HOST}/open/page"}
        answers = set()
        for _ in range(count):
            page = httpx.get(self.base_url + "/open/page", headers={"host": NEW_HOST, **JSON})
            start = httpx.get(self.base_url + "/saml/login", params=login, headers=HTML)
            out = httpx.post(self.base_url + "/saml/logout", headers=SIGN_OUT, content=b"")
            answers.add((page.status_code, start.status_code, out.status_code))
        return answers


WORKERS = 3
#: What Running.new_host_answers gives for a host refused, and for one allowed.
REFUSED, ALLOWED = (421, 400, 303), (200, 303, 200)


@pytest.fixture
def running(
    tmp_path: Path,
    gate_env: dict[str, str],  # noqa: F811 (the fixture)
    redis_prefix: str,
    config: Path,
) -> Iterator[Running]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    config.write_text(f'store = "{TEST_REDIS_URL}"\nstore_prefix = "{redis_prefix}"\n' + GOOD)
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "saml_gate.cli", "run", "tests.test_policy_reload:pid_app"]
    command += ["--workers", str(WORKERS), "--port", str(port), "--config", str(config)]
    env = {**os.environ, **gate_env, "SAML_GATE_BASE_URL": base_url}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Running(base_url, process, log)
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise AssertionError("the server stopped:\n" + log.read_text())
            if server.lines("Application startup complete") >= WORKERS:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the workers did not start:\n" + log.read_text())
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_lines(server: Running, text: str, count: int) -> None:
    for _ in range(300):
        if server.lines(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} x {text!r} never logged:\n" + server.log.read_text())


@pytest.mark.slow  # saml-gate run processes
@pytest.mark.anyio
async def test_every_worker_applies_a_good_file_and_none_a_bad_one(
    running: Running, config: Path
) -> None:
    store_lines = "\n".join(
        line for line in config.read_text().splitlines() if line.startswith("store")
    )
    assert running.statuses("/open/page", 10) == {401}
    assert running.new_host_answers(6) == {REFUSED}
    config.write_text(store_lines + "\n" + HOSTED_OPENED)
    wait_for_lines(running, "access policy reloaded", WORKERS)
    assert len(running.pids_answering("/open/page", WORKERS)) == WORKERS
    assert len(running.pids_answering("/open/page", WORKERS, host=NEW_HOST)) == WORKERS
    assert running.new_host_answers(6) == {ALLOWED}
    assert running.statuses("/admin/", 10) == {401}

    config.write_text(store_lines + "\n" + BAD)
    wait_for_lines(running, "not reloaded, the running access policy stays", WORKERS)
    assert len(running.pids_answering("/open/page", WORKERS)) == WORKERS  # still public
    assert len(running.pids_answering("/open/page", WORKERS, host=NEW_HOST)) == WORKERS
    assert running.lines("line 12: saml-gate setting 'access_rules'") == WORKERS

    # SIGHUP: every worker reads the file again at once, through the supervisor
    running.process.send_signal(signal.SIGHUP)
    wait_for_lines(running, "not reloaded, the running access policy stays", 2 * WORKERS)
    config.write_text(store_lines + "\n" + GOOD)
    wait_for_lines(running, "access policy reloaded", 2 * WORKERS)
    assert running.statuses("/open/page", 10) == {401}
    assert running.statuses("/open/page", 10, host=NEW_HOST) == {421}
    assert running.new_host_answers(6) == {REFUSED}
    assert running.process.poll() is None  # nobody died of the signal


@pytest.mark.slow  # saml-gate run processes
@pytest.mark.anyio
async def test_sighup_reloads_a_single_process_server(
    tmp_path: Path,
    gate_env: dict[str, str],  # noqa: F811 (the fixture)
    config: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "saml_gate.cli", "run", "tests.test_policy_reload:pid_app"]
    command += ["--port", str(port), "--config", str(config)]
    env = {**os.environ, **gate_env, "SAML_GATE_BASE_URL": f"http://127.0.0.1:{port}"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Running(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for_lines(server, "Application startup complete", 1)
        process.send_signal(signal.SIGHUP)
        wait_for_lines(server, "read again, nothing changed", 1)
        config.write_text(OPENED)
        process.send_signal(signal.SIGHUP)
        wait_for_lines(server, "access policy reloaded", 1)
        assert len(server.pids_answering("/open/page", 1)) == 1
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=20)
