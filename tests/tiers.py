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
- ``pytest tests/test_multiworker.py`` or ``pytest tests/interop`` (a file, test or folder named
  on the command line, other than the whole ``tests``) runs what is named, slow or not; so does
  a ``-m`` expression (``pytest -m interop``), which chooses for itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Slow throughout: paths relative to tests/, a folder ending in "/". Each costs seconds of
#: subprocesses or servers (measured with --durations); a module whose one real server costs
#: well under a second a test stays in the fast tier.
SLOW_PATHS = (
    "browser/",  # Chromium
    "interop/",  # SimpleSAMLphp, saml-idp, uvicorn, an HTTPS proxy
    "request_side/",  # real servers and real frameworks behind the gate
    "security/test_acs_corpus.py",  # the whole attack corpus (tests/security: name it)
    "security/test_differential_corpus.py",  # the corpus through pysaml2 and python3-saml
    "test_benchmarks.py",  # the benchmark smoke run
    "test_cli.py",  # the command line, as subprocesses
    "test_cli_check.py",
    "test_cli_examples.py",
    "test_cli_keygen.py",
    "test_cli_options.py",
    "test_code_quality.py",  # ruff and mypy
    "test_example_projects.py",  # the examples' own test suites
    "test_forward_auth_proxies.py",  # nginx and Caddy
    "test_fresh_install.py",  # installs into fresh virtual environments
    "test_gate_agreement.py",  # saml-gate run processes on one Redis
    "test_gc_freeze.py",  # a fresh interpreter per check
    "test_logging_defaults.py",  # uvicorn and the CLI as subprocesses
    "test_machine_access_hosts.py",  # two uvicorn hosts on one Redis, the tokens command
    "test_multihost.py",  # three gate processes behind HAProxy
    "test_multiworker.py",  # uvicorn --workers
    "test_packaging.py",  # builds the wheel
    "test_proxy_error_detail.py",  # saml-gate proxy as a subprocess
    "test_proxy_hygiene.py",  # uvicorn and raw socket servers
    "test_redis_deployments.py",  # Redis TLS, Cluster and Sentinel servers
    "test_sessions_cli.py",  # uvicorn --workers and the sessions command
    "test_signed_requests.py",  # commands as subprocesses
    "test_startup.py",  # uvicorn as a subprocess
    "test_tiers.py",  # collects the whole suite, three times
    "test_store_outage.py",  # redis-server processes stopped and restarted
    "test_universal_logout_hosts.py",  # gate processes on one Redis
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
    """Whether ``item`` is in the slow tier without being marked ``slow`` in its file."""
    if any(item.get_closest_marker(m) for m in SLOW_MARKERS):
        return True
    path = item.path.resolve()
    if not path.is_relative_to(TESTS):
        return False
    relative = path.relative_to(TESTS).as_posix()
    return any(
        relative.startswith(path) if path.endswith("/") else relative == path for path in SLOW_PATHS
    )


def named_paths(config: pytest.Config) -> tuple[Path, ...]:
    """The files and folders named on the command line, but the whole suite's (``tests``, the
    project): naming one asks for what is in it, slow or not."""
    root = config.invocation_params.dir
    whole = {TESTS, TESTS.parent}
    paths = ((root / arg.split("::")[0]).resolve() for arg in config.args)
    return tuple(path for path in paths if path.exists() and path not in whole)


def runs_everything(config: pytest.Config) -> bool:
    return bool(
        config.getoption(ALL_OPTION) or os.environ.get("CI") or config.getoption("markexpr")
    )


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tier; leave it out unless this run asks for everything or names it."""
    for item in items:
        if not item.get_closest_marker("slow") and is_slow(item):
            item.add_marker(pytest.mark.slow)
    if runs_everything(config):
        return
    named = named_paths(config)
    left_out = [
        i
        for i in items
        if i.get_closest_marker("slow")
        and not any(i.path.resolve().is_relative_to(path) for path in named)
    ]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        chosen = set(left_out)
        items[:] = [i for i in items if i not in chosen]
