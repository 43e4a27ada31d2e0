"""The benchmark suite: one command, one table of figures and ratios measured in the same run.

    python benchmarks/run.py            # full run, several minutes
    python benchmarks/run.py --quick    # smoke run (CI): every section, tiny budgets
    python benchmarks/run.py --only acs,http

Sections: 1 request overhead (vs SessionMiddleware), 2 ACS verification (vs python3-saml and
pysaml2), 3 end to end over HTTP (uvicorn, with and without the gate), 4 event-loop health
under a login storm and a bogus-ACS flood, 5 memory after many requests and logins, 6 scale-out
(memory vs Redis, round trips, revocation propagation, open-loop storm, the ACS beside its
floor), 7 peers, 8 continuous authorization (an Okta Universal Logout to the last worker refusing).
Targets are printed beside the figures; nothing here asserts them (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_acs
import bench_http
import bench_peers
import bench_requests
import bench_rss
import bench_scaleout
import bench_storm
import bench_universal_logout
from bench_common import Budget, Report, World

SECTIONS: dict[str, Callable[[Budget, Report, World], Any]] = {
    "request": bench_requests.run,
    "acs": bench_acs.run,
    "http": bench_http.run,
    "storm": bench_storm.run,
    "memory": bench_rss.run,
    "scaleout": bench_scaleout.run,
    "peers": bench_peers.run,
    "logout": bench_universal_logout.run,
}


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("lxml", "xmlsec", "starlette", "uvicorn", "pysaml2", "python3-saml")
        if _installed(name)
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions};"
        f" load average {load} at start"
    )


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (CI smoke run)")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    # Sign-ins are logged at INFO and refusals at WARNING: not what this run measures.
    logging.getLogger("saml_gate").setLevel(logging.ERROR)
    budget = Budget.of(args.quick)
    report = Report()
    world = World.create()
    print(f"machine: {machine()}", flush=True)
    started = time.perf_counter()
    for name in chosen:
        print(f"\n== {name}", flush=True)
        result = SECTIONS[name](budget, report, world)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    print(f"\nRESULTS ({'quick' if args.quick else 'full'} run,", end=" ")
    print(f"{time.perf_counter() - started:.0f} s)")
    print(report.table())
    for note in report.notes:
        print(f"\n{note}")
    missed = [r for r in report.rows if r.met is False]
    print(f"\ntargets met: {sum(r.met is True for r in report.rows)}, missed: {len(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
