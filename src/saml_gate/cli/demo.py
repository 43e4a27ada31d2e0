"""``saml-gate demo``: the example app behind the gate, signing in through the embedded
development IdP (or a real one, with ``--idp-metadata``)."""

from __future__ import annotations

import argparse
import importlib
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saml_gate.cli.options import LaunchError, cli_settings, gate_options
from saml_gate.cli.server import add_server_flags, serve_command
from saml_gate.config.declaration import declared
from saml_gate.config.flags import add_flags
from saml_gate.config.loading import value_of
from saml_gate.config.settings import GateSettings

HELP = "the example app behind the gate with the development IdP"

#: Where the demo keeps its keys when no state_dir is given: apart from the real gate's.
DEMO_STATE = "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_flags(parser)
    add_flags(parser, [GateSettings])
    parser.set_defaults(build=build)


def example_factory() -> Callable[..., Any] | None:
    """examples/fastapi_app's create_app, when run from a checkout that has it."""
    if not (Path.cwd() / "examples" / "fastapi_app" / "main.py").is_file():
        return None
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.fastapi_app.main")
    factory: Callable[..., Any] = module.create_app
    return factory


def build(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The example app (or, outside a checkout, a who-am-I page) behind the gate."""
    from saml_gate.middleware import SamlGate
    from saml_gate.web.whoami import whoami_app

    factory = example_factory()
    if factory is not None:
        return factory(**options)
    return SamlGate(whoami_app(options.get("prefix", "/saml")), **options)


def decide(args: argparse.Namespace) -> dict[str, Any]:
    """The options the demo chooses: the development IdP unless an IdP is given, a loopback
    base_url, error details on, a secret of its own, and (unless given) a state_dir of its
    own, inside the default one."""
    server = cli_settings(args)
    given = gate_options(args)
    uses_dev_idp = not value_of(GateSettings, "idp_metadata", given.get("idp_metadata"))
    if uses_dev_idp and server.ngrok:
        raise LaunchError(
            "--ngrok needs --idp-metadata: the development IdP never runs on a public URL"
        )
    decided: dict[str, Any] = {"debug": given.get("debug", True)}
    decided["base_url"] = given.get("base_url") or f"http://127.0.0.1:{server.port}"
    default_state = declared(GateSettings, "state_dir").default
    if value_of(GateSettings, "state_dir", given.get("state_dir")) == default_state:
        # The demo's keys never become the real gate's: `saml-gate keygen` then finds the
        # state_dir as the demo found it, and an IdP is never given a demo's certificate.
        decided["state_dir"] = str(Path(default_state).expanduser() / DEMO_STATE)
    if uses_dev_idp:
        if "secret_key" in given:
            raise LaunchError(
                "the demo's development IdP signs anyone in, so the demo makes a secret of its"
                " own (no cookie it mints opens another gate): drop --secret-key and"
                " --secret-key-file, or give --idp-metadata"
            )
        decided["dev_idp"] = True
    # Never the environment's secret: a demo must not mint cookies a production gate accepts.
    decided["secret_key"] = given.get("secret_key") or secrets.token_urlsafe(32)
    return decided


def command(args: argparse.Namespace) -> int:
    return serve_command(args, build, lambda settings: "the demo app", decide(args))
