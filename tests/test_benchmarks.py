"""Smoke run of the benchmark suite: it must run and print its table, not meet its targets.

Targets are checked by reading the output of ``python benchmarks/run.py`` (docs/performance.md),
never asserted here: timings on a shared CI machine say nothing reliable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SECTION_ROWS = (
    "gate overhead / SessionMiddleware overhead",
    "Set-Cookie on requests needing no refresh",
    "gate verifier, both-signed",
    "gate speed-up over python3-saml, both-signed",
    "gate speed-up over pysaml2, both-signed",
    "ACS endpoint, full sign-in, encrypted (both-signed)",
    "gated / bare throughput",
    "authenticated GET p99, 50 concurrent sign-ins",
    "authenticated GET p99, plain GETs at the sign-ins' request rate",
    "longest loop callback, bogus-ACS flood",
    "50 concurrent sign-ins: every answer as expected",
    "sign-ins over a simulated hour",
    "overhead Redis / memory",
    "store round trips per authenticated request (counted)",
    "revocation propagation to another process",
    "open-loop sign-ins at 50% of capacity",
    "ACS sign-in / its floor",
)


def test_quick_benchmark_run_prints_the_whole_table() -> None:
    if shutil.which("xmlsec1") is None:
        pytest.skip("pysaml2's default backend needs the xmlsec1 program: apt-get install xmlsec1")
    if shutil.which("wrk") is None:
        pytest.skip("the HTTP section's load generator is wrk: apt-get install wrk")
    try:
        import onelogin.saml2.response  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"python3-saml is a peer of the benchmark: pip install python3-saml ({exc})")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    table = result.stdout.split("RESULTS", 1)[1]
    for row in SECTION_ROWS:
        assert row in table, row
    assert "not measured" not in table and "refused" not in table, table
    assert "targets met:" in result.stdout


def test_unknown_section_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "nonsense"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown section(s) nonsense" in result.stderr
