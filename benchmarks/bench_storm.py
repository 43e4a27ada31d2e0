"""Section 4: event-loop health while sign-ins (or bogus ACS posts) pour in.

One gated uvicorn server with an instrumented loop (bench_server.py ``--monitor``). A probe
process sends authenticated GETs one at a time and records their latency: first alone (idle),
then while a storm process runs 50 concurrent sign-ins (each a GET that starts a sign-in, then
a POST of a freshly signed Response to the ACS), then while 50 connections send plain
authenticated GETs at the request rate the sign-ins reached (context: what that much traffic
costs the probe on this machine without any sign-in work), then while another process floods
the ACS with bogus posts (forged signatures, junk, oversize). The server reports its longest
loop callback, and how much of it was CPU time.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench_common import Budget, Report, Row, World
from bench_http import HERE, server, session_cookie

SECTION = "4 loop"
CONCURRENCY = 50


class Child:
    """A bench_load.py process driven by lines on its stdin."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "bench_load.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._read()
        if line != "ready":
            raise RuntimeError(f"bench_load.py {args[0]} did not start: {line!r}")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        line = self._read()
        self.process.wait(60)
        if self.process.returncode != 0 or not line:
            raise RuntimeError(f"bench_load.py failed (exit {self.process.returncode})")
        return dict(json.loads(line))


def loop_stats(port: int, cookie: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_bench/loop", headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def phase(
    port: int, cookie: str, load: list[str] | None, idle_seconds: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(probe latencies, loop stats, load result) for one phase: ``load`` is the arguments of
    a bench_load.py process to run meanwhile, or None to measure the idle server."""
    storm = Child(*load, "--port", str(port)) if load is not None else None
    probe = Child("probe", "--port", str(port), "--cookie", cookie)
    loop_stats(port, cookie)  # start a fresh measurement
    probe.say("go")
    if storm is None:
        time.sleep(idle_seconds)
    else:
        storm.say("go")
        storm_result = storm.result()
    probe.say("stop")
    latencies = probe.result()
    return latencies, loop_stats(port, cookie), storm_result if storm else None


Best = dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]]
PHASES = ("idle", "logins", "paced", "bogus")
"""Each round, in this order ("paced" runs at the request rate "logins" reached)."""
ISOLATIONS = ("process", "thread")
"""verify_isolation values compared; the first is the default, and only its rows have targets."""


def measure(
    budget: Budget, world: World, world_file: Path, isolation: str
) -> tuple[Best, dict[str, Counter[str]]]:
    """Each phase's best round (lowest probe p99), and every round's answers."""
    logins, bogus = budget.n(3000, 100), budget.n(6000, 200)
    best: Best = {}
    answers: dict[str, Counter[str]] = {"logins": Counter(), "bogus": Counter()}
    with server(world, gated=True, monitor=True, verify_isolation=isolation) as srv:
        for _ in range(max(1, budget.rounds - 2)):
            cookie = session_cookie(world)
            for name in PHASES:
                seconds = 1.0 if budget.quick else 3.0
                if name == "paced":  # the sign-in storm's request rate, as plain GETs
                    storm = best["logins"][2]
                    assert storm is not None
                    load = ["paced", "--cookie", cookie, "--connections", str(CONCURRENCY),
                            "--rate", str(2 * storm["per_second"]),
                            "--seconds", str(min(storm["seconds"], 10.0))]  # fmt: skip
                elif name == "idle":
                    load = None
                else:
                    load = ["storm", "--world", str(world_file), "--kind", name,
                            "--count", str(logins if name == "logins" else bogus),
                            "--connections", str(CONCURRENCY)]  # fmt: skip
                result = phase(srv.port, cookie, load, seconds)
                if name in answers and result[2] is not None:  # every round's answers count
                    answers[name].update(result[2]["statuses"])
                if name not in best or result[0]["p99_ms"] < best[name][0]["p99_ms"]:
                    best[name] = result
    return best, answers


def run(budget: Budget, report: Report, world: World) -> None:
    folder = Path(tempfile.mkdtemp(prefix="saml-gate-bench-storm-"))
    world_file = folder / "world.pickle"
    world_file.write_bytes(pickle.dumps(world))
    for isolation in ISOLATIONS:
        best, answers = measure(budget, world, world_file, isolation)
        add_rows(report, best, answers, isolation, targets=isolation == ISOLATIONS[0])


def add_rows(
    report: Report,
    best: Best,
    answers: dict[str, Counter[str]],
    isolation: str,
    *,
    targets: bool,
) -> None:
    def row(what: str, figure: str, target: str, met: bool, note: str) -> Row:
        what = f"{what} ({isolation})"
        return (
            Row(SECTION, what, figure, target, met, note)
            if targets
            else Row(SECTION, what, figure, note=note)
        )

    idle_p99 = best["idle"][0]["p99_ms"]
    label = {
        "idle": "idle",
        "logins": "50 concurrent sign-ins",
        "paced": "plain GETs at the sign-ins' request rate",
        "bogus": "bogus-ACS flood",
    }
    for name, (probe, loop, load) in best.items():
        what = f"authenticated GET p99, {label[name]}"
        if load is None:
            report.add(
                Row(SECTION, f"{what} ({isolation})", f"{probe['p99_ms']:.2f} ms",
                    note=_probe_note(probe))
            )  # fmt: skip
        elif name == "paced":  # context: what the same request rate costs without sign-ins
            report.add(
                Row(
                    SECTION,
                    f"{what} ({isolation})",
                    f"{probe['p99_ms']:.2f} ms ({probe['p99_ms'] / idle_p99:.2f}x idle)",
                    note=f"{_probe_note(probe)}; {load['per_second']:,.0f} GETs/s on"
                    f" {CONCURRENCY} connections, no sign-in work",
                )
            )
        else:
            wanted = "303" if name == "logins" else "4xx"
            unexpected = {k: v for k, v in answers[name].items() if not _matches(k, wanted)}
            report.add(
                row(
                    f"{label[name]}: every answer as expected",
                    f"{answers[name].total() - sum(unexpected.values()):,}"
                    f" of {answers[name].total():,}",
                    f"all {wanted}",
                    not unexpected,
                    f"unexpected: {unexpected}" if unexpected else "",
                )
            )
            ratio = probe["p99_ms"] / idle_p99
            report.add(
                row(
                    what,
                    f"{probe['p99_ms']:.2f} ms ({ratio:.2f}x idle)",
                    "≤ 2x idle",
                    ratio <= 2,
                    f"{_probe_note(probe)}; {load['per_second']:,.0f} posts/s,"
                    f" statuses {load['statuses']}",
                )
            )
        longest = (
            f"longest loop callback, {label[name]}",
            f"{loop['longest_callback_ms']:.2f} ms",
            "≤ 5 ms",
            loop["longest_callback_ms"] <= 5,
            f"{loop['callbacks_over_5ms']} of {loop['callbacks']:,} over 5 ms; it ran on the CPU"
            f" {loop['longest_callback_cpu_ms']:.2f} ms of that (the rest the process waited"
            f" for a CPU); most CPU time of any callback {loop['most_cpu_ms']:.2f} ms;"
            f" longest GC pass {loop['longest_gc_ms']:.2f} ms;"
            f" a 2 ms sleep wakes late by p99 {loop['lag_p99_ms']:.2f} ms,"
            f" max {loop['lag_max_ms']:.2f} ms; longest: {loop['longest_callback'][:90]}",
        )
        if name == "paced":
            report.add(Row(SECTION, f"{longest[0]} ({isolation})", longest[1], note=longest[4]))
        else:
            report.add(row(*longest))


def _matches(status: str, wanted: str) -> bool:
    return status[0] == wanted[0] if wanted.endswith("xx") else status == wanted


def _probe_note(probe: dict[str, Any]) -> str:
    return f"p50 {probe['p50_ms']:.2f} ms, max {probe['max_ms']:.2f} ms, n={probe['requests']}"
