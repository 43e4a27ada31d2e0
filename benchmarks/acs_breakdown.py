"""Where an ACS sign-in's time goes, beside its floor: ``python benchmarks/acs_breakdown.py``.

Same process, same both-signed Responses, best of rounds: the floor (lxml parsing and
python-xmlsec checking the two signatures, as bench_scaleout measures it), the verifier alone,
and the whole ACS endpoint with verification in a thread and in a child process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench_acs import fresh_responses, post
from bench_common import World, hello_app, mint_login, new_request_id, response_b64
from bench_scaleout import floor_verifier

N, ROUNDS = 200, 5


def best_of(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(N):
            work()
        best = min(best, (time.perf_counter() - start) / N)
    return best


async def endpoint(world: World, **options: Any) -> tuple[float, Any]:
    gate = world.gate(hello_app, **options)
    pairs = fresh_responses(world, "both-signed", N * ROUNDS + 1, datetime.now(UTC))
    logins = [mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in pairs]
    await post(gate, logins[0])  # start-up: worker, imports
    best = float("inf")
    for r in range(ROUNDS):
        batch = logins[1 + r * N : 1 + (r + 1) * N]
        start = time.perf_counter()
        for login in batch:
            await post(gate, login)
        best = min(best, (time.perf_counter() - start) / len(batch))
    return best, gate


async def main() -> None:
    logging.getLogger("saml_gate").addHandler(logging.NullHandler())
    logging.getLogger("saml_gate").propagate = False  # one auth log line per sign-in otherwise
    world = World.create()
    check = floor_verifier(world)
    sample = response_b64(world, "both-signed", request_id=new_request_id())
    floor = best_of(lambda: check(sample))
    thread, gate = await endpoint(world, verify_isolation="thread")
    process, _ = await endpoint(world, verify_isolation="process")
    pairs = iter(fresh_responses(world, "both-signed", N * ROUNDS, datetime.now(UTC)))
    now = time.time()

    def verify() -> object:
        request_id, b64 = next(pairs)
        return gate.core.verifier.verify(b64, expected_request_ids={request_id}, now=now)

    rows = (
        ("floor: lxml parse + python-xmlsec signature checks", floor),
        ("ResponseVerifier.verify, in process", best_of(verify)),
        ("ACS endpoint, verify_isolation=thread", thread),
        ("ACS endpoint, verify_isolation=process (default)", process),
    )
    for name, seconds in rows:
        print(f"{name:52s} {seconds * 1e3:6.3f} ms  {seconds / floor:5.2f}x floor")


if __name__ == "__main__":
    asyncio.run(main())
