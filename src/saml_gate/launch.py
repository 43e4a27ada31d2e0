"""Starting a served gate from the command line: the secret from a file, ``--workers``, and the
summary ``saml-gate run`` and ``proxy`` print before serving (as ``demo`` does).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from saml_gate.config.declaration import declared
from saml_gate.config.settings import GateSettings

if TYPE_CHECKING:
    from saml_gate.middleware import SamlGate

#: The command line a ``--workers`` child rebuilds its app from (JSON: argv, base_url).
WORKER_SPEC: Final = "SAML_GATE_CLI_WORKER_SPEC"

#: The settings ``metadata`` describes (the SP), and what the setup sheet shows on top.
SP_FLAGS = frozenset(
    (
        "base_url",
        "prefix",
        "entity_id",
        "sp_key",
        "sp_cert",
        "state_dir",
        "name_id_format",
        "sign_authn_requests",
    )
)
SHEET_FLAGS = frozenset(("authorized_groups", "groups_attribute", "allow_idp_initiated"))


class LaunchError(Exception):
    """A command-line input the gate cannot start with; the message says what to do."""


def secret_from_file(path: str) -> tuple[str, ...]:
    """``--secret-key-file``: the secret(s) in a file (comma-separated, like the variable)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text().strip()
    except OSError as exc:
        raise LaunchError(f"--secret-key-file {path}: cannot read it ({exc.strerror})") from exc
    if not text:
        raise LaunchError(f"--secret-key-file {path}: the file is empty")
    parse = declared(GateSettings, "secret_key").kind.from_text
    assert parse is not None  # the secret is read from the environment, so from text too
    secrets: tuple[str, ...] = parse(text)
    return secrets


def check_workers(workers: int, store: object) -> None:
    """Several worker processes need a shared store: with ``memory`` each process would keep
    its own replay cache and sign-outs (a signed-out cookie would still open the others)."""
    if workers < 1:
        raise LaunchError(f"--workers {workers}: give 1 or more")
    if workers > 1 and store == "memory":
        raise LaunchError(
            f"--workers {workers} with the memory store: replay protection and sign-outs would"
            " be per process (a signed-out cookie still opens the other workers). Give a Redis"
            " store shared by all workers: --store redis://127.0.0.1:6379/0 (SAML_GATE_STORE),"
            " or run one worker"
        )


def worker_spec(argv: list[str], base_url: str | None) -> str:
    return json.dumps({"argv": argv, "base_url": base_url})


def read_worker_spec() -> tuple[list[str], str | None]:
    spec: dict[str, Any] = json.loads(os.environ[WORKER_SPEC])
    return list(spec["argv"]), spec.get("base_url")


def example_factory() -> Callable[..., Any] | None:
    """examples/fastapi_app's create_app, when run from a checkout that has it."""
    if not (Path.cwd() / "examples" / "fastapi_app" / "main.py").is_file():
        return None
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.fastapi_app.main")
    factory: Callable[..., Any] = module.create_app
    return factory


def whoami_app(prefix: str) -> Any:
    """The demo's app outside a checkout: who signed in, with a sign-out link."""
    from saml_gate.web.whoami import whoami_app as page

    return page(prefix)


def start_summary(gate: SamlGate, *, what: str, listen: str, workers: int) -> str:
    """Where the gate is, which IdP it trusts, where the setup sheet is, and what to do next."""
    s, core = gate.settings, gate.core
    if s.dev_idp:
        idp = "the embedded DEVELOPMENT IdP (test users; never in production)"
    else:
        source = core.idp_source
        where = "its metadata URL" if source is not None and source.is_url else "a file/XML"
        idp = f"{core.idp.entity_id} (metadata from {where})"
    sheet = s.base_url + s.prefix + "/setup"
    next_step = (
        f"open {s.base_url}/ in a browser and pick a test user"
        if s.dev_idp
        else f"enter the setup sheet's values in the IdP (once), then open {s.base_url}/"
    )
    processes = f", {workers} workers" if workers > 1 else ""
    later = ": the values for a real IdP, later" if s.dev_idp else ""
    return (
        f"\n  saml-gate: {what} at {s.base_url}/ (listening on {listen}{processes})\n"
        f"  IdP:         {idp}\n"
        f"  Setup sheet: {sheet} (or: saml-gate setup){later}\n"
        f"  Next:        {next_step}\n"
    )
