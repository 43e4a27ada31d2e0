"""Where an ACS sign-in's time goes, beside its floor: ``python benchmarks/acs_breakdown.py``.

Same process, same kind of both-signed Responses, best of rounds: the floor (lxml parsing and
python-xmlsec checking the two signatures, as bench_scaleout measures it), the verifier alone,
the endpoint's own work (verification answered at once with its result), and the whole ACS
endpoint with verification in a thread and in a child process. Each row gives the time per
sign-in one at a time and the CPU time it used (this process's threads and the verification
children together).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from bench_acs import EndpointCost, cpu_now, endpoint_cost, fresh_responses, post
from bench_common import World, hello_app, mint_login, new_request_id, response_b64
from bench_scaleout import floor_verifier

N, ROUNDS = 200, 5


def best_of(work: Callable[[], object]) -> EndpointCost:
    wall = cpu = float("inf")
    for _ in range(ROUNDS):
        start, start_cpu = time.perf_counter(), cpu_now()
        for _ in range(N):
            work()
        wall = min(wall, (time.perf_counter() - start) / N)
        cpu = min(cpu, (cpu_now() - start_cpu) / N)
    return EndpointCost(wall, cpu)


async def endpoint_alone(world: World) -> EndpointCost:
    """The ACS endpoint with the verification engine answering at once with the login it
    would have verified: what the endpoint itself costs (form, cookies, replay check, session,
    store writes, event, response)."""
    gate = world.gate(hello_app, verify_isolation="thread")
    pairs = fresh_responses(world, "both-signed", N * ROUNDS + 1, datetime.now(UTC))
    now = time.time()
    verified = {
        rid: gate.core.verifier.verify(b64, expected_request_ids={rid}, now=now)
        for rid, b64 in pairs
    }

    async def answer(posted: str, expected: Collection[str], now: float, client: str) -> Any:
        (request_id,) = expected
        return verified[request_id]

    gate.core.engine.verify_response = answer  # type: ignore[method-assign]
    logins = [mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in pairs]
    await post(gate, logins[0])
    wall = cpu = float("inf")
    for r in range(ROUNDS):
        batch = logins[1 + r * N : 1 + (r + 1) * N]
        start, start_cpu = time.perf_counter(), cpu_now()
        for login in batch:
            await post(gate, login)
        wall = min(wall, (time.perf_counter() - start) / N)
        cpu = min(cpu, (cpu_now() - start_cpu) / N)
    return EndpointCost(wall, cpu)


async def main() -> None:
    logging.getLogger("saml_gate").addHandler(logging.NullHandler())
    logging.getLogger("saml_gate").propagate = False  # one auth log line per sign-in otherwise
    world = World.create()
    check = floor_verifier(world)
    sample = response_b64(world, "both-signed", request_id=new_request_id())
    floor = best_of(lambda: check(sample))
    verifier = world.gate(hello_app, verify_isolation="thread").core.verifier
    pairs = iter(fresh_responses(world, "both-signed", N * ROUNDS, datetime.now(UTC)))
    now = time.time()

    def verify() -> object:
        request_id, b64 = next(pairs)
        return verifier.verify(b64, expected_request_ids={request_id}, now=now)

    rows = (
        ("floor: lxml parse + python-xmlsec signature checks", floor),
        ("ResponseVerifier.verify, in process", best_of(verify)),
        ("ACS endpoint's own work (verification answered at once)", await endpoint_alone(world)),
        (
            "ACS endpoint, verify_isolation=thread",
            await endpoint_cost(world, "both-signed", N, ROUNDS, verify_isolation="thread"),
        ),
        (
            "ACS endpoint, verify_isolation=process (default)",
            await endpoint_cost(world, "both-signed", N, ROUNDS, verify_isolation="process"),
        ),
    )
    print(f"{'':58s} {'time':>9s} {'':>7s} {'CPU':>9s}")
    for name, cost in rows:
        print(
            f"{name:58s} {cost.wall * 1e3:6.3f} ms {cost.wall / floor.wall:5.2f}x"
            f" {cost.cpu * 1e3:6.3f} ms {cost.cpu / floor.cpu:5.2f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
