"""mypy --strict and ruff are part of the test suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_mypy_strict_is_clean() -> None:
    result = run("mypy", "--strict", "src/saml_gate")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_strict_is_clean_on_the_examples() -> None:
    """The examples are what users copy: ``app.add_middleware(SamlGate, ...)`` included."""
    result = run("mypy", "--strict", "examples")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_check_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_clean() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]
