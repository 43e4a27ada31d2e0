"""Where an ACS sign-in's time goes, beside its floor: ``python benchmarks/acs_breakdown.py``.

Same process, same kind of both-signed Responses: the floor (lxml parsing and python-xmlsec
checking the two signatures, as bench_scaleout measures it), the verifier alone, the endpoint's
own work (verification answered at once with its result), and the whole ACS endpoint with
verification in a thread and in a child process. Each row gives the time per sign-in one at a
time and the CPU time it used (this process's threads and the verification children together).
The rows take turns, round after round, and each keeps its best round: on a shared machine a
busy moment then spoils one round of every row rather than all rounds of one.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from bench_acs import EndpointCost, cpu_mark, cpu_since, post
from bench_common import World, fresh_responses, hello_app, mint_login, new_request_id, response_b64
from bench_scaleout import floor_verifier

N, ROUNDS = 100, 15
Batch = Callable[[], Awaitable[EndpointCost | None]]
"""Does N sign-ins (or N verifications) of one row; returns their cost per sign-in when it
measures it itself (else the whole batch is timed)."""
IDLE = 0.001
"""The pause before each floor check of the "idle before each" row: about what a verification
child waits while the app process does its part of a sign-in."""


def synchronous(work: Callable[[], object]) -> Batch:
    async def batch() -> None:
        for _ in range(N):
            work()
        return None

    return batch


def after_idle(work: Callable[[], object]) -> Batch:
    """``work`` after IDLE seconds asleep each time, timed without the pauses: what it costs
    when it starts cold, as each step of a sign-in does after waiting for the other process."""

    async def batch() -> EndpointCost:
        wall = cpu = 0.0
        for _ in range(N):
            time.sleep(IDLE)
            start, start_cpu = time.perf_counter(), time.thread_time()
            work()
            wall += time.perf_counter() - start
            cpu += time.thread_time() - start_cpu
        return EndpointCost(wall / N, cpu / N)

    return batch


def endpoint(world: World, *, answered: bool = False, **options: Any) -> Batch:
    """N fresh sign-ins posted to a gate's ACS per call. ``answered``: the verification engine
    answers at once with the login it would have verified (the endpoint's own work alone)."""
    gate = world.started_gate(hello_app, **options)
    fresh = fresh_responses(world, "both-signed", N * (ROUNDS + 1), datetime.now(UTC))
    logins = iter([mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in fresh])
    if answered:
        now = time.time()
        verified = {
            rid: gate.core.saml.verifier.verify(b64, expected_request_ids={rid}, now=now)
            for rid, b64 in fresh
        }

        async def answer(posted: str, expected: Collection[str], now: float, client: str) -> Any:
            (request_id,) = expected
            return verified[request_id]

        gate.core.engine.verify_response = answer  # type: ignore[assignment,method-assign]

    async def batch() -> None:
        for _ in range(N):
            await post(gate, next(logins))
        return None

    return batch


async def main() -> None:
    logging.getLogger("saml_gate").addHandler(logging.NullHandler())
    logging.getLogger("saml_gate").propagate = False  # one auth log line per sign-in otherwise
    world = World.create()
    check = floor_verifier(world)
    sample = response_b64(world, "both-signed", request_id=new_request_id())
    verifier = world.started_gate(hello_app, verify_isolation="thread").core.saml.verifier
    pairs = iter(fresh_responses(world, "both-signed", N * (ROUNDS + 1), datetime.now(UTC)))
    now = time.time()

    def verify() -> object:
        request_id, b64 = next(pairs)
        return verifier.verify(b64, expected_request_ids={request_id}, now=now)

    rows: dict[str, Batch] = {
        "floor: lxml parse + python-xmlsec signature checks": synchronous(lambda: check(sample)),
        f"floor, {IDLE * 1e3:.0f} ms idle before each check": after_idle(lambda: check(sample)),
        "ResponseVerifier.verify, in process": synchronous(verify),
        "ACS endpoint's own work (verification answered at once)": endpoint(world, answered=True),
        "ACS endpoint, verify_isolation=thread": endpoint(world, verify_isolation="thread"),
        "ACS endpoint, verify_isolation=process (default)": endpoint(
            world, verify_isolation="process"
        ),
    }
    best = {name: EndpointCost(float("inf"), float("inf")) for name in rows}
    for round_ in range(ROUNDS + 1):
        for name, batch in rows.items():
            start, mark = time.perf_counter(), cpu_mark()
            measured = await batch()
            wall, cpu = (time.perf_counter() - start) / N, cpu_since(mark) / N
            if measured is not None:
                wall, cpu = measured.wall, measured.cpu
            if round_:  # the first round warms up (imports, the worker, caches)
                best[name] = EndpointCost(min(best[name].wall, wall), min(best[name].cpu, cpu))
    floor = best[next(iter(rows))]
    print(f"{'':58s} {'time':>9s} {'':>6s} {'CPU':>9s}")
    for name, cost in best.items():
        print(
            f"{name:58s} {cost.wall * 1e3:6.3f} ms {cost.wall / floor.wall:5.2f}x"
            f" {cost.cpu * 1e3:6.3f} ms {cost.cpu / floor.cpu:5.2f}x"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
