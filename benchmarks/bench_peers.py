"""Section 7: the gate beside the SPs people deploy instead, over loopback HTTP, in one run.

Side by side, each in processes of its own on a free loopback port: the gate with its defaults
(uvicorn picks its fast stack, httptools and uvloop, which saml-gate installs) and on h11 and
asyncio (a plain uvicorn without them, as a middleware may run), Apache 2.4 with Shibboleth SP 3
(mod_shib and shibd) and Apache 2.4 with mod_auth_mellon (peer_apache.py says how each is
configured). One IdP key and metadata for all; Responses shaped like Okta's (the assertion
signed, RSA-SHA256, no Response signature), each SP's own audience, recipient and destination.

1. Correctness first, per SP: a sign-in opens the protected page; a replayed Response, a tampered
   one (NameID changed after signing) and a forged one (signed with another key) do not. A peer
   that fails is reported, not measured.
2. Sign-ins over HTTP, rounds taking turns: pre-minted Responses (minting is not timed), a
   different person per sign-in, ``CONCURRENCY`` at a time (bench_load.py ``signins``); a sign-in
   is done when the SP's answer sets its session cookie. Every SP is timed on the same thing:
   one POST of an unsolicited Response to its ACS, until the session cookie (Shibboleth and
   mellon accept them as configured; the gate with ``allow_idp_initiated=True``, its defaults
   otherwise). What starting a sign-in costs (the redirect with an AuthnRequest) is measured
   apart, per SP (point 4). ``Minter.solicited`` still builds the gate's browser sign-in (GET
   then POST answering its AuthnRequest) for other uses.
   CPU per sign-in: every process of the server (/proc, by process tree: proc_tree.py).
3. PSS of every server process after N sign-ins (5,000 in the full run).
4. Server CPU per authenticated and per bare request (wrk, keep-alive), rounds taking turns; for
   every SP, also per sign-in start (the page asked for without a session, until the redirect to
   the IdP with an AuthnRequest). The gate's bare figure is a uvicorn server on the same stack
   without the gate.
5. The issue's target ratios, with the two in-process ones of this run (sections 1 and 6's
   measures: in-process overhead beside SessionMiddleware's, the ACS sign-in beside its floor).

Skipped with a message where Apache, mod_shib, shibd or mod_auth_mellon are not installed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_to_bytes, urlencode, urlsplit

import bench_http
import bench_load
import peer_apache
import proc_tree
from bench_common import (
    ACS_URL,
    BASE_URL,
    ENTITY_ID,
    IDP_ENTITY_ID,
    Budget,
    Report,
    Row,
    World,
    mint_login,
    new_request_id,
)
from bench_load import Connection, Reply, raw_request
from bench_requests import overheads
from bench_scaleout import sign_in_and_floor
from bench_server import STACKS

from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml.keys import KeyPair
from saml_gate.session.relay import RelayTracker

SECTION = "7 peers"
HERE = Path(__file__).resolve().parent
CONCURRENCY = 4 * (os.cpu_count() or 1)
"""Sign-ins in flight: enough to keep every core of the server busy while some wait on I/O."""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GATE_HOST = BASE_URL.removeprefix("http://")
GATE_PAGE = "/hello"
"""The page bench_server.py serves (behind the gate, or bare)."""
GATE_OPTIONS = {"allow_idp_initiated": True}
"""The one setting the gate's sign-ins are measured with beyond its defaults: it takes the
unsolicited POST the peers take (Shibboleth and mellon accept them as configured)."""


# ---------------------------------------------------------------------------------- the targets
@dataclass(frozen=True)
class Minter:
    """Builds one SP's sign-ins: the requests a browser sends, with a fresh Response each."""

    world: World
    host: str
    acs_path: str
    acs_url: str
    entity_id: str
    solicited: bool
    """True: the gate's sign-in (GET that starts it, then the POST answering its request)."""

    def requests(
        self, person: int, *, keys: KeyPair | None = None, relay: RelayTracker | None = None
    ) -> list[bytes]:
        name_id = f"user{person}@example.com"
        request_id = new_request_id() if self.solicited else None
        spec = ResponseSpec(
            issuer=IDP_ENTITY_ID,
            destination=self.acs_url,
            audience=self.entity_id,
            name_id=name_id,
            attributes={
                "email": [name_id],
                "displayName": [f"User {person}"],
                "groups": ["users"],
            },
            in_response_to=request_id,
            now=datetime.now(UTC),
        )
        # Okta's default: the assertion signed (RSA-SHA256, SHA-256 digest), not the Response
        xml = issue_response(spec, keys or self.world.idp, sign_response=False)
        b64 = base64.b64encode(xml).decode()
        if not self.solicited:
            body = urlencode({"SAMLResponse": b64}).encode()
            return [raw_request("POST", self.acs_path, FORM, body, host=self.host)]
        assert request_id is not None
        settings = self.world.settings()
        login = mint_login(settings, b64, request_id, relay or RelayTracker(settings))
        start = raw_request("GET", GATE_PAGE, {"Accept": "text/html"}, host=self.host)
        headers = {**FORM, "Cookie": login.cookie.decode()}
        return [start, raw_request("POST", self.acs_path, headers, login.body, host=self.host)]


def _mint(args: tuple[Minter, range]) -> list[list[bytes]]:
    minter, people = args
    relay = RelayTracker(minter.world.settings()) if minter.solicited else None
    return [minter.requests(p, relay=relay) for p in people]


@dataclass
class Target:
    """One SP under test, and what was measured of it."""

    label: str
    version: str
    port: int
    roots: tuple[int, ...]
    session_cookie: str
    protected: str
    bare_port: int
    bare_path: str
    bare_roots: tuple[int, ...]
    minter: Minter
    next_person: int = 0
    failed: str = ""
    """The correctness checks this SP failed (it is then not measured), or empty."""
    checks: dict[str, str] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    cpu_split: list[dict[str, float]] = field(default_factory=list)
    """Each round's CPU per sign-in by process (proc_tree.cpu_by_name)."""
    signed_in: int = 0
    memory: proc_tree.Memory | None = None
    gated: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    """Server CPU per sign-in start: a page asked for without a session, answered with a
    redirect to the IdP carrying an AuthnRequest (part of the gate's sign-ins, not the peers')."""

    @property
    def processes(self) -> tuple[int, ...]:
        """Every top process of the server and of its bare twin (the gate's is a server)."""
        return tuple(dict.fromkeys(self.roots + self.bare_roots))

    def people(self, count: int) -> range:
        first, self.next_person = self.next_person, self.next_person + count
        return range(first, first + count)


@contextlib.contextmanager
def gate_target(world: World, stack: str, label: str) -> Iterator[Target]:
    """The gate (defaults, but accepting unsolicited Responses as the peers do) on uvicorn's
    ``stack``, and the same app without it beside."""
    with (
        bench_http.server(world, gated=True, stack=stack, **GATE_OPTIONS) as gated,
        bench_http.server(world, gated=False, stack=stack) as bare,
    ):
        settle(gated.process.pid)
        settings = world.settings()
        yield Target(
            label=label,
            version=f"uvicorn {uvicorn_version()}, {' + '.join(STACKS[stack])}",
            port=gated.port,
            roots=(gated.process.pid,),
            session_cookie=settings.cookie_prefix + "_session=",
            protected=GATE_PAGE,
            bare_port=bare.port,
            bare_path=GATE_PAGE,
            bare_roots=(bare.process.pid,),
            minter=Minter(world, GATE_HOST, "/saml/acs", ACS_URL, ENTITY_ID, solicited=False),
        )


def settle(pid: int, timeout: float = 60) -> None:
    """Wait until the gate's start-up warm-up has its verification child ready (the child
    exists and has used no CPU for half a second). A sign-in that arrives during the warm-up
    starts a second child, which then stays for the server's life (about 55 MB of PSS): each run
    measures the gate with the one child its defaults ask for (``verify_concurrency``)."""
    deadline, quiet_since, last = time.monotonic() + timeout, time.monotonic(), -1.0
    while time.monotonic() < deadline:
        children = [p for p in proc_tree.tree((pid,)) if p != pid]
        used = proc_tree.cpu_seconds(tuple(children)) if children else -1.0
        if not children or used != last:
            last, quiet_since = used, time.monotonic()
        elif time.monotonic() - quiet_since >= 0.5:
            return
        time.sleep(0.05)
    raise RuntimeError("the gate's verification child did not settle after start-up")


def uvicorn_version() -> str:
    from importlib import metadata

    return metadata.version("uvicorn")


@contextlib.contextmanager
def apache_target(world: World, start: Callable[[World], Any]) -> Iterator[Target]:
    with start(world) as site:
        yield Target(
            label=site.name,
            version=site.version,
            port=site.port,
            roots=site.roots,
            session_cookie=site.session_cookie,
            protected=peer_apache.PROTECTED,
            bare_port=site.port,
            bare_path=peer_apache.BARE,
            bare_roots=site.roots,
            minter=Minter(
                world,
                f"127.0.0.1:{site.port}",
                site.acs_path,
                site.acs_url,
                site.entity_id,
                solicited=False,
            ),
        )


# ---------------------------------------------------------------------------------- correctness
async def attempt(target: Target, requests: list[bytes]) -> Reply:
    conn = await Connection.open(target.port)
    try:
        for request in requests:
            reply = await conn.exchange(request)
        return reply
    finally:
        conn.close()


def session_cookie_of(target: Target, reply: Reply) -> str | None:
    """The "name=value" session cookie ``reply`` sets, if it is a sign-in's answer."""
    if not bench_load.sets_session(reply, target.session_cookie):
        return None
    return next(
        v.split(";", 1)[0]
        for k, v in reply.headers
        if k == "set-cookie" and v.startswith(target.session_cookie)
    )


async def page_status(target: Target, cookie: str | None) -> int:
    headers = {"Accept": "text/html", **({"Cookie": cookie} if cookie else {})}
    request = raw_request("GET", target.protected, headers, host=target.minter.host)
    reply = await attempt(target, [request])
    if reply.status == 200 and reply.body != peer_apache.PAGE:
        raise RuntimeError(f"{target.label}: the protected page is not the benchmark's page")
    return reply.status


async def opens_page(target: Target, reply: Reply) -> bool:
    cookie = session_cookie_of(target, reply)
    return cookie is not None and await page_status(target, cookie) == 200


async def sign_in(target: Target) -> str:
    """A real sign-in; its session cookie ("name=value"), checked on the protected page."""
    reply = await attempt(target, target.minter.requests(target.people(1)[0]))
    cookie = session_cookie_of(target, reply)
    if cookie is None or await page_status(target, cookie) != 200:
        raise RuntimeError(f"{target.label}: a valid sign-in failed ({reply.status})")
    return cookie


def tampered(requests: list[bytes], person: int) -> list[bytes]:
    """The same sign-in with the signed NameID changed (the signature left as it was)."""
    *before, post = requests
    head, body = post.split(b"\r\n\r\n", 1)
    form = dict(pair.split(b"=", 1) for pair in body.split(b"&"))
    xml = base64.b64decode(unquote_to_bytes(form[b"SAMLResponse"].replace(b"+", b" ")))
    signed = f">user{person}@example.com</saml2:NameID>".encode()
    assert xml.count(signed) == 1
    xml = xml.replace(signed, b">admin@example.com</saml2:NameID>")
    form[b"SAMLResponse"] = quote_plus(base64.b64encode(xml)).encode()
    new_body = b"&".join(k + b"=" + v for k, v in form.items())
    head = head.replace(
        f"Content-Length: {len(body)}".encode(), f"Content-Length: {len(new_body)}".encode()
    )
    return [*before, head + b"\r\n\r\n" + new_body]


async def correctness(target: Target, world: World) -> None:
    """Sign-in works; replayed, tampered and forged Responses are refused. Fills ``checks``."""
    person = target.people(1)[0]
    good = target.minter.requests(person)
    reply = await attempt(target, good)
    works = await opens_page(target, reply) and await page_status(target, None) != 200
    target.checks["sign-in"] = f"{'a session' if works else 'FAILED'} ({reply.status})"
    cases = {
        "replayed": [good[-1]],
        "tampered": tampered(target.minter.requests(person + 1), person + 1),
        "forged": target.minter.requests(person + 2, keys=world.attacker),
    }
    target.people(2)
    for name, requests in cases.items():
        reply = await attempt(target, requests)
        accepted = await opens_page(target, reply)
        target.checks[name] = f"{'A SESSION' if accepted else 'no session'} ({reply.status})"
    failed = [k for k, v in target.checks.items() if "FAILED" in v or "A SESSION" in v]
    if failed:
        target.failed = ", ".join(failed)


# ---------------------------------------------------------------------------------- sign-ins
@dataclass(frozen=True)
class SignIns:
    count: int
    seconds: float
    cpu: dict[str, float]
    """Server CPU seconds, by process name (proc_tree.cpu_by_name)."""

    @property
    def cpu_each(self) -> float:
        return sum(self.cpu.values()) / self.count


def post_sign_ins(target: Target, items: list[list[bytes]]) -> SignIns:
    """Post ``items`` through bench_load.py (its own process); server CPU read around it."""
    with tempfile.NamedTemporaryFile(suffix=".pickle") as file:
        file.write(pickle.dumps(items))
        file.flush()
        args = [sys.executable, str(HERE / "bench_load.py"), "signins", "--port", str(target.port)]
        args += ["--requests", file.name, "--session-cookie", target.session_cookie]
        args += ["--connections", str(CONCURRENCY)]
        client = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert client.stdin is not None and client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the sign-in client did not start ({client.wait()})")
        before = proc_tree.cpu_by_name(target.roots)
        client.stdin.write("go\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        after = proc_tree.cpu_by_name(target.roots)
        cpu = {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}
        client.wait(30)
    if result["ok"] != len(items):
        raise RuntimeError(
            f"{target.label}: {len(items) - result['ok']} of {len(items)} valid sign-ins"
            f" did not set the session cookie (statuses {result['statuses']})"
        )
    target.signed_in += len(items)
    return SignIns(len(items), result["seconds"], cpu)


def mint(pool: ProcessPoolExecutor, target: Target, count: int) -> list[list[bytes]]:
    people = target.people(count)
    halves = [people[i::2] for i in range(2)]
    parts = pool.map(_mint, [(target.minter, half) for half in halves if len(half)])
    return [item for part in parts for item in part]


def sign_in_round(pool: ProcessPoolExecutor, target: Target, count: int) -> None:
    result = post_sign_ins(target, mint(pool, target, count))
    target.rates.append(result.count / result.seconds)
    target.cpu.append(result.cpu_each)
    target.cpu_split.append({k: v / result.count for k, v in result.cpu.items()})


def top_up(pool: ProcessPoolExecutor, target: Target, total: int, batch: int) -> None:
    """Sign-ins (untimed) until ``total``, in batches posted soon after minting (Shibboleth
    refuses a Response issued more than 60 s before it arrives: its MessageFlow rule)."""
    while target.signed_in < total:
        post_sign_ins(target, mint(pool, target, min(batch, total - target.signed_in)))


# ---------------------------------------------------------------------------------- requests
async def start_chain(target: Target) -> list[str]:
    """The paths a browser without a session asks this SP for before it is sent to the IdP: the
    protected page (and mellon's own login endpoint, which builds the AuthnRequest)."""
    path, paths = target.protected, []
    for _ in range(4):
        request = raw_request("GET", path, {"Accept": "text/html"}, host=target.minter.host)
        reply = await attempt(target, [request])
        location = dict(reply.headers).get("location", "")
        if not 300 <= reply.status < 400 or not location:
            raise RuntimeError(f"{target.label}: GET {path} without a session: {reply.status}")
        paths.append(path)
        parts = urlsplit(location)
        if parts.netloc and parts.netloc != target.minter.host:
            return paths  # on its way to the IdP
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    raise RuntimeError(f"{target.label}: no redirect to the IdP after {paths}")


@dataclass(frozen=True)
class Requests:
    """How the server CPU per request is measured: wrk for ``seconds``, longer if fewer than
    ``minimum`` requests were answered (mellon's sign-in start takes a tenth of a second)."""

    seconds: float
    minimum: int

    def cpu(
        self, target: Target, port: int, roots: tuple[int, ...], path: str, headers: dict[str, str]
    ) -> float:
        """Server CPU seconds per request of ``path`` (``roots``: the server's processes)."""
        headers = {"Host": target.minter.host, **headers}
        seconds = self.seconds
        while True:
            before = proc_tree.cpu_seconds(roots)
            run = bench_http.wrk_run(port, seconds, path=path, headers=headers)
            cpu = proc_tree.cpu_seconds(roots) - before
            if run.requests >= self.minimum or seconds >= 8 * self.seconds:
                return cpu / max(1, run.requests)
            seconds *= 2


def request_round(target: Target, cookie: str, how: Requests) -> None:
    """Server CPU per request: authenticated, bare, and sign-in start."""
    check = asyncio.run(page_status(target, cookie))
    if check != 200:
        raise RuntimeError(f"{target.label}: the session cookie opened nothing ({check})")
    target.gated.append(
        how.cpu(target, target.port, target.roots, target.protected, {"Cookie": cookie})
    )
    if asyncio.run(page_status(target, cookie)) != 200:  # wrk counts a redirect as a success
        raise RuntimeError(f"{target.label}: the session ended during the measure")
    target.bare.append(how.cpu(target, target.bare_port, target.bare_roots, target.bare_path, {}))
    chain = asyncio.run(start_chain(target))
    start = {"Accept": "text/html"}
    target.start.append(sum(how.cpu(target, target.port, target.roots, p, start) for p in chain))


# ---------------------------------------------------------------------------------- the machine
@dataclass
class MachineLoad:
    """The machine's load while the section ran: /proc/loadavg, and the CPU time of processes
    other than the benchmark's (/proc/stat's busy time minus the benchmark's own)."""

    start: tuple[float, float, float] = field(default_factory=proc_tree.load_average)
    samples: list[float] = field(default_factory=list)
    busy0: float = field(default_factory=lambda: _machine_busy())
    wall0: float = field(default_factory=time.monotonic)

    def sample(self) -> None:
        self.samples.append(proc_tree.load_average()[0])

    def describe(self, ours: float) -> str:
        busy = _machine_busy() - self.busy0
        capacity = (time.monotonic() - self.wall0) * (os.cpu_count() or 1)
        others = max(0.0, busy - ours)
        during = f"{min(self.samples):.2f}-{max(self.samples):.2f}" if self.samples else "?"
        return (
            f"load average {' / '.join(f'{x:.2f}' for x in self.start)} (1/5/15 min) at start,"
            f" 1-min {during} during; other processes used {others / capacity:.0%} of the"
            f" machine's {os.cpu_count()} cores meanwhile"
        )


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (user, nice, system, irq)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / proc_tree.TICK


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ---------------------------------------------------------------------------------- the section
def unavailable() -> str:
    missing = sorted({p for peer in peer_apache.NEEDS for p in peer_apache.missing(peer)})
    if missing:
        return (
            "skipped: the peers are Debian packages not installed here"
            f" (apt-get install {' '.join(missing)})"
        )
    if shutil.which("wrk") is None:
        return "skipped: the request measure needs wrk (apt-get install wrk)"
    return ""


def run(budget: Budget, report: Report, world: World) -> None:
    reason = unavailable()
    if reason:
        print(f"  {reason}", flush=True)
        report.add(Row(SECTION, "peers (Shibboleth SP, mod_auth_mellon)", reason))
        return
    load = MachineLoad()
    own0 = _own_cpu()
    with contextlib.ExitStack() as stack:
        targets = [
            stack.enter_context(
                gate_target(world, "fast", "saml-gate defaults (uvicorn httptools + uvloop)")
            ),
            stack.enter_context(gate_target(world, "h11", "saml-gate, uvicorn h11 + asyncio")),
            stack.enter_context(apache_target(world, peer_apache.shibboleth)),
            stack.enter_context(apache_target(world, peer_apache.mellon)),
        ]
        servers_before = {t.label: proc_tree.cpu_seconds(t.processes) for t in targets}
        for target in targets:
            asyncio.run(correctness(target, world))
            print(f"  {target.label} ({target.version}): {target.checks}", flush=True)
        measured = [t for t in targets if not t.failed]
        pool = stack.enter_context(ProcessPoolExecutor(2))
        measure(budget, pool, measured, load)
        servers = sum(proc_tree.cpu_seconds(t.processes) - servers_before[t.label] for t in targets)
        pool.shutdown()
        machine = load.describe(_own_cpu() - own0 + servers)
    add_rows(report, budget, targets, machine, asyncio.run(in_process_targets(budget, world)))


def measure(
    budget: Budget, pool: ProcessPoolExecutor, targets: list[Target], load: MachineLoad
) -> None:
    rounds = 1 if budget.quick else budget.rounds
    total = CONCURRENCY * 2 if budget.quick else 5_000
    how = Requests(seconds=1, minimum=5) if budget.quick else Requests(seconds=4, minimum=40)
    # warm-up (untimed): first sign-ins pay lazy start-up; their rate sizes the rounds
    sizes = {}
    for target in targets:
        warm = post_sign_ins(target, mint(pool, target, CONCURRENCY * 2))
        per_second = warm.count / warm.seconds
        sizes[target.label] = (
            CONCURRENCY * 2
            if budget.quick
            else int(min(1000, max(CONCURRENCY * 4, per_second * 4)))
        )
    print(f"  sign-ins per round: {sizes} ({CONCURRENCY} at a time)", flush=True)
    for r in range(rounds):
        for target in targets[r % len(targets) :] + targets[: r % len(targets)]:
            sign_in_round(pool, target, sizes[target.label])
        load.sample()
        print(
            f"  round {r + 1}: "
            + ", ".join(
                f"{t.label} {t.rates[-1]:,.0f}/s {t.cpu[-1] * 1e3:.2f} ms" for t in targets
            ),
            flush=True,
        )
    for target in targets:
        top_up(pool, target, total, 1000 if target.rates[-1] > 100 else 250)
        target.memory = proc_tree.memory(target.roots)
        print(
            f"  {target.label}: PSS after {target.signed_in} sign-ins: "
            f"{target.memory.total / 1e6:.0f} MB ({target.memory.by_name()})",
            flush=True,
        )
    load.sample()
    for r in range(rounds):
        for target in targets[r % len(targets) :] + targets[: r % len(targets)]:
            request_round(target, asyncio.run(sign_in(target)), how)
        load.sample()
        print(
            f"  round {r + 1}: "
            + ", ".join(
                f"{t.label} {t.gated[-1] * 1e6:.0f}/{t.bare[-1] * 1e6:.0f} µs" for t in targets
            ),
            flush=True,
        )


# ---------------------------------------------------------------------------------- the figures
def best_and_median(values: list[float], *, low: bool) -> tuple[float, float]:
    """The best round's figure (lowest cost or highest rate) and the median round's."""
    return (min(values) if low else max(values)), statistics.median(values)


def add_rows(
    report: Report, budget: Budget, targets: list[Target], machine: str, in_process: list[Row]
) -> None:
    rounds = 1 if budget.quick else budget.rounds
    lines = [
        f"Peers over loopback HTTP, {machine}. Sign-ins {CONCURRENCY} at a time; best of"
        f" {rounds} round(s), median in brackets; CPU of every process of the server.",
        "",
        "| SP | sign-ins/s | CPU ms per sign-in | server CPU µs per sign-in start"
        " | server CPU µs per gated / bare request | PSS MB after N sign-ins |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        report.add(
            Row(
                SECTION,
                f"{t.label}: correctness (sign-in; replayed, tampered, forged)",
                f"FAILED: {t.failed}" if t.failed else "passed",
                note=f"{t.version}; " + ", ".join(f"{k} {v}" for k, v in t.checks.items()),
            )
        )
        if t.failed:
            report.add(Row(SECTION, t.label, "failed correctness: not measured"))
            lines.append(f"| {t.label} | failed correctness ({t.failed}): not measured |||||")
            continue
        rate, rate_m = best_and_median(t.rates, low=False)
        cpu, cpu_m = best_and_median(t.cpu, low=True)
        start, start_m = best_and_median(t.start, low=True)
        gated, gated_m = best_and_median(t.gated, low=True)
        bare, bare_m = best_and_median(t.bare, low=True)
        assert t.memory is not None
        mb = t.memory.total / 1e6
        what = "GET + POST" if t.minter.solicited else "one POST, unsolicited"
        rows = [
            (
                "sign-ins per second",
                f"{rate:,.0f}/s (median {rate_m:,.0f})",
                f"{what}; {CONCURRENCY} at a time; {t.version}",
            ),
            (
                "server CPU per sign-in",
                f"{cpu * 1e3:.2f} ms (median {cpu_m * 1e3:.2f})",
                "best round: "
                + ", ".join(
                    f"{name} {ms * 1e3:.2f}" for name, ms in t.cpu_split[t.cpu.index(cpu)].items()
                ),
            ),
            (
                "server CPU per sign-in start (redirect with an AuthnRequest)",
                f"{start * 1e6:,.0f} µs (median {start_m * 1e6:,.0f})",
                "in the sign-in above" if t.minter.solicited else "not in the sign-in above",
            ),
            (
                "server CPU per authenticated / bare request",
                f"{gated * 1e6:.0f} / {bare * 1e6:.0f} µs"
                f" (median {gated_m * 1e6:.0f} / {bare_m * 1e6:.0f})",
                f"wrk, {bench_http.CONNECTIONS} keep-alive connections",
            ),
            (f"PSS after {t.signed_in:,} sign-ins", f"{mb:.0f} MB", t.memory.by_name()),
        ]
        for name, figure, note in rows:
            report.add(Row(SECTION, f"{t.label}: {name}", figure, note=note))
        lines.append(
            f"| {t.label} | {rate:,.0f} ({rate_m:,.0f}) | {cpu * 1e3:.2f} ({cpu_m * 1e3:.2f})"
            f" | {start * 1e6:,.0f} ({start_m * 1e6:,.0f})"
            f" | {gated * 1e6:.0f} / {bare * 1e6:.0f} ({gated_m * 1e6:.0f} / {bare_m * 1e6:.0f})"
            f" | {mb:.0f} (after {t.signed_in:,}) |"
        )
    lines += ["", "| target | figure | target | met |", "|---|---|---|---|"]
    for row in [*ratios(targets), *in_process]:
        report.add(row)
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        note = f" ({row.note})" if row.note else ""
        lines.append(f"| {row.what} | {row.figure}{note} | {row.target} | {met} |")
    report.notes.append("\n".join(lines))


def ratios(targets: list[Target]) -> list[Row]:
    """The issue's target ratios between the SPs: the gate's defaults (uvicorn's fast stack)
    against Shibboleth, the gate on h11 beside them as context."""
    gate, h11, shib = targets[0], targets[1], targets[2]

    def rate(t: Target) -> float:
        return max(t.rates)

    def cpu(t: Target) -> float:
        return min(t.cpu)

    def pss(t: Target) -> float:
        assert t.memory is not None
        return t.memory.total

    def bare_per_gated(t: Target) -> float:
        return min(t.bare) / min(t.gated)

    def row(
        what: str, value: Callable[[Target], float], ours: Target, other: Target, against: bool
    ) -> tuple[float, str] | None:
        """(our ratio, the other stack's as a note); None when a side was not measured."""
        if ours.failed or (against and shib.failed):
            return None
        x = value(ours) / (value(shib) if against else 1)
        note = ""
        if not other.failed:
            y = value(other) / (value(shib) if against else 1)
            note = f"{'h11' if other is h11 else 'fast'} stack {y:.2f}"
        return x, note

    found = []
    for what, value, ours, other, against, target, met in (
        ("sign-ins/s, gate defaults / Shibboleth", rate, gate, h11, True, "≥ 2", 2.0),
        ("CPU per sign-in, gate defaults / Shibboleth", cpu, gate, h11, True, "≤ 0.5", -0.5),
        (
            "server CPU per request, bare / gated, uvicorn fast stack",
            bare_per_gated,
            gate,
            h11,
            False,
            "≥ 0.9",
            0.9,
        ),
        ("PSS after the sign-ins, gate defaults / Shibboleth", pss, gate, h11, True, "≤ 1", -1.0),
    ):
        result = row(what, value, ours, other, against)
        if result is None:
            found.append(Row(SECTION, what, "not measured: a side failed correctness", target))
            continue
        x, note = result
        ok = x >= met if met > 0 else x <= -met
        found.append(Row(SECTION, what, f"{x:.2f}", target, ok, note))
    return found


async def in_process_targets(budget: Budget, world: World) -> list[Row]:
    """The issue's two in-process targets, measured again in this run (sections 1 and 6's
    measures): the gate's overhead beside SessionMiddleware's, the ACS sign-in beside its floor."""
    gate, session = await overheads(world, budget.n(40_000, 200), budget.rounds + 2)
    full, floor = await sign_in_and_floor(budget, world)
    return [
        Row(
            SECTION,
            "in-process overhead, gate / SessionMiddleware (identity JWT on)",
            f"{gate / session:.2f}",
            "≤ 0.3",
            gate / session <= 0.3,
            f"{gate * 1e6:.2f} / {session * 1e6:.2f} µs",
        ),
        Row(
            SECTION,
            "ACS sign-in CPU / its floor (lxml + xmlsec: parse, check the signatures)",
            f"{full.cpu / floor.cpu:.2f}",
            "≤ 1.5",
            full.cpu / floor.cpu <= 1.5,
            f"{full.cpu * 1e3:.2f} / {floor.cpu * 1e3:.2f} ms, in process, one at a time,"
            " both-signed",
        ),
    ]
