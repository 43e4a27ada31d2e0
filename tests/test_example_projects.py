"""The examples' own test projects (examples/*/tests) run as their authors would run them: in a
pytest of their own, with nothing but the installed saml-gate and its plugin (no conftest).

They run in a child process so that the plugin is found through its ``pytest11`` entry point,
as in any other project, and so that the Django example configures Django in a process of its
own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ("examples/fastapi_app/tests", "examples/django_asgi/tests")


def test_the_projects_use_no_conftest() -> None:
    for project in PROJECTS:
        assert not list((ROOT / project).rglob("conftest.py")), project


def test_the_example_test_projects_pass() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PROJECTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "error" not in summary, report
