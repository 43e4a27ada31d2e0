"""A verification child, and the zygote that forks it, validate one document at a time: they
build one XSD validator, where a process verifying in threads builds a pool of them."""

from __future__ import annotations

import subprocess
import sys

from saml_gate.saml.schema import POOL_SIZE

VALIDATORS = "from saml_gate.saml.schema import saml_schema; print(saml_schema()._pool.qsize())"


def _validators(setup: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", f"{setup}; {VALIDATORS}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip())


def test_the_zygote_builds_one_validator() -> None:
    assert _validators("from saml_gate.runtime import zygote; zygote.load()") == 1


def test_a_process_verifying_in_threads_keeps_its_pool() -> None:
    assert POOL_SIZE > 1
    assert _validators("import saml_gate.saml.response") == POOL_SIZE
