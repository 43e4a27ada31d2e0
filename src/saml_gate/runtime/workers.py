"""Child processes that do the gate's CPU-heavy SAML work off the app's process.

Verifying a Response or reading a logout message (lxml, XSD, libxmlsec) and building an
AuthnRequest or logout message take 0.1-1 ms of CPU each, much of it holding the GIL.
Done in threads of the app's process, a sign-in storm makes the event loop's thread wait for the
GIL behind them, and every request of every signed-in user gets slower (the benchmark's storm
section measured it). In a child process the loop only waits for a pipe. It also contains the
damage when hostile input crashes a C library: a child ends, not the app server.

The parent talks to a child over non-blocking pipes from the event loop itself: no thread hop,
so no GIL hand-over between threads either (with threads, each hop waited for the GIL behind a
busy loop). A child serves one call at a time; children are not bound to a loop.

This module is the parent's side (the pool); how a child is started (forked by the zygote, or a
new program) is :mod:`saml_gate.runtime.worker_processes`, the child's side is
:mod:`saml_gate.runtime.worker_child`, and what crosses the pipes is
:mod:`saml_gate.runtime.worker_wire`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from saml_gate.config.ops_settings import AUTO_CHILDREN_AT_MOST
from saml_gate.errors import GateError, is_error_code
from saml_gate.runtime.worker_processes import ChildProcess, Launcher, WorkersUnavailable
from saml_gate.runtime.worker_wire import LENGTH, READY, WorkerFailed, no_clock, read_frame

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.idp import IdpInfo
    from saml_gate.saml.pem_keys import SpKeys

__all__ = ["WorkSpec", "WorkerFailed", "WorkerPool", "WorkersUnavailable", "shared_pool"]

log = logging.getLogger("saml_gate")
_T = TypeVar("_T")

_MAX_IDLE_CHILDREN = AUTO_CHILDREN_AT_MOST


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
            settings,
            secret_key=(),
            clock=no_clock,
            on_event=(),
            on_error=None,
            metrics_registry=None,
        )
        payload = pickle.dumps((portable, idp, keys), protocol=pickle.HIGHEST_PROTOCOL)
        return cls(hashlib.sha256(payload).hexdigest(), payload)


def _as_is(answer: Any) -> Any:
    return answer


# ---------------------------------------------------------------------------------- the parent
class _Child:
    """One child process, used by one task at a time over non-blocking pipes."""

    def __init__(self, start: Callable[[], ChildProcess]) -> None:
        """Start it and wait until it has imported the gate (blocking: call it in a thread)."""
        self.process = start()
        self._to, self._from = self.process.stdin, self.process.stdout
        self._specs: set[str] = set()
        self._buffer = bytearray()
        self._owed = 0
        """Answers still to come for calls whose callers were cancelled."""
        self.torn = False
        """A request was cut half-way by a cancellation: the child can no longer be used."""
        if read_frame(self._from) != READY:  # it could not even import the gate
            self.close()
            raise WorkersUnavailable(
                f"{self.process.started_as} exited at start ({self.process.status()})"
            )
        os.set_blocking(self._to.fileno(), False)
        os.set_blocking(self._from.fileno(), False)

    async def call(self, spec: WorkSpec, op: str, args: list[Any]) -> Any:
        """The child's result (JSON, unchecked); its refusal as a GateError."""
        payload = None if spec.digest in self._specs else spec.payload
        answer = await self._exchange(spec.digest, payload, op, args)
        if answer.get("need_spec"):  # the child dropped it from its cache
            answer = await self._exchange(spec.digest, spec.payload, op, args)
        self._specs.add(spec.digest)
        if "ok" in answer:
            return answer["ok"]
        if "error" in answer and is_error_code(answer["error"]):
            raise GateError(answer["error"], str(answer.get("detail", "")))
        raise WorkerFailed(str(answer.get("failed", "an unexpected answer")))

    async def _exchange(self, digest: str, payload: bytes | None, op: str, args: list[Any]) -> Any:
        request = pickle.dumps((digest, payload, op, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.torn = True  # until the whole request is written: cancelled before, unusable
            await self._send(LENGTH.pack(len(request)) + request)
            self.torn = False
            self._owed += 1
            while self._owed > 1:  # a cancelled caller's answer comes first
                await self._receive_frame()
                self._owed -= 1
            answer = await self._receive_frame()
            self._owed -= 1
        except OSError as exc:
            raise WorkerFailed(f"the worker process is gone ({type(exc).__name__})") from exc
        try:
            decoded = json.loads(answer)
        except ValueError as exc:
            raise WorkerFailed("the worker answered something other than JSON") from exc
        if not isinstance(decoded, dict):
            raise WorkerFailed("the worker answered something other than a JSON object")
        return decoded

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
        cancelled while waiting leaves it intact for the next.

        It waits for the pipe before reading it: an answer is never there the moment its
        request is written, and a read that finds nothing costs a system call and an exception.
        """
        fd = self._from.fileno()
        while True:
            if len(self._buffer) >= LENGTH.size:
                (size,) = LENGTH.unpack_from(self._buffer)
                if len(self._buffer) >= LENGTH.size + size:
                    frame = bytes(self._buffer[LENGTH.size : LENGTH.size + size])
                    del self._buffer[: LENGTH.size + size]
                    return frame
            await anyio.wait_readable(fd)
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:  # a spurious wake-up
                continue
            if not chunk:
                raise WorkerFailed(f"the worker process exited ({self.process.status()})")
            self._buffer += chunk

    def alive(self) -> bool:
        return self.process.alive()

    def close(self) -> None:
        """End it now (it holds no state; called from the event loop, so it must not wait)."""
        with contextlib.suppress(OSError):
            self._to.close()
        self._from.close()
        self.process.kill()


class WorkerPool:
    """Child processes lent to one task at a time; started on demand, reused, replaced.

    The callers bound how many run at once (each gate's verify_concurrency limiter), so the pool
    holds as many children as were ever busy at once, and keeps up to a few idle.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self.pid = os.getpid()
        self.launcher = Launcher()

    async def run(self, spec: WorkSpec, op: str, *args: Any) -> Any:
        """Do ``op`` for ``spec`` in a child: its answer as JSON decoded, unchecked."""
        return await self.ask(spec, _as_is, op, *args)

    async def ask(self, spec: WorkSpec, read: Callable[[Any], _T], op: str, *args: Any) -> _T:
        """Do ``op`` for ``spec`` in a child; its answer as ``read`` checks and rebuilds it.

        Raises GateError as the work would have, or WorkerFailed if the child died (a crash on
        this input) or ``read`` refused its answer: the child is not reused and the work is not
        retried. A call cancelled while it waits leaves its answer to be skipped by the next
        caller.
        """
        child = self._take_idle()
        if child is None:
            child = await anyio.to_thread.run_sync(_Child, self.launcher.start)
        try:
            result = read(await child.call(spec, op, list(args)))
        except WorkerFailed:
            child.close()
            self.launcher.retire()  # its siblings are not reused, nor its zygote
            raise
        except BaseException:  # GateError, or cancelled
            self._give_back(child)
            raise
        self._give_back(child)
        return result

    async def warm(self, spec: WorkSpec, count: int) -> None:
        """Have ``count`` children started, with ``spec`` built in each, before any sign-in
        (built first in the zygote, where there is one: the children then share it)."""
        await anyio.to_thread.run_sync(self.launcher.prepare, spec.digest, spec.payload)
        leased: list[_Child] = []
        try:
            for _ in range(count):
                child = self._take_idle()
                if child is None:
                    child = await anyio.to_thread.run_sync(_Child, self.launcher.start)
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
        self.launcher.close()

    def _take_idle(self) -> _Child | None:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive() and self.launcher.current(child.process):
                    return child
                child.close()
        return None

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if (
                not child.torn
                and len(self._idle) < _MAX_IDLE_CHILDREN
                and os.getpid() == self.pid
                and self.launcher.current(child.process)
            ):
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
