"""gc_freeze: the start-up heap is frozen only when asked (each check in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GATE_STARTS = textwrap.dedent(
    """
    import asyncio, gc, sys, tempfile
    from saml_gate import SamlGate

    async def app(scope, receive, send):
        pass

    options = {} if sys.argv[1] == "unset" else {"gc_freeze": sys.argv[1] == "on"}
    gate = SamlGate(app, base_url="http://127.0.0.1:8000", dev_idp=True, secret_key="s" * 40,
                    state_dir=tempfile.mkdtemp(), verify_isolation="thread", **options)

    async def main():
        await gate.start()
        print(gc.get_freeze_count())
        await gate.stop()

    asyncio.run(main())
    """
)

WORKER_ANSWERS = textwrap.dedent(
    """
    import anyio, collections, gc, sys, tempfile
    from saml_gate.config.settings import GateSettings
    from saml_gate.runtime.saml_state import LiveSaml
    from saml_gate.runtime.worker_child import _answer

    settings = GateSettings.load(base_url="http://127.0.0.1:8000", dev_idp=True,
                                 secret_key="s" * 40, state_dir=tempfile.mkdtemp(),
                                 verify_isolation="thread", gc_freeze=sys.argv[1] == "on")
    saml = LiveSaml(settings)
    anyio.run(saml.load)
    spec = saml.work_spec
    before = gc.get_freeze_count()
    answer = _answer(collections.OrderedDict(), spec.digest, spec.payload, "prepare", [])
    assert "ok" in answer, answer
    print(before, gc.get_freeze_count())
    """
)


def run(code: str, arg: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAML_GATE_")}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code, arg],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


@pytest.mark.parametrize(("arg", "env", "frozen"), [
    ("unset", {}, False),
    ("off", {}, False),
    ("on", {}, True),
    ("unset", {"SAML_GATE_GC_FREEZE": "true"}, True),
])  # fmt: skip
def test_the_gate_freezes_its_heap_only_when_asked(
    arg: str, env: dict[str, str], frozen: bool
) -> None:
    assert (int(run(GATE_STARTS, arg, **env)) > 0) is frozen


@pytest.mark.parametrize("arg", ["off", "on"])
def test_a_verification_worker_freezes_after_its_first_job_only_when_asked(arg: str) -> None:
    before, after = map(int, run(WORKER_ANSWERS, arg).split())
    assert before == 0
    assert (after > 0) is (arg == "on")
