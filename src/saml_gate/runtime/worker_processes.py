"""How the pool gets a verification child process: forked by the zygote, or a new program.

On Linux the pool's children are forked by one zygote process
(:mod:`saml_gate.runtime.zygote`), so that they share its imports and its built verifiers
copy-on-write. The zygote is started with the first child, started again when it has died,
and replaced when one of its children failed (:meth:`Launcher.retire`).
Elsewhere (no pidfds: macOS and the BSDs, where fork itself would do, and Windows, where it
would not) each child is a new program, ``python -c`` calling
:func:`saml_gate.runtime.worker_child.serve`.

Either way a child is a :class:`ChildProcess`: its pipes, whether it is alive, and a way to end
it. Any failure to get one is :class:`WorkersUnavailable` (the gate then verifies in threads
and says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
from collections import OrderedDict
from typing import IO, Any, Final, Protocol

from saml_gate.runtime.worker_child import SPECS_PER_CHILD
from saml_gate.runtime.worker_wire import READY, receive_message, send_message

__all__ = ["ChildProcess", "Launcher", "WorkersUnavailable"]

_CHILD_CODE: Final = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]);"
    " from saml_gate.runtime.worker_child import serve; serve()"
)
_ZYGOTE_CODE: Final = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]);"
    " from saml_gate.runtime.zygote import serve; serve()"
)
FORKS: Final = sys.platform == "linux" and hasattr(signal, "pidfd_send_signal")
"""Whether children are forked by a zygote here (it needs pidfds: Linux 5.3)."""


class WorkersUnavailable(Exception):
    """No child process can be started here (no Python executable, process limits)."""


class _NoZygote(WorkersUnavailable):
    """The zygote cannot fork children here (a kernel without pidfds): spawn them instead."""


class _ZygoteGone(Exception):
    """The zygote ended (or broke its protocol) during a request: start another."""


class ChildProcess(Protocol):
    """A verification child as the pool sees it: two pipes and a process to end."""

    pid: int
    stdin: IO[bytes]
    stdout: IO[bytes]
    started_as: str
    """How it was started, for the log."""

    def alive(self) -> bool: ...

    def status(self) -> str:
        """How it ended, for the log: "status 70", or why that is not known."""
        ...

    def kill(self) -> None:
        """End it now (it holds no state; called from the event loop, so it must not wait)."""
        ...


def _python(code: str, **popen: Any) -> subprocess.Popen[bytes]:
    """``python -c code`` with this process's import path."""
    if os.name != "posix":  # non-blocking pipes in the event loop are POSIX-only
        raise WorkersUnavailable(f"child processes are not supported on {sys.platform}")
    if not sys.executable:
        raise WorkersUnavailable("sys.executable is empty")
    try:
        return subprocess.Popen(  # noqa: S603 (our own code, no shell)
            [sys.executable, "-c", code, json.dumps(sys.path)], close_fds=True, **popen
        )
    except OSError as exc:
        raise WorkersUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _exited_at_start(process: subprocess.Popen[bytes]) -> WorkersUnavailable:
    _end(process)
    return WorkersUnavailable(f"{sys.executable} -c ... exited at start (status {process.wait()})")


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


class Spawned:
    """A child started as a new program (where there is no zygote)."""

    def __init__(self) -> None:
        self._popen = _python(_CHILD_CODE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self.pid, self.stdin, self.stdout = self._popen.pid, self._popen.stdin, self._popen.stdout
        self.started_as = f"{sys.executable} -c ..."

    def alive(self) -> bool:
        return self._popen.poll() is None

    def status(self) -> str:
        return f"status {self._popen.poll()}"

    def kill(self) -> None:
        _end(self._popen)


class Forked:
    """A child forked by the zygote: its parent is the zygote, which reaps it; this process
    ends it through its pidfd, which never names another process."""

    def __init__(
        self, generation: int, pid: int, to_child: int, from_child: int, pidfd: int
    ) -> None:
        self.generation = generation
        """Which of the pool's zygotes forked it (see :meth:`Launcher.retire`)."""
        for fd in (to_child, from_child, pidfd):  # received as inheritable: no program run
            os.set_inheritable(fd, False)  # by this process may hold a child's pipe open
        self.pid, self._pidfd = pid, pidfd
        self.started_as = "a child forked by the zygote"
        self.stdin: IO[bytes] = os.fdopen(to_child, "wb")
        self.stdout: IO[bytes] = os.fdopen(from_child, "rb")

    def alive(self) -> bool:
        if self._pidfd < 0:
            return False
        ended = select.poll()  # not select(): the server's descriptors may number over 1024
        ended.register(self._pidfd, select.POLLIN)  # readable once it has exited
        return not ended.poll(0)

    def status(self) -> str:
        return "its status goes to the zygote"

    def kill(self) -> None:
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            os.close(self._pidfd)
            self._pidfd = -1


class _Zygote:
    """The app's side of a zygote process: one request at a time (the caller holds a lock)."""

    def __init__(self, generation: int) -> None:
        """Start it and wait until it has loaded the verification code (blocking)."""
        self.generation = generation
        self._socket, theirs = socket.socketpair()
        try:
            self._process = _python(_ZYGOTE_CODE, stdin=theirs)
        except WorkersUnavailable:
            self._socket.close()
            raise
        finally:
            theirs.close()
        first = receive_message(self._socket, 0)
        if first is None or first[0] != READY:
            self._socket.close()
            if first is None:
                raise _exited_at_start(self._process)
            _end(self._process)
            raise _NoZygote(first[0].decode(errors="replace"))

    def prepare(self, digest: str, payload: bytes) -> None:
        self._ask("prepare", digest, payload)

    def fork(self) -> Forked:
        answer, fds = self._ask("fork", "", b"")
        if isinstance(answer.get("pid"), int) and len(fds) == 3:
            return Forked(self.generation, answer["pid"], *fds)
        for fd in fds:
            os.close(fd)
        raise WorkersUnavailable(f"the zygote could not fork a child: {answer.get('failed')}")

    def _ask(self, op: str, digest: str, payload: bytes) -> tuple[dict[str, Any], list[int]]:
        try:
            send_message(self._socket, pickle.dumps((op, digest, payload)))
            message = receive_message(self._socket, 3)
        except OSError as exc:
            raise _ZygoteGone(f"{type(exc).__name__}: {exc}") from exc
        if message is None:
            raise _ZygoteGone(f"it exited (status {self._process.poll()})")
        try:
            answer = json.loads(message[0])
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            for fd in message[1]:
                os.close(fd)
            raise _ZygoteGone("it answered something other than a JSON object")
        return answer, message[1]

    def stop(self) -> None:
        """Fork no more: at end of stream it waits for its children to end (at the end of
        their own streams, or ended by the pool), reaps them, and exits. Not killed: its
        children would be left to whatever reaps orphans (where the app is a container's
        first process, nothing would)."""
        self._socket.close()

    def ended(self) -> bool:
        """Whether it has exited (and then reaped, by this call)."""
        return self._process.poll() is not None

    def end(self, timeout: float) -> None:
        """Wait for it to exit once stopped; killed after ``timeout`` seconds."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)
        _end(self._process)


class Launcher:
    """Starts one pool's children: forked by its zygote where there can be one, else as new
    programs. Thread-safe: children are started in worker threads."""

    def __init__(self, *, forks: bool | None = None) -> None:
        self._lock = threading.Lock()
        self._forks = FORKS if forks is None else forks
        self._zygote: _Zygote | None = None
        self._generation = 0
        self._stopped: list[_Zygote] = []
        """Zygotes stopped, not yet exited: they wait for their last children."""
        self._prepared: OrderedDict[str, bytes] = OrderedDict()
        """The specs built in the zygote, built again in a zygote started after it died."""

    @property
    def zygote_pid(self) -> int | None:
        """The zygote's process id, while there is one."""
        zygote = self._zygote
        return None if zygote is None else zygote._process.pid

    def start(self) -> ChildProcess:
        """A new child (blocking: call it in a thread)."""
        if not self._forks:
            return Spawned()
        with self._lock:
            try:
                return self._running().fork()
            except _NoZygote:
                self._forks = False
                return Spawned()
            except _ZygoteGone:  # it died since the last child: once more, with a new one
                self._end_zygote()
            try:
                return self._running().fork()
            except _ZygoteGone as exc:
                self._end_zygote()
                raise WorkersUnavailable(f"the zygote failed: {exc}") from exc

    def retire(self) -> None:
        """Fork no more children from this zygote, and have the pool end those it forked
        (without waiting: the zygote is replaced at the next child's start).

        Called when a child failed. Hostile input may have crashed it on purpose, and a
        zygote's children share its address-space layout and stack canary: each crash would
        tell an attacker something about the next child's. A new zygote is a new program,
        with a new layout and canary, as every child was when each was a new program.
        """
        self._generation += 1

    def current(self, process: ChildProcess) -> bool:
        """False for a child of a retired zygote: the pool ends it instead of reusing it."""
        return not isinstance(process, Forked) or process.generation == self._generation

    def prepare(self, digest: str, payload: bytes) -> None:
        """Have the zygote build this spec, so that the children share it (blocking)."""
        if not self._forks:
            return
        with self._lock:
            self._prepared[digest] = payload
            self._prepared.move_to_end(digest)
            while len(self._prepared) > SPECS_PER_CHILD:
                self._prepared.popitem(last=False)
            try:
                self._running().prepare(digest, payload)
            except _NoZygote:
                self._forks = False
            except _ZygoteGone:  # the next child's start starts another
                self._end_zygote()

    def close(self) -> None:
        """Stop the zygote and wait for the stopped ones (after the pool ended its children)."""
        with self._lock:
            self._end_zygote()
            for zygote in self._stopped:
                zygote.end(timeout=5)
            self._stopped = []

    def _running(self) -> _Zygote:
        """The zygote, started (with the specs it had built) if there is none or it retired."""
        if self._zygote is not None and self._zygote.generation != self._generation:
            self._end_zygote()
        if self._zygote is None:
            zygote = _Zygote(self._generation)
            try:
                for digest, payload in self._prepared.items():
                    zygote.prepare(digest, payload)
            except _ZygoteGone as exc:
                zygote.stop()
                zygote.end(timeout=0)
                raise WorkersUnavailable(f"the zygote failed: {exc}") from exc
            self._zygote = zygote
        return self._zygote

    def _end_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.stop()
            self._stopped.append(self._zygote)
            self._zygote = None
        self._stopped = [zygote for zygote in self._stopped if not zygote.ended()]
