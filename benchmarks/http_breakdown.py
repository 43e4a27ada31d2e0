"""Where the gate's server CPU per authenticated request goes over HTTP: the peers section's
"bare / gated" row split into variants of the same uvicorn server, measured side by side.

    python benchmarks/http_breakdown.py [--stack fast|h11] [--rounds 5] [--seconds 4]

Each variant is a uvicorn server (bench_server.py, one worker) in its own process; wrk (16
keep-alive connections) hits each in turn, rounds taking turns; the figure is the server's CPU
time per request (its processes, from /proc: proc_tree.py), best round and median. Rows:

- bare: the app without the gate;
- bare, sent the session cookie: what the bigger request costs the server without the gate;
- gated: the gate's defaults (identity JWT on, gc_freeze off);
- gated, gc_freeze on: the collector no longer walks the gate's long-lived objects;
- gated, no identity JWT (``jwt_header=""``);
- gated, gc_freeze on and no identity JWT.

The gate's own work in process (section 1's measure: direct ASGI calls, time minus the bare
app's) is printed beside them: the difference is what serving it over HTTP adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http
import proc_tree
from bench_common import BASE_URL, World
from bench_requests import overheads

VARIANTS: dict[str, tuple[bool, bool, dict[str, Any]]] = {
    # name: (gated, send the session cookie, gate options)
    "bare": (False, False, {}),
    "bare, sent the session cookie": (False, True, {}),
    "gated (defaults)": (True, True, {}),
    "gated, gc_freeze on": (True, True, {"gc_freeze": True}),
    "gated, no identity JWT": (True, True, {"jwt_header": ""}),
    "gated, gc_freeze on, no identity JWT": (True, True, {"gc_freeze": True, "jwt_header": ""}),
}


def cpu_per_request(server: bench_http.Server, cookie: str | None, seconds: float) -> float:
    headers = {"Host": BASE_URL.removeprefix("http://")}
    if cookie:
        headers["Cookie"] = cookie
    roots = (server.process.pid,)
    before = proc_tree.cpu_seconds(roots)
    run = bench_http.wrk_run(server.port, seconds, headers=headers)
    return (proc_tree.cpu_seconds(roots) - before) / run.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack", choices=["fast", "h11"], default="fast")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    logging.getLogger("saml_gate").setLevel(logging.ERROR)  # sign-ins are not what is measured
    world = World.create()
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                bench_http.server(world, gated=gated, stack=args.stack, **options)
            )
            for name, (gated, _, options) in VARIANTS.items()
        }
        for r in range(args.rounds):
            cookie = bench_http.session_cookie(world)  # fresh: no refresh due during a round
            bench_http.check_status(servers["gated (defaults)"].port, cookie, 200)
            for name, server in servers.items():
                sends = VARIANTS[name][1]
                results[name].append(
                    cpu_per_request(server, cookie if sends else None, args.seconds)
                )
            print(f"round {r + 1}: " + ", ".join(f"{results[n][-1] * 1e6:.1f}" for n in results))
    gate, session = asyncio.run(overheads(world, 40_000, 5))
    print(
        f"\nuvicorn {args.stack} stack, wrk {bench_http.CONNECTIONS} keep-alive connections,"
        f" {args.rounds} rounds of {args.seconds:g} s; load average {proc_tree.load_average()}"
    )
    bare = min(results["bare"])
    print("| variant | server CPU µs per request, best (median) | minus bare |")
    print("|---|---|---|")
    for name, values in results.items():
        best = min(values)
        print(
            f"| {name} | {best * 1e6:.1f} ({statistics.median(values) * 1e6:.1f})"
            f" | {(best - bare) * 1e6:+.1f} |"
        )
    print(
        f"\nin process (section 1's measure, this process): gate overhead {gate * 1e6:.2f} µs,"
        f" SessionMiddleware {session * 1e6:.2f} µs"
    )


if __name__ == "__main__":
    main()
