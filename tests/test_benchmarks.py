"""Smoke run of the benchmark suite: it must run and print its table, not meet its targets.

Targets are checked by reading the output of ``python benchmarks/run.py`` (docs/performance.md),
never asserted here: timings on a shared CI machine say nothing reliable.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
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
    "Apache + Shibboleth SP: sign-ins per second",
    "Apache + mod_auth_mellon: server CPU per sign-in",
    "saml-gate, uvicorn h11 + asyncio: server CPU per authenticated / bare request",
    "saml-gate defaults (uvicorn httptools + uvloop): PSS after",
    "sign-ins/s, gate defaults / Shibboleth",
    "server CPU per request, bare / gated, uvicorn fast stack",
    "in-process overhead, gate / SessionMiddleware (identity JWT on)",
    "Universal Logout: request to the last of 2 workers refusing",
)
#: The SPs of the peers section: each must pass its correctness checks (or it is not measured).
SPS = (
    "saml-gate defaults (uvicorn httptools + uvloop)",
    "saml-gate, uvicorn h11 + asyncio",
    "Apache + Shibboleth SP",
    "Apache + mod_auth_mellon",
)
#: What the peers section (benchmarks/peer_apache.py) runs: Debian's packages, installed by .ci/run.
PEERS = ("/usr/sbin/apache2", "/usr/sbin/shibd", "/usr/lib/apache2/modules/mod_shib.so")
PEERS += ("/usr/lib/apache2/modules/mod_auth_mellon.so",)


def test_quick_benchmark_run_prints_the_whole_table() -> None:
    if shutil.which("xmlsec1") is None:
        pytest.skip("pysaml2's default backend needs the xmlsec1 program: apt-get install xmlsec1")
    if shutil.which("wrk") is None:
        pytest.skip("the HTTP section's load generator is wrk: apt-get install wrk")
    absent = [path for path in PEERS if not Path(path).exists()]
    if absent:
        pytest.skip(
            "the peers section needs apache2, libapache2-mod-shib, shibboleth-sp-utils and"
            f" libapache2-mod-auth-mellon: {', '.join(absent)} missing"
        )
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
    figures = {
        cells[2].strip(): cells[3].strip()
        for line in table.splitlines()
        if len(cells := line.split("|")) > 4
    }
    for sp in SPS:
        assert figures[f"{sp}: correctness (sign-in; replayed, tampered, forged)"] == "passed", sp
    # the peers' table, ready to paste into docs/performance.md
    assert "| SP | sign-ins/s | CPU ms per sign-in |" in result.stdout


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


def test_peers_section_without_the_debian_packages_says_so() -> None:
    """Where Apache or an SP module is not installed the section is skipped, with the fix."""
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "benchmarks")
        import bench_peers, peer_apache
        from bench_common import Budget, Report
        peer_apache.NEEDS = {
            "shibboleth": (("/nonexistent/mod_shib.so", "libapache2-mod-shib"),),
            "mellon": (("/usr/sbin/nonexistent-apache2", "apache2"),),
        }
        report = Report()
        bench_peers.run(Budget.of(True), report, None)
        print("ROWS", [(r.what, r.figure, r.met) for r in report.rows])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped: the peers are Debian packages not installed here" in result.stdout
    assert "apt-get install apache2 libapache2-mod-shib" in result.stdout
    rows = result.stdout.split("ROWS", 1)[1]
    assert "'peers (Shibboleth SP, mod_auth_mellon)'" in rows and "None)" in rows


def test_request_instructions_rows_admit_the_signed_in_request(tmp_path: Path) -> None:
    """benchmarks/request_instructions.py without valgrind: every row it counts answers 200, the
    gated ones with the identity JWT (the script asserts both), so a count is of the real path."""
    world = tmp_path / "world.pickle"
    bench = ROOT / "benchmarks"
    make = [sys.executable, "acs_instructions.py", "--world", str(world), "--make"]
    subprocess.run(make, cwd=bench, check=True, capture_output=True, timeout=300)
    rows = ("bare", "gated", "starlette", "gated, verdict given", "gated, session given")
    for row in rows:
        script = [sys.executable, "request_instructions.py", "--world", str(world), row, "3"]
        done = subprocess.run(script, cwd=bench, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (row, done.stderr[-2000:])
