"""Child processes that do the gate's CPU-heavy SAML work off the app's process.

Verifying a Response (lxml, XSD, libxmlsec) and building an AuthnRequest (pysaml2) take
0.1-1 ms of CPU each, much of it holding the GIL. Done in threads of the app's process, a
sign-in storm makes the event loop's thread wait for the GIL behind them, and every request of
every signed-in user gets slower (the benchmark's storm section measured it). In a child process
the loop only waits for a pipe. It also contains the damage when hostile input crashes a C
library: a child ends, not the app server.

The parent talks to a child over non-blocking pipes from the event loop itself: no thread hop,
so no GIL hand-over between threads either (with threads, each hop waited for the GIL behind a
busy loop). A child serves one call at a time; children are not bound to a loop. Requests go to
the child as pickles (the parent is trusted); answers come back as JSON, so a child that
hostile input took over cannot run code in the app's process by what it answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread

from saml_gate.errors import GateError
from saml_gate.web.forms import decode_form_value

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.idp import IdpInfo
    from saml_gate.saml.response import ResponseVerifier, VerifiedLogin
    from saml_gate.saml.sp import ServiceProvider, SpKeys

log = logging.getLogger("saml_gate")

_LENGTH = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024
_SPECS_PER_CHILD = 8
"""Gate configurations a child keeps built (each a verifier and a pysaml2 client)."""
_MAX_IDLE_CHILDREN = 8
_CHILD_CODE = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]);"
    " from saml_gate.runtime.workers import serve; serve()"
)


class WorkerFailed(Exception):
    """A child could not do the work: it exited (crashed) or answered something unexpected."""


class WorkersUnavailable(Exception):
    """No child process can be started here (no Python executable, process limits)."""


# ---------------------------------------------------------------------------------- the wire
def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at end of stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > _MAX_FRAME:
        raise WorkerFailed(f"frame of {size} bytes")
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def login_to_wire(login: VerifiedLogin) -> dict[str, Any]:
    wire = {f.name: getattr(login, f.name) for f in dataclasses.fields(login)}
    wire["attributes"] = {k: list(v) for k, v in login.attributes.items()}
    for name in ("authn_instant", "session_not_on_or_after"):
        value = wire[name]
        wire[name] = value.isoformat() if value is not None else None
    return wire


def login_from_wire(wire: dict[str, Any]) -> VerifiedLogin:
    from saml_gate.saml.response import VerifiedLogin

    values = dict(wire)
    values["attributes"] = MappingProxyType(
        {str(k): tuple(str(v) for v in vs) for k, vs in wire["attributes"].items()}
    )
    for name in ("authn_instant", "session_not_on_or_after"):
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return VerifiedLogin(**values)


# ---------------------------------------------------------------------------------- what to do
@dataclass(frozen=True)
class WorkSpec:
    """Everything a child needs to work for one gate configuration, pickled once."""

    digest: str
    payload: bytes

    @classmethod
    def of(cls, settings: GateSettings, idp: IdpInfo, keys: SpKeys) -> WorkSpec:
        # Python objects given as settings (clock, hooks, metrics) stay in the app's process (the
        # child is always told the time), and so does the cookie secret: the child needs none.
        portable = dataclasses.replace(
            settings, secret_key=(), clock=_no_clock, on_event=(), metrics_registry=None
        )
        payload = pickle.dumps((portable, idp, keys), protocol=pickle.HIGHEST_PROTOCOL)
        return cls(hashlib.sha256(payload).hexdigest(), payload)


def _no_clock() -> float:
    raise RuntimeError("a verification worker has no clock: the time is passed in")


class _Jobs:
    """A child's verifier and pysaml2 client for one spec, each built on first use."""

    def __init__(self, payload: bytes) -> None:
        self.settings, self.idp, self.keys = pickle.loads(payload)  # noqa: S301 (the parent's)

    @cached_property
    def verifier(self) -> ResponseVerifier:
        from saml_gate.saml.response import ResponseVerifier

        return ResponseVerifier(self.settings, self.idp, self.keys.key_pem)

    @cached_property
    def sp(self) -> ServiceProvider:
        from saml_gate.saml.sp import ServiceProvider

        return ServiceProvider(self.settings, self.idp, self.keys)

    def verify(
        self, posted_value: str, expected: list[str], now: float, client_address: str
    ) -> dict[str, Any]:
        """Decode the form value as posted, then verify the Response."""
        saml_response = decode_form_value(posted_value)
        login = self.verifier.verify(
            saml_response,
            expected_request_ids=set(expected),
            now=now,
            client_address=client_address,
        )
        return login_to_wire(login)

    def authn_request(self, relay_state: str, force_authn: bool) -> list[str]:
        return list(self.sp.authn_request_url(relay_state, force_authn=force_authn))

    def prepare(self) -> None:
        """Build both now (the parent warms children at start-up)."""
        assert self.verifier is not None and self.sp is not None


OPERATIONS: Final = frozenset({"verify", "authn_request", "prepare"})


def serve() -> None:
    """A child's main loop: one request at a time from stdin, one answer each to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; we end at EOF
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the answers
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)

    gc.freeze()
    _write_frame(answers, b'{"ready": true}')
    specs: OrderedDict[str, _Jobs] = OrderedDict()
    while (frame := _read_frame(requests)) is not None:
        digest, payload, op, args = pickle.loads(frame)  # noqa: S301 (the parent's)
        _write_frame(answers, json.dumps(_answer(specs, digest, payload, op, args)).encode())


def _answer(
    specs: OrderedDict[str, _Jobs], digest: str, payload: bytes | None, op: str, args: list[Any]
) -> dict[str, Any]:
    jobs = specs.get(digest)
    if jobs is None:
        if payload is None:
            return {"need_spec": True}
        jobs = specs[digest] = _Jobs(payload)
        if len(specs) > _SPECS_PER_CHILD:
            specs.popitem(last=False)
    specs.move_to_end(digest)
    if op not in OPERATIONS:
        return {"failed": f"unknown operation {op!r}"}
    try:
        return {"ok": getattr(jobs, op)(*args)}
    except GateError as error:
        return {"error": error.code, "detail": error.detail}
    except Exception as exc:  # reported to the parent, which logs it
        where = traceback.extract_tb(exc.__traceback__)[-1]
        where_text = f"{Path(where.filename).name}:{where.lineno}"
        return {"failed": f"{type(exc).__name__} at {where_text}"}


# ---------------------------------------------------------------------------------- the parent
class _Child:
    """One child process, used by one task at a time over non-blocking pipes."""

    def __init__(self) -> None:
        """Start it and wait until it has imported the gate (blocking: call it in a thread)."""
        if os.name != "posix":  # non-blocking pipes in the event loop are POSIX-only
            raise WorkersUnavailable(f"child processes are not supported on {sys.platform}")
        if not sys.executable:
            raise WorkersUnavailable("sys.executable is empty")
        try:
            self.process = subprocess.Popen(  # noqa: S603 (our own code, no shell)
                [sys.executable, "-c", _CHILD_CODE, json.dumps(sys.path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            raise WorkersUnavailable(f"{type(exc).__name__}: {exc}") from exc
        assert self.process.stdin is not None and self.process.stdout is not None
        self._to, self._from = self.process.stdin, self.process.stdout
        self._specs: set[str] = set()
        self._buffer = bytearray()
        self._owed = 0
        """Answers still to come for calls whose callers were cancelled."""
        self.torn = False
        """A request was cut half-way by a cancellation: the child can no longer be used."""
        if _read_frame(self._from) != b'{"ready": true}':  # it could not even import the gate
            self.close()
            raise WorkersUnavailable(
                f"{sys.executable} -c ... exited at start (status {self.process.returncode})"
            )
        os.set_blocking(self._to.fileno(), False)
        os.set_blocking(self._from.fileno(), False)

    async def call(self, spec: WorkSpec, op: str, args: list[Any]) -> Any:
        payload = None if spec.digest in self._specs else spec.payload
        answer = await self._exchange(spec.digest, payload, op, args)
        if answer.get("need_spec"):  # the child dropped it from its cache
            answer = await self._exchange(spec.digest, spec.payload, op, args)
        self._specs.add(spec.digest)
        if "ok" in answer:
            return answer["ok"]
        if "error" in answer:
            raise GateError(str(answer["error"]), str(answer.get("detail", "")))
        raise WorkerFailed(str(answer.get("failed", "an unexpected answer")))

    async def _exchange(self, digest: str, payload: bytes | None, op: str, args: list[Any]) -> Any:
        request = pickle.dumps((digest, payload, op, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.torn = True  # until the whole request is written: cancelled before, unusable
            await self._send(_LENGTH.pack(len(request)) + request)
            self.torn = False
            self._owed += 1
            while self._owed > 1:  # a cancelled caller's answer comes first
                await self._receive_frame()
                self._owed -= 1
            answer = await self._receive_frame()
            self._owed -= 1
        except OSError as exc:
            raise WorkerFailed(f"the worker process is gone ({type(exc).__name__})") from exc
        return json.loads(answer)

    async def _send(self, data: bytes) -> None:
        view = memoryview(data)
        fd = self._to.fileno()
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await anyio.wait_writable(fd)

    async def _receive_frame(self) -> bytes:
        """The next answer; the buffer is only consumed whole frames at a time, so a caller
        cancelled while waiting leaves it intact for the next."""
        fd = self._from.fileno()
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (size,) = _LENGTH.unpack_from(self._buffer)
                if len(self._buffer) >= _LENGTH.size + size:
                    frame = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
                    del self._buffer[: _LENGTH.size + size]
                    return frame
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                await anyio.wait_readable(fd)
                continue
            if not chunk:
                raise WorkerFailed(f"the worker process exited (status {self.process.poll()})")
            self._buffer += chunk

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """End it now (it holds no state; called from the event loop, so it must not wait)."""
        with contextlib.suppress(OSError):
            self._to.close()
        self._from.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Child processes lent to one task at a time; started on demand, reused, replaced.

    The callers bound how many run at once (each gate's verify_concurrency limiter), so the pool
    holds as many children as were ever busy at once, and keeps up to a few idle.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self.pid = os.getpid()

    async def run(self, spec: WorkSpec, op: str, *args: Any) -> Any:
        """Do ``op`` for ``spec`` in a child.

        Raises GateError as the work would have, or WorkerFailed if the child died (a crash on
        this input: the child is not reused and the work is not retried). A call cancelled while
        it waits leaves its answer to be skipped by the next caller.
        """
        child = self._take_idle()
        if child is None:
            child = await anyio.to_thread.run_sync(_Child)
        try:
            result = await child.call(spec, op, list(args))
        except WorkerFailed:
            child.close()
            raise
        except BaseException:  # GateError, or cancelled
            self._give_back(child)
            raise
        self._give_back(child)
        return result

    async def warm(self, spec: WorkSpec, count: int) -> None:
        """Have ``count`` children started, with ``spec`` built in each, before any sign-in."""
        leased: list[_Child] = []
        try:
            for _ in range(count):
                child = self._take_idle()
                if child is None:
                    child = await anyio.to_thread.run_sync(_Child)
                leased.append(child)
                await child.call(spec, "prepare", [])
        finally:
            for child in leased:
                self._give_back(child)  # a dead one is dropped when next taken

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def _take_idle(self) -> _Child | None:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                child.close()
        return None

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not child.torn and len(self._idle) < _MAX_IDLE_CHILDREN and os.getpid() == self.pid:
                self._idle.append(child)
                return
        child.close()


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """This process's pool (every gate in it shares one; a forked process gets its own)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = WorkerPool()
        return _shared
