"""Settings are read one way: no module but the settings' loader reads the environment for a
``SAML_GATE_*`` name (the source is scanned), and the commands that used to read variables
by hand now read the declared settings."""

from __future__ import annotations

import ast
import subprocess
import sys
from typing import Final

import pytest

from tests.test_architecture import modules

#: The one module that reads the environment as a whole: the settings' loader.
LOADER: Final = "saml_gate.config.loading"
#: Other variables the package reads, none of them a setting: ngrok's token (the ngrok SDK's
#: own variable), the worker count a process manager announces, and the hand-off from a
#: command to its --workers processes.
ALLOWED: Final = {
    "saml_gate.cli.tunnel": {"NGROK_AUTHTOKEN"},
    "saml_gate.ops.warnings": {"WEB_CONCURRENCY"},
    "saml_gate.cli.server": {"_SAML_GATE_WORKER_SPEC"},
}
_ACCESSORS: Final = {"environ", "environb", "getenv", "putenv", "unsetenv"}


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's top-level string constants (``NAME: Final = "..."``)."""
    found: dict[str, str] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            found[target.id] = value.value
    return found


def environment_reads(source: str) -> list[tuple[int, str | None]]:
    """Each access to the process environment: (line, the variable's name when it is a
    literal or a module constant, else None)."""
    tree = ast.parse(source)
    constants = _constants(tree)
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "os"
        for alias in node.names
        if alias.name in _ACCESSORS
    }
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def name_of(node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    reads: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        is_os_attr = (
            isinstance(node, ast.Attribute)
            and node.attr in _ACCESSORS
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        if not (is_os_attr or (isinstance(node, ast.Name) and node.id in imported)):
            continue
        parent = parents.get(node)
        key: ast.expr | None = None
        if isinstance(parent, ast.Subscript) and parent.value is node:
            key = parent.slice
        elif isinstance(parent, ast.Call) and parent.func is node and parent.args:
            key = parent.args[0]  # os.getenv(NAME)
        elif isinstance(parent, ast.Attribute) and parent.attr in ("get", "pop", "setdefault"):
            call = parents.get(parent)
            if isinstance(call, ast.Call) and call.args:
                key = call.args[0]
        reads.append((node.lineno, name_of(key)))
    return reads


def misreads(module: str, source: str) -> list[str]:
    """The environment reads the rules forbid in ``module``."""
    if module == LOADER:
        return []
    allowed = ALLOWED.get(module, set())
    return [
        f"{module}:{line} reads {name or 'the environment'}"
        for line, name in environment_reads(source)
        if name is None or name not in allowed or name.startswith("SAML_GATE_")
    ]


def test_only_the_loader_reads_saml_gate_variables() -> None:
    bad = [problem for name, path in modules() for problem in misreads(name, path.read_text())]
    assert bad == []


@pytest.mark.parametrize(
    "source",
    [
        'import os\nos.environ.get("SAML_GATE_STORE_TIMEOUT")',
        'import os\nos.environ["SAML_GATE_PORT"]',
        'import os\nX = "SAML_GATE_HOST"\nos.getenv(X)',
        'import os\nos.environ.get("SAML_GATE_" + "store".upper(), "5")',
        'from os import environ\nenviron.get("SAML_GATE_UPSTREAM")',
        "import os\nenv = dict(os.environ)",
        'import os\nos.environ.get("NGROK_AUTHTOKEN")',  # allowed in the tunnel module only
    ],
)
def test_the_scan_finds_a_read_elsewhere(source: str) -> None:
    assert misreads("saml_gate.cli.sessions", source)


def test_the_scan_lets_the_named_exceptions_through() -> None:
    tunnel = 'import os\nif not os.environ.get("NGROK_AUTHTOKEN"):\n    pass'
    assert misreads("saml_gate.cli.tunnel", tunnel) == []
    spec = 'import os\nWORKER_SPEC = "_SAML_GATE_WORKER_SPEC"\nos.environ[WORKER_SPEC]'
    assert misreads("saml_gate.cli.server", spec) == []


def test_sessions_reads_the_declared_store_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``saml-gate sessions`` loads the store's settings as the gates do: the declared
    store_timeout (0.5 s), its variable, its flag (it once read the variable with float() and
    a default of 5 s)."""
    from saml_gate.cli import build_parser, sessions

    for name in ("SAML_GATE_STORE_TIMEOUT", "SAML_GATE_CLOCK_SKEW", "SAML_GATE_STORE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAML_GATE_STORE", "redis://127.0.0.1:6379/0")
    parse = build_parser().parse_args
    loaded = sessions.settings(parse(["sessions", "list"]))
    assert (loaded.store_timeout, loaded.clock_skew) == (0.5, 90)
    assert loaded.store == "redis://127.0.0.1:6379/0" and loaded.store_prefix == "saml-gate:"
    assert loaded.store_outage == "refuse"  # an unreachable store is a failure, not "no sessions"
    monkeypatch.setenv("SAML_GATE_STORE_TIMEOUT", "2")
    assert sessions.settings(parse(["sessions", "list"])).store_timeout == 2
    given = parse(["sessions", "list", "--store-timeout", "3", "--store-prefix", "t:"])
    assert (sessions.settings(given).store_timeout, sessions.settings(given).store_prefix) == (
        3,
        "t:",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "SAML_GATE_STORE_TIMEOUT='soon' is not a number"),
        ("100", "store_timeout': must be between 0.05 and 30 seconds"),
    ],
)
def test_sessions_refuses_a_bad_store_timeout_as_the_gate_does(value: str, message: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "SAML_GATE_STORE": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", "sessions", "list"],
        env={**env, "SAML_GATE_STORE_TIMEOUT": value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
