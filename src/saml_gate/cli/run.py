"""``saml-gate run MODULE:APP``: any ASGI app behind the gate, under uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from saml_gate.cli.app_import import import_app
from saml_gate.cli.server import add_server_flags, serve_command
from saml_gate.config.flags import add_flags
from saml_gate.config.settings import GateSettings

USAGE = "%(prog)s MODULE:APP [flags]"
HELP = "run an ASGI app (module:app) behind the gate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="the ASGI app to protect, as package.module:attribute")
    parser.add_argument("--factory", action="store_true", help="app is a factory to call")
    add_server_flags(parser)
    add_flags(parser, [GateSettings])
    parser.set_defaults(build=build)


def build(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from saml_gate.middleware import SamlGate

    return SamlGate(import_app(args.app, args.factory), **options)


def command(args: argparse.Namespace) -> int:
    return serve_command(args, build, lambda settings: f"{args.app} behind the gate")
