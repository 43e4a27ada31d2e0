"""A uvicorn server for the HTTP sections: a small Starlette app, bare or behind the gate.

    python benchmarks/bench_server.py --port 8123 --options options.json [--gated] [--monitor]
        [--stack h11|fast]

``--stack``: h11 and the asyncio loop (what a plain ``pip install uvicorn`` runs) or uvicorn's
fast stack (httptools and uvloop: what uvicorn picks when they are installed, as saml-gate's
dependencies and ``uvicorn[standard]`` install them).

With ``--monitor`` the event loop is instrumented: every callback the loop runs is timed (the
loop is blocked for exactly that long), in wall time and in this thread's CPU time (the
difference is time the process waited for a CPU), and a probe task measures how late a 2 ms
sleep wakes up. ``GET /_bench/loop`` returns both and starts a new measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from saml_gate import SamlGate

STACKS = {"h11": ("h11", "asyncio"), "fast": ("httptools", "uvloop")}
"""uvicorn's HTTP implementation and event loop for each ``--stack``."""

BLOCKED = 0.005
"""The target: the loop is never blocked longer than this."""


class LoopMonitor:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.callbacks = 0
        self.longest = 0.0
        self.longest_what = ""
        self.longest_cpu = 0.0
        self.most_cpu = 0.0
        self.over = 0
        self.lags: list[float] = []
        self.gc_longest = 0.0
        self._gc_start = 0.0

    def install(self) -> None:
        """Time every ``Handle._run`` (callbacks, task steps, I/O callbacks) in this process."""
        original = asyncio.events.Handle._run
        monitor = self

        def timed_run(handle: asyncio.events.Handle) -> None:
            start, start_cpu = time.perf_counter(), time.thread_time()
            original(handle)
            took, took_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
            monitor.callbacks += 1
            monitor.most_cpu = max(monitor.most_cpu, took_cpu)
            if took > monitor.longest:
                monitor.longest = took
                monitor.longest_cpu = took_cpu
                owner = getattr(handle._callback, "__self__", None)  # a task's step: the task
                monitor.longest_what = repr(handle if owner is None else owner)[:300]
            if took > BLOCKED:
                monitor.over += 1

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Garbage collection stops every thread: time each pass."""
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_longest = max(self.gc_longest, time.perf_counter() - self._gc_start)

    async def probe(self) -> None:
        """How late does a 2 ms sleep return? (Queueing behind other work counts too.)"""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.002)
            self.lags.append(time.perf_counter() - start - 0.002)

    def snapshot(self) -> dict[str, Any]:
        lags = sorted(self.lags) or [0.0]
        result = {
            "callbacks": self.callbacks,
            "longest_callback_ms": self.longest * 1e3,
            "callbacks_over_5ms": self.over,
            "longest_callback": self.longest_what,
            "longest_callback_cpu_ms": self.longest_cpu * 1e3,
            "most_cpu_ms": self.most_cpu * 1e3,
            "longest_gc_ms": self.gc_longest * 1e3,
            "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))] * 1e3,
            "lag_max_ms": lags[-1] * 1e3,
        }
        self.reset()
        return result


def build_app(monitor: LoopMonitor | None) -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    async def loop_stats(request: Request) -> Response:
        if monitor is None:
            return JSONResponse({"error": "started without --monitor"}, status_code=404)
        return JSONResponse(monitor.snapshot())

    return Starlette(
        routes=[Route("/hello", hello), Route("/page", hello), Route("/_bench/loop", loop_stats)]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--options", type=Path, required=True, help="gate options (JSON)")
    parser.add_argument("--gated", action="store_true")
    parser.add_argument("--monitor", action="store_true")
    parser.add_argument("--stack", choices=sorted(STACKS), default="h11")
    args = parser.parse_args()
    http, loop = STACKS[args.stack]
    logging.getLogger("saml_gate").setLevel(logging.ERROR)
    monitor = LoopMonitor() if args.monitor else None
    app: Any = build_app(monitor)
    if args.gated:
        app = SamlGate(app, **json.loads(args.options.read_text()))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, http=http
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        if monitor is not None:
            monitor.install()
            probe = asyncio.create_task(monitor.probe())
        await server.serve()
        if monitor is not None:
            probe.cancel()

    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve())
    else:
        asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
