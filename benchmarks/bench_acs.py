"""Section 2: verifying Responses, the gate against python3-saml and pysaml2 on the same bytes.

Each verifier gets the same base64 Response of each shape and must accept it and read the same
NameID before it is timed (a refusal would be timed as an error path). Single thread, best of
several rounds. Then the gate once more through its real ACS endpoint (form parsing, pending-login
cookie and RelayState, worker-thread hop, replay cache, session cookie, 303), each post a fresh
sign-in, since the gate refuses a replayed Response.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_common import (
    ACS_URL,
    ENTITY_ID,
    IDP_ENTITY_ID,
    IDP_SSO_URL,
    NAME_ID,
    SHAPES,
    Budget,
    Login,
    Report,
    Row,
    World,
    acs_scope,
    call,
    fresh_responses,
    hello_app,
    http_scope,
    mint_login,
    new_request_id,
    per_second,
    response_b64,
    status_of,
)

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import cert_base64
from saml_gate.saml.response import ResponseVerifier

SECTION = "2 ACS"
Verify = Callable[[str, str], str]
"""(base64 Response, request ID) -> the NameID read; raises on refusal."""


# ---------------------------------------------------------------------------------- verifiers
def gate_verifier(world: World) -> Verify:
    settings = world.settings()
    gate = world.started_gate(hello_app)
    verifier: ResponseVerifier = gate.core.saml.verifier

    def verify(b64: str, request_id: str) -> str:
        return verifier.verify(b64, expected_request_ids={request_id}, now=settings.clock()).name_id

    return verify


def python3_saml_verifier(world: World, shape: str) -> Verify | str:
    """python3-saml in strict mode, or why it cannot run here."""
    try:
        from onelogin.saml2.response import OneLogin_Saml2_Response
        from onelogin.saml2.settings import OneLogin_Saml2_Settings
    except ImportError as exc:  # e.g. an xmlsec/lxml libxml2 mismatch
        return f"cannot import python3-saml: {exc}"
    encrypted = "encrypted" in shape
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": ENTITY_ID,
                "assertionConsumerService": {"url": ACS_URL, "binding": X.BINDING_HTTP_POST},
                "NameIDFormat": X.NAMEID_EMAIL,
                "x509cert": cert_base64(world.sp.cert_pem),
                "privateKey": world.sp.key_pem.decode(),
            },
            "idp": {
                "entityId": IDP_ENTITY_ID,
                "singleSignOnService": {"url": IDP_SSO_URL, "binding": X.BINDING_HTTP_REDIRECT},
                "x509cert": cert_base64(world.idp.cert_pem),
            },
            "security": {
                "wantAssertionsSigned": True,
                "wantMessagesSigned": shape != "assertion-signed",
                "wantAssertionsEncrypted": encrypted,
                "rejectDeprecatedAlgorithm": True,
            },
        },
        sp_validation_only=True,
    )
    request_data = {
        "https": "off",
        "http_host": "127.0.0.1",
        "server_port": "8000",
        "script_name": "/saml/acs",
        "get_data": {},
        "post_data": {},
    }

    def verify(b64: str, request_id: str) -> str:
        response = OneLogin_Saml2_Response(settings, b64)
        response.is_valid(request_data, request_id=request_id, raise_exceptions=True)
        return str(response.get_nameid())

    return verify


def pysaml2_verifier(world: World, shape: str, folder: Path) -> Verify | str:
    """pysaml2's SP with its default crypto backend (the xmlsec1 program), or why not."""
    if shutil.which("xmlsec1") is None:
        return "the xmlsec1 program is not installed (apt-get install xmlsec1)"
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    files = {}
    for name, data in (("sp.key", world.sp.key_pem), ("sp.crt", world.sp.cert_pem)):
        files[name] = folder / name
        files[name].write_bytes(data)
    config = SPConfig().load(
        {
            "entityid": ENTITY_ID,
            "key_file": str(files["sp.key"]),
            "cert_file": str(files["sp.crt"]),
            "encryption_keypairs": [
                {"key_file": str(files["sp.key"]), "cert_file": str(files["sp.crt"])}
            ],
            "metadata": {"inline": [world.metadata]},
            "allow_unknown_attributes": True,
            "accepted_time_diff": 90,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]},
                    "allow_unsolicited": False,
                    "want_response_signed": shape != "assertion-signed",
                    "want_assertions_signed": True,
                }
            },
        }
    )
    client = Saml2Client(config=config)

    def verify(b64: str, request_id: str) -> str:
        response = client.parse_authn_request_response(
            b64,
            BINDING_HTTP_POST,
            outstanding={request_id: "/"},
            conv_info={"entity_id": ENTITY_ID},  # without it pysaml2 skips the Recipient check
        )
        if response is None or response.assertion is None or response.name_id is None:
            raise RuntimeError("pysaml2 returned a Response without a verified assertion")
        return str(response.name_id.text).strip()

    return verify


def time_verifier(verify: Verify, b64: str, request_id: str, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            verify(b64, request_id)
        best = min(best, (time.perf_counter() - start) / n)
    return best


# ---------------------------------------------------------------------------------- endpoint
@dataclass(frozen=True)
class EndpointCost:
    """Seconds per sign-in posted to the real ACS endpoint, one at a time (best of rounds)."""

    wall: float
    cpu: float
    """CPU time of this process (every thread) and of the verification children together."""


CpuMark = tuple[float, dict[int, int]]
"""This process's CPU seconds, and each child process's CPU nanoseconds, at one moment."""


def _children_cpu() -> dict[int, int]:
    """CPU nanoseconds used so far by each child of this process (the verification children):
    the kernel's exact run time per task, not the 10 ms ticks of /proc/<pid>/stat."""
    me, found = os.getpid(), {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
            if parent == me:
                with open(f"/proc/{entry.name}/schedstat") as run_time:
                    found[int(entry.name)] = int(run_time.read().split()[0])
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
    return found


def cpu_mark() -> CpuMark:
    return time.process_time(), _children_cpu()


def cpu_since(mark: CpuMark) -> float:
    """CPU seconds used since ``mark`` by this process and its children (a child started since
    counts whole: its start-up is part of the work done meanwhile)."""
    own, children = mark
    now = _children_cpu()
    return (
        time.process_time() - own + sum(ns - children.get(pid, 0) for pid, ns in now.items()) / 1e9
    )


async def endpoint_cost(
    world: World, shape: str, n: int, rounds: int, **options: Any
) -> EndpointCost:
    """Post ``n`` fresh sign-ins ``rounds`` times to a gate built with ``options``."""
    gate = world.gate(hello_app, **options)
    pairs = fresh_responses(world, shape, n * rounds, datetime.now(UTC))
    logins = [mint_login(gate.settings, b64, rid, gate.core.relay) for rid, b64 in pairs]
    await post(gate, logins[0])  # first call: worker start-up, imports
    wall = cpu = float("inf")
    for r in range(rounds):
        batch = logins[r * n : (r + 1) * n] if r else logins[1:n]
        start, mark = time.perf_counter(), cpu_mark()
        for login in batch:
            await post(gate, login)
        wall = min(wall, (time.perf_counter() - start) / len(batch))
        cpu = min(cpu, cpu_since(mark) / len(batch))
    return EndpointCost(wall, cpu)


async def time_endpoint(world: World, shape: str, n: int, rounds: int) -> float:
    """Best-of-rounds seconds per sign-in posted to the real ACS endpoint, one at a time."""
    return (await endpoint_cost(world, shape, n, rounds)).wall


async def post(gate: Any, login: Login) -> None:
    sent = await call(gate, acs_scope(login), login.body)
    if status_of(sent) != 303:
        raise RuntimeError(f"the ACS refused a valid sign-in: {sent}")


async def time_login_start(world: World, n: int, rounds: int) -> float:
    gate = world.gate(hello_app)
    scope = http_scope("GET", "/hello", [(b"accept", b"text/html")])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            sent = await call(gate, dict(scope))
            assert status_of(sent) == 303
        best = min(best, (time.perf_counter() - start) / n)
    return best


# ---------------------------------------------------------------------------------- section
def run(budget: Budget, report: Report, world: World) -> None:
    rounds = budget.rounds
    folder = Path(tempfile.mkdtemp(prefix="saml-gate-bench-acs-"))
    gate = gate_verifier(world)
    for shape in SHAPES:
        request_id = new_request_id()
        b64 = response_b64(world, shape, request_id=request_id)
        kb = len(b64) * 3 / 4 / 1024
        peers: dict[str, Verify | str] = {
            "python3-saml": python3_saml_verifier(world, shape),
            "pysaml2": pysaml2_verifier(world, shape, folder),
        }
        assert gate(b64, request_id) == NAME_ID
        ours = time_verifier(gate, b64, request_id, budget.n(1000, 20), rounds)
        plain = "encrypted" not in shape
        floor = 1e-3 if plain else 2e-3
        report.add(
            Row(
                SECTION,
                f"gate verifier, {shape} ({kb:.1f} KB)",
                per_second(ours),
                "≥ 1,000/s" if plain else "≥ 500/s",
                ours <= floor,
            )
        )
        for peer, verify in peers.items():
            if isinstance(verify, str):
                report.add(Row(SECTION, f"{peer}, {shape}", "not measured", note=verify))
                continue
            try:
                name_id = verify(b64, request_id)
            except Exception as exc:  # a peer refusing our input is a finding, not a crash
                report.add(
                    Row(SECTION, f"{peer}, {shape}", "refused", note=f"{type(exc).__name__}: {exc}")
                )
                continue
            assert name_id == NAME_ID, (peer, name_id)
            n = budget.n(100 if peer == "python3-saml" else 10, 2)
            theirs = time_verifier(verify, b64, request_id, n, rounds)
            report.add(Row(SECTION, f"{peer}, {shape}", per_second(theirs)))
            want = 3 if peer == "python3-saml" else 40
            report.add(
                Row(
                    SECTION,
                    f"gate speed-up over {peer}, {shape}",
                    f"{theirs / ours:.1f}x",
                    f"≥ {want}x" if plain else "",
                    theirs / ours >= want if plain else None,
                )
            )
    for shape in SHAPES:
        plain = "encrypted" not in shape
        seconds = asyncio.run(time_endpoint(world, shape, budget.n(300, 10), min(rounds, 3)))
        report.add(
            Row(
                SECTION,
                f"ACS endpoint, full sign-in, {shape}",
                per_second(seconds),
                "≥ 1,000/s" if plain else "≥ 500/s",
                seconds <= (1e-3 if plain else 2e-3),
                "in process, one at a time",
            )
        )
    start = asyncio.run(time_login_start(world, budget.n(2000, 20), rounds))
    report.add(
        Row(SECTION, "sign-in start (303 to the IdP with an AuthnRequest)", per_second(start))
    )
