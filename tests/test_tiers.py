"""The suite's tiers (tests/tiers.py): which tests a run leaves out, asked of real pytest runs
(``--collect-only``, in a subprocess without ``CI``, which would run everything)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(*args: str) -> tuple[set[str], str]:
    """The test files a ``pytest --collect-only`` run with ``args`` would run, and its summary."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    files = {line.split("::")[0] for line in run.stdout.splitlines() if "::" in line}
    return files, run.stdout.strip().splitlines()[-1]


def test_a_plain_run_leaves_the_slow_tier_out_and_says_so() -> None:
    files, summary = collected()
    assert "deselected" in summary
    assert {"tests/test_policy.py", "tests/test_access_policy.py"} <= files
    slow = {"tests/test_fresh_install.py", "tests/test_tiers.py", "tests/test_multiworker.py"}
    assert not files & slow
    assert not any(f.startswith(("tests/interop/", "tests/request_side/")) for f in files)


def test_all_runs_every_tier() -> None:
    files, summary = collected("--all")
    assert "deselected" not in summary
    assert {"tests/test_fresh_install.py", "tests/test_policy.py"} <= files
    assert any(f.startswith("tests/request_side/") for f in files)


def test_what_is_named_runs_whatever_its_tier() -> None:
    files, _ = collected("tests/test_fresh_install.py", "tests/interop", "tests")
    assert {"tests/test_fresh_install.py", "tests/test_policy.py"} <= files
    assert any(f.startswith("tests/interop/") for f in files)
    assert "tests/test_multiworker.py" not in files  # "tests" names the whole suite: a tier
    files, _ = collected("-m", "browser")
    assert files and all(f.startswith("tests/browser/") for f in files)
