"""Bounded memory: floods of unauthenticated requests and bogus ACS posts leave RSS flat.

    python benchmarks/memory.py [--count 100000] [--store memory|redis://127.0.0.1:6379/0]

Direct ASGI calls into one gate, in this process. Two floods of ``--count`` requests each:

* unauthenticated browser navigations to ever-new URLs, half of them with a forged session
  cookie: each gets a 303 to the IdP with a fresh AuthnRequest and a pending-login cookie;
* bogus ACS posts, in rotation: random base64, an unsigned Response, a Response signed by an
  unknown key, a genuine Response for a sign-in this browser never started, and a replay of a
  Response that was accepted once.

After a warm-up, RSS is sampled at each quarter of a flood; the figures that matter are the
growth over the flood and the number of store entries it added (none: no per-visitor state).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import itertools
import logging
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from bench_common import (
    World,
    acs_scope,
    call,
    hello_app,
    http_scope,
    mint_login,
    new_request_id,
    response_b64,
    response_spec,
    rss_bytes,
    status_of,
)

from saml_gate import SamlGate
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.store import MemoryStore

MB = 1024 * 1024
WARM_UP = 2_000


@dataclass
class Flood:
    name: str
    samples: list[tuple[int, int]]
    statuses: dict[int, int]
    store_entries_added: int

    def report(self) -> str:
        first, last = self.samples[0][1], self.samples[-1][1]
        points = "  ".join(f"{n:>7,}: {rss / MB:6.1f} MB" for n, rss in self.samples)
        return (
            f"{self.name}\n  RSS after warm-up {first / MB:.1f} MB, after the flood"
            f" {last / MB:.1f} MB: growth {(last - first) / MB:+.1f} MB"
            f" ({(last - first) / max(self.samples[-1][0], 1):+.1f} B/request)\n"
            f"  samples  {points}\n  answers  {dict(sorted(self.statuses.items()))}"
            f"  store entries added: {self.store_entries_added}"
        )


Counter = Callable[[], Awaitable[int]]


def entry_counter(
    gate: SamlGate, store: str, prefix: str
) -> tuple[Counter, Callable[[], Awaitable[None]]]:
    """(how many entries the store holds, a clean-up for the end)."""
    if store == "memory":
        memory = gate.core.store
        assert isinstance(memory, MemoryStore)

        async def in_memory() -> int:
            return len(memory)

        return in_memory, memory.close
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(store)

    async def in_redis() -> int:
        return len([k async for k in client.scan_iter(match=prefix + "*", count=1000)])

    async def clean_up() -> None:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    return in_redis, clean_up


async def flood(
    name: str, count: int, one: Callable[[int], Awaitable[int]], entries: Counter
) -> Flood:
    statuses: dict[int, int] = {}
    for i in range(WARM_UP):
        await one(i)
    gc.collect()
    before = await entries()
    samples = [(0, rss_bytes())]
    quarter = max(count // 4, 1)
    for i in range(count):
        status = await one(WARM_UP + i)
        statuses[status] = statuses.get(status, 0) + 1
        if (i + 1) % quarter == 0:
            gc.collect()
            samples.append((i + 1, rss_bytes()))
    return Flood(name, samples, statuses, await entries() - before)


def unauthenticated(gate: SamlGate) -> Callable[[int], Awaitable[int]]:
    async def one(i: int) -> int:
        headers = [(b"accept", b"text/html"), (b"sec-fetch-mode", b"navigate")]
        if i % 2:
            forged = base64.urlsafe_b64encode(secrets.token_bytes(90)).decode()
            headers.append((b"cookie", f"saml_gate_session={forged}".encode()))
        scope = http_scope("GET", f"/visitor/{i}/page", headers)
        scope["query_string"] = f"q={i}".encode()
        return status_of(await call(gate, scope))

    return one


async def bogus_posts(gate: SamlGate, world: World) -> Callable[[int], Awaitable[int]]:
    """Each kind of bogus post reaches a different depth of the ACS. One genuine sign-in first,
    so that its Response can be replayed."""
    now = datetime.now(UTC)
    relay = gate.core.relay

    def spec(request_id: str | None) -> ResponseSpec:
        return response_spec(request_id, now)

    unsigned_xml = issue_response(spec(None), world.idp, sign_response=False, sign_assertion=False)
    unsigned = base64.b64encode(unsigned_xml).decode()
    forged = response_b64(world, "both-signed", request_id=None, keys=world.attacker, now=now)
    not_started = response_b64(world, "both-signed", request_id=new_request_id(), now=now)
    accepted_id = new_request_id()
    accepted = mint_login(
        gate.settings,
        response_b64(world, "both-signed", request_id=accepted_id),
        accepted_id,
        relay,
    )
    kinds = itertools.cycle(["random", "unsigned", "forged", "not started", "replay"])
    assert status_of(await call(gate, acs_scope(accepted), accepted.body)) == 303

    async def one(i: int) -> int:
        kind = next(kinds)
        if kind == "replay":
            return status_of(await call(gate, acs_scope(accepted), accepted.body))
        value = {
            "random": base64.b64encode(secrets.token_bytes(2048)).decode(),
            "unsigned": unsigned,
            "forged": forged,
            "not started": not_started,
        }[kind]
        body = urlencode({"SAMLResponse": value, "RelayState": f"/r/{i}"}).encode()
        scope = acs_scope(mint_login(gate.settings, value, new_request_id(), relay))
        scope["headers"] = [
            (k, str(len(body)).encode() if k == b"content-length" else v)
            for k, v in scope["headers"]
        ]
        return status_of(await call(gate, scope, body))

    return one


async def main(count: int, store: str) -> None:
    logging.getLogger("saml_gate").setLevel(logging.CRITICAL)  # 200,000 refusal lines otherwise
    world = World.create()
    prefix = f"saml-gate-bench:{os.getpid()}:"
    options: dict[str, Any] = {} if store == "memory" else {"store": store, "store_prefix": prefix}
    gate = world.gate(hello_app, **options)
    entries, clean_up = entry_counter(gate, store, prefix)
    print(f"saml-gate memory benchmark: {count:,} requests per flood, store={store}", flush=True)
    print(f"Python {sys.version.split()[0]}, RSS at start {rss_bytes() / MB:.1f} MB\n", flush=True)
    result = await flood("Unauthenticated navigations", count, unauthenticated(gate), entries)
    print(result.report() + "\n", flush=True)
    posts = await bogus_posts(gate, world)
    result = await flood("Bogus ACS posts", count, posts, entries)
    print(result.report(), flush=True)
    await gate.core.store.close()
    await clean_up()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--store", default="memory", help='"memory" or a Redis URL')
    args = parser.parse_args()
    asyncio.run(main(args.count, args.store))
