"""Section 5: resident memory after many unauthenticated requests and after many sign-ins.

Runs in a fresh process (``python benchmarks/bench_rss.py --world W --requests N --logins M``)
so that nothing else measured in the suite is in its heap. Requests are direct ASGI calls.

* N browser navigations without a session: each one gets a 303 to the IdP with a new
  AuthnRequest and a pending-login cookie (the most expensive unauthenticated answer).
* M sign-ins spread over a simulated hour (the gate's clock is stepped), each a fresh signed
  Response through the real ACS endpoint, so the replay cache fills and expires as in life.

RSS is read at the half-way mark too: a flat line between the half and the end is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import pickle
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import (
    Budget,
    Report,
    Row,
    World,
    acs_scope,
    call,
    hello_app,
    http_scope,
    mint_login,
    new_request_id,
    response_b64,
    rss_bytes,
    status_of,
)

SECTION = "5 memory"
HOUR = 3600.0
CHUNK = 250


class SteppedClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _chunk(args: tuple[World, list[tuple[str, float]]]) -> list[str]:
    world, items = args
    return [
        response_b64(world, "assertion-signed", request_id=r, now=datetime.fromtimestamp(t, UTC))
        for r, t in items
    ]


def signed_responses(world: World, items: list[tuple[str, float]]) -> Iterator[str]:
    """Responses for (request ID, issue time) items, signed ahead in two other processes."""
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    with ProcessPoolExecutor(2) as pool:
        pending: deque[Future[list[str]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_chunk, (world, chunk)))
            if len(pending) > 4:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def settle() -> int:
    gc.collect()
    return rss_bytes()


async def measure(world: World, requests: int, logins: int) -> dict[str, Any]:
    start = datetime.now(UTC).timestamp()
    clock = SteppedClock(start)
    gate = world.gate(hello_app, clock=clock)
    page = http_scope("GET", "/hello", [(b"accept", b"text/html")])
    out: dict[str, Any] = {}

    async def navigate(n: int) -> None:
        for _ in range(n):
            if status_of(await call(gate, dict(page))) != 303:
                raise RuntimeError("an unauthenticated navigation was not sent to the IdP")

    await navigate(200)  # warm up: imports, worker threads, caches
    out["baseline"] = settle()
    await navigate(requests // 2)
    out["requests_half"] = settle()
    await navigate(requests - requests // 2)
    out["requests_end"] = settle()

    step = HOUR / logins
    items = [(new_request_id(), start + i * step) for i in range(logins)]
    for i, ((request_id, at), b64) in enumerate(
        zip(items, signed_responses(world, items), strict=True)
    ):
        clock.now = at
        login = mint_login(gate.settings, b64, request_id, gate.core.relay)
        sent = await call(gate, acs_scope(login), login.body)
        if status_of(sent) != 303:
            raise RuntimeError(f"sign-in {i} was refused: {sent}")
        if i + 1 == logins // 2:
            out["logins_half"] = settle()
    out["logins_end"] = settle()
    store: Any = gate.core.store
    out["store_entries"] = len(store) if hasattr(store, "__len__") else -1
    return out


def run(budget: Budget, report: Report, world: World) -> None:
    requests, logins = budget.n(100_000, 1000), budget.n(100_000, 300)
    folder = Path(tempfile.mkdtemp(prefix="saml-gate-bench-rss-"))
    world_file = folder / "world.pickle"
    world_file.write_bytes(pickle.dumps(world))
    args = [sys.executable, __file__, "--world", str(world_file)]
    args += ["--requests", str(requests), "--logins", str(logins)]
    m = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    report.add(Row(SECTION, "RSS after start-up and warm-up", mib(m["baseline"])))
    report.add(
        Row(
            SECTION,
            f"RSS after {requests:,} unauthenticated requests",
            f"{mib(m['requests_end'])} (+{mib(m['requests_end'] - m['baseline'])})",
            note=f"{mib(m['requests_half'])} at half-way",
        )
    )
    report.add(
        Row(
            SECTION,
            f"RSS after {logins:,} sign-ins over a simulated hour",
            f"{mib(m['logins_end'])} (+{mib(m['logins_end'] - m['requests_end'])})",
            note=f"{mib(m['logins_half'])} at half-way; {m['store_entries']:,} replay-cache"
            " entries live at the end",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--logins", type=int, required=True)
    args = parser.parse_args()
    import logging

    logging.getLogger("saml_gate").setLevel(logging.ERROR)
    world: World = pickle.loads(args.world.read_bytes())
    print(json.dumps(asyncio.run(measure(world, args.requests, args.logins))))


if __name__ == "__main__":
    main()
