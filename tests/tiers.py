"""The test suite's two tiers: the fast one a developer's ``pytest`` runs, and the slow one.

A test is slow when it starts subprocesses or real servers (uvicorn, nginx, Redis, Chromium,
IdPs, real upstreams), deploys, installs, builds, or runs a whole corpus or benchmark. The
modules and folders that are slow throughout are listed here, in one place, rather than marked
in each file; a module that is mixed marks its slow tests itself (``@pytest.mark.slow``), and the
markers of real components (``interop``, ``browser``, ``request_side``) imply ``slow``.

Which tests run:

- ``pytest --all`` (the README's test command, so CI's) runs both tiers, and so does any run
  with ``CI`` set: in CI nothing is left out.
- ``pytest`` leaves out the slow tier (reported as deselected);
- ``pytest tests/test_multiworker.py`` (a file or test named on the command line) runs what is
  named, slow or not; so does a ``-m`` expression (``pytest -m interop``), which chooses itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Slow throughout: paths relative to tests/, a folder ending in "/".
SLOW_PATHS = (
    "browser/",
    "interop/",
    "request_side/",
    "security/test_differential_corpus.py",
    "test_benchmarks.py",
    "test_fresh_install.py",
)

#: Markers of tests that need real components: they are slow too.
SLOW_MARKERS = ("interop", "browser", "request_side")

ALL_OPTION = "--all"


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        ALL_OPTION,
        action="store_true",
        help="run the slow tier too (subprocesses, real servers, deployments, corpora);"
        " the README's test command and CI do",
    )


def is_slow(item: pytest.Item) -> bool:
    if item.get_closest_marker("slow") or any(item.get_closest_marker(m) for m in SLOW_MARKERS):
        return True
    relative = item.path.resolve().relative_to(TESTS).as_posix()
    return any(
        relative.startswith(path) if path.endswith("/") else relative == path for path in SLOW_PATHS
    )


def named_files(config: pytest.Config) -> set[Path]:
    """The test files named on the command line (folders are not: they ask for a tier)."""
    root = config.invocation_params.dir
    files = set()
    for arg in config.args:
        path = (root / arg.split("::")[0]).resolve()
        if path.is_file():
            files.add(path)
    return files


def runs_everything(config: pytest.Config) -> bool:
    return bool(
        config.getoption(ALL_OPTION) or os.environ.get("CI") or config.getoption("markexpr")
    )


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tier; leave it out unless this run asks for everything or names it."""
    for item in items:
        if is_slow(item) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    if runs_everything(config):
        return
    named = named_files(config)
    left_out = [i for i in items if i.get_closest_marker("slow") and i.path.resolve() not in named]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        chosen = set(left_out)
        items[:] = [i for i in items if i not in chosen]
