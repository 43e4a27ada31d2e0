"""How much CPU a refused message costs, beside a valid sign-in (figures for SECURITY.md).

    python -m tests.security.measure_costs

Prints, per kind of message, the median CPU time of one verification (``ResponseVerifier``) or
one whole ACS request (ASGI, for the size cases refused before the verifier), over repeated
runs in this process. Not a test: timings are never asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import anyio

from saml_gate import SamlGate
from saml_gate.errors import GateError
from saml_gate.saml.keys import generate_keypair
from tests.security.acs import CorpusKeys
from tests.security.catalogue import CASES_BY_ID
from tests.security.corpus import form_value
from tests.security.forge import Mode, serialize
from tests.security.mutate import b64
from tests.security.test_limits import REQUEST_ID, post_streamed, verifier_with
from tests.support import FrozenClock, gate_options, make_app

CASES = (
    "52-oversized-saml-response",
    "52-base64-junk-characters",
    "53-deflate-bomb",
    "45-billion-laughs",
    "44-xxe-parameter-entity-oob",
    "52-deep-nesting",
    "52-many-elements",
    "52-nesting-100",
    "52-attributes-one-element",
    "52-namespace-declarations-one-element",
    "52-namespace-declarations-nested",
    "17-attacker-key-both-signed",
    "04-tamper-name-id-bs",
    "25-xsw3-bs",
    "67-ciphertext-flip-middle",
)


def cpu_ms(run: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.process_time_ns()
        run()
        samples.append((time.process_time_ns() - start) / 1e6)
    return statistics.median(samples)


def main() -> None:
    keys = CorpusKeys(
        generate_keypair("test IdP"),
        generate_keypair("test SP"),
        generate_keypair("attacker"),
        generate_keypair("test IdP"),
    )
    clock = FrozenClock()
    ctx = keys.context(REQUEST_ID, clock, "http://127.0.0.1:9")
    verifier = verifier_with(keys)

    def verify(value: str) -> str:
        try:
            verifier.verify(value, expected_request_ids={REQUEST_ID}, now=clock.now)
        except GateError as refusal:
            return refusal.code
        return "accepted"

    rows: list[tuple[str, str, int, float]] = []
    for name, xml in (
        ("golden, both signed", ctx.golden_xml(Mode.BS)),
        ("golden, encrypted (Okta layout)", serialize(ctx.encrypted(Mode.BS))),
    ):
        value = b64(xml)
        rows.append((name, verify(value), len(value), cpu_ms(lambda v=value: verify(v), 200)))
    for case_id in CASES:
        value = form_value(CASES_BY_ID[case_id].build(ctx))
        rows.append((case_id, verify(value), len(value), cpu_ms(lambda v=value: verify(v), 50)))

    with TemporaryDirectory() as folder:
        gate = SamlGate(make_app(), **gate_options(keys.idp, keys.sp, clock, folder))
        body = [b"SAMLResponse=" + b"A" * 65536] * 160  # 10 MB
        for name, declared in (
            ("10 MB POST, Content-Length", True),
            ("10 MB POST, streamed", False),
        ):

            def post(declared: bool = declared) -> int:
                status, _ = anyio.run(post_streamed, gate, body, 10_485_920 if declared else None)
                return status

            rows.append((name, f"HTTP {post()}", 10_485_920, cpu_ms(post, 20)))

    print("| message | outcome | bytes posted | CPU ms (median) |")
    print("|---|---|---|---|")
    for name, result, size, ms in rows:
        print(f"| {name} | {result} | {size:,} | {ms:.2f} |")
    print(f"\n(measured by {Path(__file__).name}; one process, one core)")


if __name__ == "__main__":
    main()
