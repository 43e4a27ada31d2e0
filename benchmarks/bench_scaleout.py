"""Section 6: scale-out. The gate with Redis beside the gate with the memory store, same run.

- authenticated-request overhead, memory vs Redis (in process, direct ASGI calls), and with Redis
  behind a loopback TCP relay adding 1 ms each way (written here; its own thread and loop);
- store round trips per sign-in and per authenticated request, counted by a wrapper around the
  Redis store (each store operation is one round trip: one command or one pipeline);
- revocation propagation, worst of N: a sign-out written by this process, seen by the revocation
  feed of another process (the gate's own follower code) sharing the Redis;
- an open-loop storm: sign-ins arriving at 25/50/75 % of the measured one-core capacity while a
  probe sends authenticated requests (p99 beside the idle p99);
- the whole ACS sign-in beside its floor: lxml parsing and python-xmlsec checking the same
  Response's signatures, nothing else.
Needs Redis at 127.0.0.1:6379 (SAML_GATE_BENCH_REDIS); without it the Redis rows say so.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from bench_acs import EndpointCost, endpoint_cost, post, time_endpoint
from bench_common import (
    Budget,
    Report,
    Row,
    World,
    fresh_responses,
    hello_app,
    http_scope,
    mint_login,
    new_request_id,
    response_b64,
)
from bench_requests import per_request, sign_in

from saml_gate import SamlGate
from saml_gate.store.redis import RedisStore

SECTION = "6 scale-out"
REDIS_URL = os.environ.get("SAML_GATE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ROUND_TRIP_OPERATIONS = (
    "add_once",
    "contains",
    "put",
    "get",
    "add_member",
    "members",
    "remove_members",
    "add_once_each",
    "write",
    "expiring",
    "expiry",
)


# ---------------------------------------------------------------------------------- counting
class CountingStore:
    """A store that counts the calls reaching ``inner`` (each one round trip for Redis)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def feed(self) -> Any:
        return self.inner.feed()

    async def close(self) -> None:
        await self.inner.close()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _counting(name: str) -> Callable[..., Any]:
    async def operation(self: CountingStore, *args: Any) -> Any:
        self.calls[name] += 1
        return await getattr(self.inner, name)(*args)

    return operation


for _name in ROUND_TRIP_OPERATIONS:
    setattr(CountingStore, _name, _counting(_name))


def redis_store(url: str = REDIS_URL) -> RedisStore:
    return RedisStore.from_url(url, prefix=f"saml-gate-bench:{os.urandom(4).hex()}:", timeout=2.0)


async def redis_reachable() -> bool:
    store = redis_store()
    try:
        await store.get("ping")
    except Exception:
        return False
    finally:
        await store.close()
    return True


# ---------------------------------------------------------------------------------- the relay
class DelayRelay:
    """A loopback TCP relay to Redis adding ``delay`` seconds each way, in its own thread."""

    def __init__(self, target: tuple[str, int], delay: float = 0.001) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        except asyncio.CancelledError:  # the relay is shutting down
            pass
        finally:
            writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each chunk ``delay`` seconds after it arrived, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + self.delay, data))
            if not data:
                break
        await delivering


# ---------------------------------------------------------------------------------- overhead
async def live_gate(world: World, store: Any = None) -> tuple[SamlGate, list[dict[str, Any]]]:
    """A gate (memory store unless given), signed in, its revocation feed loaded: request scopes."""
    gate = world.gate(hello_app) if store is None else world.gate(hello_app, store=store)
    await gate.start()
    cookie = await sign_in(gate, world)
    deadline = time.monotonic() + 10
    while store is not None and not gate.core.revocations.view.live:
        if time.monotonic() > deadline:
            raise RuntimeError("the revocation feed never loaded")
        await asyncio.sleep(0.01)
    headers = [(b"accept", b"text/html"), (b"cookie", cookie)]
    return gate, [http_scope("GET", "/hello", headers)]


async def overhead(budget: Budget, report: Report, world: World) -> None:
    """Rounds interleaved across the bare app and the three gates: load on a shared machine
    lands on all of them alike, and each keeps its best round."""
    n, rounds = budget.n(20000, 200), budget.rounds
    if not await redis_reachable():
        report.add(Row(SECTION, "Redis rows", "not measured", note=f"no Redis at {REDIS_URL}"))
        return
    host, port = "127.0.0.1", int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    with DelayRelay((host, port)) as relay:
        apps: dict[str, tuple[Any, list[dict[str, Any]]]] = {
            "bare": (hello_app, [http_scope("GET", "/hello", [])]),
            "memory": await live_gate(world),
        }
        stores = [redis_store(REDIS_URL), redis_store(f"redis://{host}:{relay.port}/0")]
        apps["redis"] = await live_gate(world, stores[0])
        apps["delayed"] = await live_gate(world, stores[1])
        times = dict.fromkeys(apps, float("inf"))
        for _ in range(rounds):
            for name, (app, scopes) in apps.items():
                times[name] = min(times[name], await per_request(app, scopes, n, 1))
        for name in ("memory", "redis", "delayed"):
            await apps[name][0].stop()
        for store in stores:
            await store.close()
    bare = times.pop("bare")
    over = {k: (t - bare) * 1e6 for k, t in times.items()}
    report.add(
        Row(SECTION, "authenticated-request overhead, memory store", f"{over['memory']:.1f} µs")
    )
    report.add(Row(SECTION, "authenticated-request overhead, Redis", f"{over['redis']:.1f} µs"))
    ratio = over["redis"] / over["memory"]
    report.add(
        Row(SECTION, "overhead Redis / memory", f"{ratio:.2f}x", "target ≤ 1.5x", ratio <= 1.5)
    )
    throughput = times["memory"] / times["delayed"]  # (1/delayed) / (1/memory)
    report.add(
        Row(
            SECTION,
            "gated throughput, Redis +1 ms each way / memory",
            f"{throughput:.2f}x",
            "target ≥ 0.9x",
            throughput >= 0.9,
        )
    )


# ---------------------------------------------------------------------------------- round trips
async def round_trips(budget: Budget, report: Report, world: World) -> None:
    counting = CountingStore(redis_store())
    gate = world.gate(hello_app, store=counting)
    counting.inner.clock = gate.settings.clock
    await gate.start()
    request_id = new_request_id()
    b64 = response_b64(world, "both-signed", request_id=request_id)
    login = mint_login(gate.settings, b64, request_id, gate.core.relay)
    await post(gate, login)
    per_sign_in = counting.total
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counting.calls.items()))
    _, scopes = await live_gate(world, counting)  # another sign-in, then its requests
    counting.calls.clear()
    n = budget.n(1000, 50)
    await per_request(gate, scopes, n, 1)
    report.add(
        Row(SECTION, "store round trips per sign-in (counted)", str(per_sign_in), note=detail)
    )
    report.add(
        Row(
            SECTION,
            "store round trips per authenticated request (counted)",
            f"{counting.total / n:g}",
        )
    )
    await gate.stop()
    await counting.close()


# ---------------------------------------------------------------------------------- propagation
FOLLOWER = textwrap.dedent(
    """
    import asyncio, sys, time
    from saml_gate.store.redis import RedisStore

    async def main():
        store = RedisStore.from_url(sys.argv[1], prefix=sys.argv[2], timeout=2.0)
        def ready(snapshot):
            print("ready", flush=True)
        def added(member, expires_at):
            print(member, repr(time.time()), flush=True)
        await store.feed().follow("revoked", ready, added, lambda: None)

    asyncio.run(main())
    """
)


async def _seen(lines: IO[str], member: str) -> float:
    """When the follower printed ``member``. Other lines are passed over: "ready" again after
    its subscription was lost and taken again (a loaded machine), which re-reads the view."""
    while True:
        line = await asyncio.to_thread(lines.readline)
        if not line:
            raise RuntimeError(f"the follower ended before it saw {member}")
        words = line.split()
        if words[0] == member:
            return float(words[1])


async def propagation(budget: Budget, report: Report, world: World) -> None:
    """Sign-outs here, seen by another process's feed: worst of N (wall clocks of one host)."""
    store = redis_store()
    prefix = store._prefix
    child = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, REDIS_URL, prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "ready", line
        gate = world.gate(hello_app, store=store)
        cookie = await sign_in(gate, world)
        session = gate.core.sessions.decode(cookie.split(b"=", 1)[1].decode())
        assert session is not None
        delays = []
        for i in range(budget.n(200, 10)):
            user = session.user.__class__(**{**session.user.__dict__, "session_id": f"p{i}"})
            started = time.time()
            await gate.core.revocations.revoke(user, gate.settings.clock())
            seen = await _seen(child.stdout, f"p{i}")
            delays.append(seen - started)
        worst = max(delays) * 1000
        report.add(
            Row(
                SECTION,
                f"revocation propagation to another process, worst of {len(delays)}",
                f"{worst:.2f} ms",
                "target ≤ 100 ms",
                worst <= 100,
                note=f"median {statistics.median(delays) * 1000:.2f} ms",
            )
        )
    finally:
        child.terminate()
        child.wait(5)
        await store.close()


# ---------------------------------------------------------------------------------- storm
async def storm(budget: Budget, report: Report, world: World) -> None:
    """Open loop: sign-ins started at a fixed rate whatever the gate's pace; a probe alongside."""
    per_sign_in = await time_endpoint(world, "both-signed", budget.n(200, 5), budget.rounds)
    capacity = 1 / per_sign_in
    report.add(Row(SECTION, "sequential ACS sign-in rate (the storm's 100 %)", f"{capacity:.0f}/s"))
    seconds = 1.0 if budget.quick else 5.0
    gate = world.gate(hello_app)
    await gate.start()
    cookie = await sign_in(gate, world)
    probe_scope = http_scope("GET", "/hello", [(b"accept", b"text/html"), (b"cookie", cookie)])
    idle = await probe(gate, probe_scope, seconds, None)
    report.add(Row(SECTION, "authenticated GET p99, idle", f"{idle * 1e3:.2f} ms"))
    for share in (0.25, 0.5, 0.75):
        rate = capacity * share
        pairs = fresh_responses(world, "both-signed", int(rate * seconds) + 2, datetime.now(UTC))
        logins = [mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in pairs]
        p99 = await probe(gate, probe_scope, seconds, (rate, logins))
        ratio = p99 / idle
        target = "target ≤ 2x idle" if share == 0.5 else ""
        met = ratio <= 2 if share == 0.5 else None
        report.add(
            Row(
                SECTION,
                f"authenticated GET p99, open-loop sign-ins at {share:.0%} of capacity",
                f"{p99 * 1e3:.2f} ms ({ratio:.2f}x idle)",
                target,
                met,
            )
        )
    await gate.stop()


async def probe(
    gate: SamlGate, scope: dict[str, Any], seconds: float, load: tuple[float, list[Any]] | None
) -> float:
    """p99 seconds of probe requests (one every 2 ms) while ``load`` (rate, logins) runs."""
    from bench_common import call

    stop = time.perf_counter() + seconds
    tasks: list[asyncio.Task[None]] = []

    async def arrivals(rate: float, logins: list[Any]) -> None:
        start = time.perf_counter()
        for i, login in enumerate(logins):
            due = start + i / rate
            if due > stop:
                return
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.ensure_future(post(gate, login)))

    feeder = asyncio.ensure_future(arrivals(*load)) if load else None
    samples = []
    while time.perf_counter() < stop:
        started = time.perf_counter()
        await call(gate, dict(scope))
        samples.append(time.perf_counter() - started)
        await asyncio.sleep(0.002)
    if feeder is not None:
        await feeder
    await asyncio.gather(*tasks)
    samples.sort()
    return samples[min(len(samples) - 1, int(len(samples) * 0.99))]


# ---------------------------------------------------------------------------------- ACS floor
def floor_verifier(world: World) -> Callable[[str], None]:
    """lxml + python-xmlsec alone: parse the Response, check each signature with the IdP key."""
    import xmlsec
    from lxml import etree

    key = xmlsec.Key.from_memory(world.idp.cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def verify(b64: str) -> None:
        root = etree.fromstring(base64.b64decode(b64), parser)
        signatures = root.findall(".//{http://www.w3.org/2000/09/xmldsig#}Signature")
        assert signatures
        for signature in signatures:
            xmlsec.tree.add_ids(signature.getparent(), ["ID"])
            context = xmlsec.SignatureContext()
            context.key = key
            context.verify(signature)

    return verify


async def sign_in_and_floor(budget: Budget, world: World) -> tuple[EndpointCost, EndpointCost]:
    """The whole sign-in (default isolation: a verification child) and its floor, each by time
    one at a time and by CPU time (the whole sign-in's: this process and the child together)."""
    n, rounds = budget.n(500, 10), budget.rounds
    full = await endpoint_cost(world, "both-signed", n, rounds)
    verify = floor_verifier(world)
    b64 = response_b64(world, "both-signed", request_id=new_request_id())
    verify(b64)
    floor = floor_cpu = float("inf")
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            verify(b64)
        floor = min(floor, (time.perf_counter() - start) / n)
        floor_cpu = min(floor_cpu, (time.process_time() - start_cpu) / n)
    return full, EndpointCost(floor, floor_cpu)


async def acs_floor(budget: Budget, report: Report, world: World) -> None:
    full, floor = await sign_in_and_floor(budget, world)
    for what, ours, theirs in (("time", full.wall, floor.wall), ("CPU time", full.cpu, floor.cpu)):
        ratio = ours / theirs
        report.add(
            Row(
                SECTION,
                f"ACS sign-in / its floor (lxml + xmlsec parse and signature checks), {what}",
                f"{ratio:.2f}x ({ours * 1e3:.2f} ms vs {theirs * 1e3:.2f} ms)",
                "target ≤ 1.5x",
                ratio <= 1.5,
                "one at a time; CPU of the app's process and its verification child",
            )
        )


async def run(budget: Budget, report: Report, world: World) -> None:
    await overhead(budget, report, world)
    if await redis_reachable():
        await round_trips(budget, report, world)
        await propagation(budget, report, world)
    await storm(budget, report, world)
    await acs_floor(budget, report, world)
