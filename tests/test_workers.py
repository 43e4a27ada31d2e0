"""Verification in child processes (verify_isolation="process", the default) and in threads.

Each test drives sign-ins through the real ACS endpoint; the pool's own behaviour (cancelled
callers, crashed children, platforms without child processes) is checked where it shows: the
answer the browser gets, and what the gate logs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import threading
from functools import partial
from typing import Any
from urllib.parse import quote_plus

import anyio
import httpx
import pytest

from saml_gate.config.ops_settings import usable_cores
from saml_gate.errors import ERRORS
from saml_gate.runtime import worker_processes, workers
from saml_gate.runtime.engine import ProcessEngine
from saml_gate.runtime.worker_wire import LENGTH, READY, read_frame
from saml_gate.runtime.workers import WorkerPool, WorkSpec
from tests.conftest import HarnessFactory
from tests.support import Harness

pytestmark = pytest.mark.anyio


async def only_child_may_verify(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def in_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("verified in the app's process")

    await h.gate.start()
    monkeypatch.setattr(h.gate.core.saml.verifier, "verify", in_process)
    monkeypatch.setattr(h.gate.core.saml.sp, "authn_request_url", in_process)


async def test_sign_in_is_verified_in_a_child_process(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await only_child_may_verify(harness, monkeypatch)
    assert harness.gate.settings.verify_isolation == "process"
    r = await harness.login()
    assert r.status_code == 303, r.text
    me = await harness.client.get("/saml/session")
    assert me.status_code == 200
    body = me.json()
    assert body["name_id"] == "alice@example.com"
    assert body["groups"] == ["admins", "users"]
    pool = harness.gate.core.workers
    assert pool is workers.shared_pool()
    children = [c.process.pid for c in pool._idle]
    assert children and os.getpid() not in children


async def test_refusals_come_back_from_the_child_with_their_code(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    spec = harness.spec(in_response_to=request_id, audience="https://someone-else.example")
    r = await harness.post_acs(harness.response_b64(spec), relay)
    assert r.status_code == ERRORS["wrong_audience"].status, r.text
    assert "wrong_audience" in r.text
    assert "saml_gate_session" not in r.headers.get("set-cookie", "")


async def test_thread_isolation_never_starts_a_child(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_child(*args: Any) -> Any:
        raise AssertionError("a child process was used")

    monkeypatch.setattr(WorkerPool, "run", no_child)
    h = make_harness(verify_isolation="thread")
    assert h.gate.core.workers is None
    r = await h.login()
    assert r.status_code == 303, r.text
    assert (await h.client.get("/saml/session")).status_code == 200


class _ExitOnLoad:
    """Unpickled in the child, it ends the child: a stand-in for a C library crashing."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os._exit, (70,))


async def sign_in_crashing_its_child(h: Harness) -> httpx.Response:
    """A sign-in whose child dies on it: the spec it sends ends the child when read."""
    request_id, relay = await h.start_login()
    saml = h.gate.core.saml
    good = saml.state
    crash = WorkSpec("crash-" + good.work_spec.digest, pickle.dumps(_ExitOnLoad()))
    saml.current = dataclasses.replace(good, work_spec=crash)
    try:
        return await h.post_acs(h.response_b64(h.spec(in_response_to=request_id)), relay)
    finally:
        saml.current = good


async def test_a_child_that_dies_refuses_that_sign_in_and_is_replaced(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    r = await sign_in_crashing_its_child(harness)
    assert r.status_code == 400, r.text
    assert "malformed_response" in r.text
    assert "saml_gate_session" not in r.headers.get("set-cookie", "")
    failures = [x for x in caplog.records if getattr(x, "event", "") == "worker_failed"]
    assert failures and "exited" in failures[0].getMessage()
    r = await harness.login()
    assert r.status_code == 303, r.text


async def test_no_child_processes_here_falls_back_to_threads_with_a_warning(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(workers, "_shared", None)  # a pool of this test's own, empty
    monkeypatch.setattr(worker_processes.sys, "executable", "/nonexistent/python")
    h = make_harness()
    r = await h.login()
    assert r.status_code == 303, r.text
    assert h.gate.core.workers is None
    warnings = [x for x in caplog.records if getattr(x, "event", "") == "workers_unavailable"]
    assert len(warnings) == 1
    assert "verify_isolation" in warnings[0].getMessage()


async def test_a_child_that_cannot_start_the_gate_is_unavailable_not_a_failure(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """sys.executable is not always Python (embedded interpreters): the child never says ready."""
    monkeypatch.setattr(workers, "_shared", None)
    monkeypatch.setattr(worker_processes.sys, "executable", "/bin/false")
    h = make_harness()
    r = await h.login()
    assert r.status_code == 303, r.text
    warnings = [x for x in caplog.records if getattr(x, "event", "") == "workers_unavailable"]
    assert warnings and "exited at start" in warnings[0].getMessage()


async def test_a_cancelled_call_leaves_its_child_usable(harness: Harness) -> None:
    """The cancelled caller's answer arrives later; the next caller skips it."""
    await harness.gate.start()
    good = harness.gate.core.saml.work_spec
    pool = WorkerPool()
    try:
        spec = WorkSpec("fresh-" + good.digest, good.payload)
        with anyio.move_on_after(0.005):  # "prepare" builds a pysaml2 client: ~50 ms
            await pool.run(spec, "prepare")
        assert len(pool._idle) == 1
        child = pool._idle[0]
        assert child._owed == 1 and not child.torn
        request_id, location = await pool.run(spec, "authn_request", "relay", False)
        assert location.startswith("https://idp.example.test/") and request_id.startswith("id")
        assert pool._idle == [child] and child._owed == 0
    finally:
        pool.close()


async def test_the_child_is_not_given_the_cookie_secret_or_python_callables(
    harness: Harness,
) -> None:
    await harness.gate.start()
    settings, idp, keys = pickle.loads(harness.gate.core.saml.work_spec.payload)
    assert settings.secret_key == ()
    assert settings.on_event == () and settings.metrics_registry is None
    assert idp.entity_id == harness.gate.core.saml.idp.entity_id
    assert keys.key_pem == harness.gate.core.saml.keys.key_pem  # decryption needs the SP key


class _Lifespan:
    """The server's side of an ASGI lifespan: start-up at once, shut-down when ``stop`` is set."""

    def __init__(self) -> None:
        self.stop = anyio.Event()
        self._events = iter([{"type": "lifespan.startup"}])

    async def receive(self) -> dict[str, Any]:
        event = next(self._events, None)
        if event is None:
            await self.stop.wait()
            return {"type": "lifespan.shutdown"}
        return event

    async def send(self, message: dict[str, Any]) -> None:
        pass

    def run(self, gate: Any) -> Any:
        return partial(
            gate, {"type": "lifespan", "asgi": {"version": "3.0"}}, self.receive, self.send
        )


async def test_start_up_warms_a_child_per_core_so_the_first_sign_ins_start_none(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_shared", None)  # an empty pool of this test's own
    h = make_harness()  # verify_concurrency's default: 0, one child per usable core
    assert h.gate.settings.verify_concurrency == 0
    cores = len(os.sched_getaffinity(0))
    assert h.gate.settings.verify_slots == usable_cores() == cores
    pool = h.gate.core.workers
    assert pool is not None and pool._idle == []
    lifespan = _Lifespan()
    async with anyio.create_task_group() as group:
        group.start_soon(lifespan.run(h.gate))
        with anyio.fail_after(60):
            while len(pool._idle) < cores:
                await anyio.sleep(0.05)
        warmed = list(pool._idle)
        assert all(h.gate.core.saml.work_spec.digest in child._specs for child in warmed)
        started: list[Any] = []
        monkeypatch.setattr(workers, "_Child", lambda *a: started.append(1))  # none may start
        r = await h.login()
        assert r.status_code == 303, r.text
        assert started == [] and sorted(map(id, pool._idle)) == sorted(map(id, warmed))
        lifespan.stop.set()
    pool.close()


async def test_a_sign_in_during_the_warm_up_waits_for_its_child_and_starts_none(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up's children count against verify_concurrency: a sign-in arriving while they
    start does not start another one (which would stay idle for the server's life)."""
    monkeypatch.setattr(workers, "_shared", None)
    real_child = workers._Child
    starting = threading.Event()
    release = threading.Event()
    started: list[Any] = []

    def slow_child(*args: Any) -> Any:
        started.append(1)
        starting.set()
        release.wait(30)
        return real_child(*args)

    monkeypatch.setattr(workers, "_Child", slow_child)
    h = make_harness(verify_concurrency=1)
    pool = h.gate.core.workers
    assert pool is not None
    lifespan = _Lifespan()
    async with anyio.create_task_group() as group:
        group.start_soon(lifespan.run(h.gate))
        with anyio.fail_after(30):
            while not starting.is_set():
                await anyio.sleep(0.01)
        answers: list[Any] = []

        async def sign_in() -> None:
            answers.append(await h.login())

        group.start_soon(sign_in)
        engine = h.gate.core.engine
        assert isinstance(engine, ProcessEngine)
        limiter = engine._threads.limiter
        with anyio.fail_after(30):  # the sign-in either waits for the warm-up or starts a child
            while len(started) < 2 and limiter.statistics().tasks_waiting == 0:
                await anyio.sleep(0.01)
        release.set()
        with anyio.fail_after(60):
            while not answers:
                await anyio.sleep(0.05)
        assert answers[0].status_code == 303, answers[0].text
        assert started == [1] and len(pool._idle) == 1
        lifespan.stop.set()
    pool.close()


async def test_verify_slots_resolve_zero_by_isolation(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make_harness(verify_isolation="thread").gate.settings.verify_slots == 1
    assert make_harness(verify_concurrency=3).gate.settings.verify_slots == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    many = make_harness().gate.settings
    assert many.verify_slots == 8 == workers._MAX_IDLE_CHILDREN  # none ended after each use


def test_a_child_whose_parent_stops_listening_ends_quietly() -> None:
    """At shut-down the parent closes its pipes with a job in flight: the child's answer meets
    a broken pipe, and it must end without a traceback on the server's stderr."""
    child = subprocess.Popen(
        [sys.executable, "-c", worker_processes._CHILD_CODE, json.dumps(sys.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    assert read_frame(child.stdout) == READY
    child.stdout.close()  # the parent stops listening...
    request = pickle.dumps(("digest", None, "prepare", []))
    child.stdin.write(LENGTH.pack(len(request)) + request)  # ...with a job in flight
    child.stdin.close()
    assert child.stderr is not None
    errors = child.stderr.read()
    child.wait(60)
    assert child.returncode == 0, errors.decode()
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors, errors.decode()


def test_a_forked_process_gets_a_pool_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = workers.shared_pool()
    assert workers.shared_pool() is pool
    monkeypatch.setattr(pool, "pid", -1)  # as if this process were a fork of its creator
    assert workers.shared_pool() is not pool


_CHILD_IMPORTS = """
import json, sys
from collections import OrderedDict
from saml_gate.runtime import worker_child
from saml_gate.saml.process_policy import install_process_policy

install_process_policy()
if sys.argv[3] == "zygote":  # what a child forked by the zygote inherits
    from saml_gate.runtime.zygote import load

    load()
specs = OrderedDict()
payload = open(sys.argv[1], "rb").read()
jobs = [("prepare", []), ("authn_request", ["relay", False]), ("verify", json.loads(sys.argv[2]))]
for op, args in jobs:
    answer = worker_child._answer(specs, "d", payload, op, args)
    assert "ok" in answer, answer
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("start", ["new program", "zygote"])
async def test_a_child_imports_only_what_its_work_needs(
    harness: Harness, tmp_path: Any, start: str
) -> None:
    """A fresh child doing a sign-in's work (warm-up, AuthnRequest, verification) imports no
    pysaml2 (21 MB), no cryptography (6 MB: the IdP's keys come as PEM public keys, and
    libxmlsec signs the AuthnRequest), nothing of the app's side (the pool, anyio, Starlette,
    sessions, web); nor does one forked by the zygote, with what the zygote loaded."""
    await harness.gate.start()
    spec_file = tmp_path / "spec.pickle"
    spec_file.write_bytes(harness.gate.core.saml.work_spec.payload)
    request_id, _ = await harness.start_login()
    posted = harness.response_b64(harness.spec(in_response_to=request_id))
    verify = json.dumps([quote_plus(posted), [request_id], harness.clock.now, ""])
    done = subprocess.run(
        [sys.executable, "-c", _CHILD_IMPORTS, str(spec_file), verify, start], capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    modules = json.loads(done.stdout)
    assert "saml_gate.saml.response" in modules and "saml_gate.saml.outgoing" in modules
    unwanted = ("saml2", "starlette", "anyio", "httpx", "itsdangerous", "jwt", "subprocess")
    unwanted += ("cryptography",)
    ours = ("saml_gate.user", "saml_gate.runtime.workers", "saml_gate.saml.sp", "saml_gate.web")
    ours += ("saml_gate.runtime.worker_processes",)
    found = [m for m in modules if m.split(".")[0] in unwanted or m.startswith(ours)]
    assert found == []


async def test_the_app_process_builds_the_verifiers_only_where_it_verifies(
    make_harness: HarnessFactory,
) -> None:
    """With children doing the SAML work, the app's process builds no verifier (no libxmlsec
    keys, no XSD: about 5 MB); verifying in threads, start-up builds them."""
    children = make_harness(verify_isolation="process")
    threads = make_harness(verify_isolation="thread")
    for h in (children, threads):
        await h.gate.start()
    assert "verifier" not in vars(children.gate.core.saml.state)
    assert "logout_verifier" not in vars(children.gate.core.saml.state)
    assert {"verifier", "logout_verifier"} <= set(vars(threads.gate.core.saml.state))
    for h in (children, threads):
        await h.gate.stop()
