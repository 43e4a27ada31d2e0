"""The zygote: one process that loads the verification code once and forks every child.

A child started as a new program (``python -c``) holds its own copy of everything it imports
and builds: the interpreter's start-up heap, lxml and libxmlsec's Python side, the XSD
validators, the verifiers of each gate configuration (about 18 MB each, none of it shared).
The zygote does that work once; the children it forks share those pages copy-on-write and
hold only what their own sign-ins write (about 4 MB each). Like multiprocessing's forkserver,
it is a fresh program, not a fork of the app's process: it never holds the app's secrets, its
threads or its sessions, and it never sees a request's input (only the parent's specs).

The parent (:mod:`saml_gate.runtime.worker_processes`) starts it with one end of a Unix
socket as stdin and sends it pickled requests: ``("prepare", digest, payload)`` builds a spec
for the children to come; ``("fork", "", b"")`` forks a child and answers its pid with three
descriptors: the pipe to the child's stdin, the pipe from its stdout, and a pidfd, which lets
the parent end the child with no race on a reused pid though the zygote is its parent. The
zygote reaps its children; at end of stream (stopped, or the app's process has gone) it waits
for the last of them, then exits.

It forks only while single-threaded, with its heap frozen (``gc.freeze()``: a collection in a
child must not write to the zygote's objects). What a child needs fresh after a fork is fresh:
``random`` reseeds itself (CPython's at-fork hook), ``secrets`` reads the kernel, and OpenSSL
reseeds its generator in a new process. Linux only (pidfds); elsewhere children are started
as new programs.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import pickle
import signal
import socket
import sys
import traceback
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from saml_gate.runtime import worker_child
from saml_gate.runtime.worker_wire import READY, receive_message, send_message
from saml_gate.saml.process_policy import install_process_policy
from saml_gate.saml.schema import one_validation_at_a_time, saml_schema

if TYPE_CHECKING:
    from saml_gate.runtime.worker_child import _Jobs

__all__ = ["load", "serve"]


def serve() -> None:
    """The zygote's main loop: one request at a time from the socket on stdin."""
    gc.disable()  # no collection leaves holes in pages the children are to share
    control = socket.socket(fileno=os.dup(0))
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    os.dup2(2, 1)  # a library that prints must not write to the app's stdout
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as the children: Ctrl-C is the parent's
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:  # a kernel before 5.3: the parent starts children itself
        send_message(control, json.dumps({"unavailable": f"no pidfd ({exc})"}).encode())
        return
    load()
    specs: OrderedDict[str, _Jobs] = OrderedDict()
    send_message(control, READY)
    while (message := receive_message(control, 0)) is not None:
        op, digest, payload = pickle.loads(message[0])  # noqa: S301 (the parent's)
        if op == "prepare":
            answer = worker_child.prepare(specs, digest, payload)
            send_message(control, json.dumps({"ok": "ok" in answer}).encode())
        elif op == "fork":
            _fork(control, specs)
        else:
            send_message(control, json.dumps({"failed": f"unknown request {op!r}"}).encode())
    control.close()
    with contextlib.suppress(ChildProcessError):  # stopped: its children are theirs to reap
        while True:
            os.waitpid(-1, 0)


def load() -> None:
    """What every child would otherwise load for itself: the verification code, imported,
    and the XSD validators, built (tests/test_workers.py checks it imports nothing more)."""
    install_process_policy()
    one_validation_at_a_time()  # each child validates one document at a time
    for module in ("response", "outgoing", "logout"):
        importlib.import_module(f"saml_gate.saml.{module}")
    saml_schema()


def _fork(control: socket.socket, specs: OrderedDict[str, _Jobs]) -> None:
    """Fork a child and send the parent its pipes and its pidfd."""
    if len(os.listdir("/proc/self/task")) != 1:  # a library started a thread: fail closed
        send_message(control, json.dumps({"failed": "the zygote is not single-threaded"}).encode())
        return
    to_child, from_child = os.pipe(), os.pipe()
    gc.freeze()  # the children's collections then never touch the zygote's objects
    # SIGCHLD waits while the pidfd is opened: the child cannot be reaped, nor its pid reused
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
        if pid == 0:
            _become_child(control, to_child, from_child, specs)
        pidfd = os.pidfd_open(pid)
    except OSError as exc:  # at the process limit: no child, and the zygote goes on
        for fd in (*to_child, *from_child):
            os.close(fd)
        send_message(control, json.dumps({"failed": f"{type(exc).__name__}: {exc}"}).encode())
        return
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    os.close(to_child[0])
    os.close(from_child[1])
    parents = [to_child[1], from_child[0], pidfd]
    try:
        send_message(control, json.dumps({"pid": pid}).encode(), parents)
    finally:
        for fd in parents:
            os.close(fd)


def _become_child(
    control: socket.socket,
    to_child: tuple[int, int],
    from_child: tuple[int, int],
    specs: OrderedDict[str, _Jobs],
) -> None:
    """In the forked child: only its own pipes (stdin, stdout) and stderr stay open; then
    the child's loop. It never returns into the zygote's loop."""
    status = 1
    try:
        control.close()  # the zygote holds no other descriptor between requests
        os.dup2(to_child[0], 0)
        os.dup2(from_child[1], 1)
        for fd in (*to_child, *from_child):
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        gc.enable()
        worker_child.serve(specs)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(status)


def _reap(signum: int, frame: Any) -> None:
    """Reap every child that has ended (their parent learns it from their pipes and pidfds)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
