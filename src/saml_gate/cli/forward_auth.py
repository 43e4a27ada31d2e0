"""``saml-gate forward-auth``: the gate alone, answering the ``/saml/auth`` sub-requests of
nginx ``auth_request``, Caddy ``forward_auth`` and Traefik ``forwardAuth``."""

from __future__ import annotations

import argparse
from typing import Any

from saml_gate.cli.server import add_server_flags, serve_command
from saml_gate.config.flags import add_flags
from saml_gate.config.settings import GateSettings

HELP = "serve only the gate, for nginx auth_request, Caddy forward_auth, Traefik forwardAuth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_flags(parser)
    add_flags(parser, [GateSettings])
    parser.set_defaults(build=build)


def build(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """The gate with no app behind it but a "signed in" page (what a browser sees after
    signing in at the gate itself); the reverse proxy asks its ``/saml/auth``."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from saml_gate.middleware import SamlGate

    page = PlainTextResponse("Signed in. saml-gate answers the reverse proxy's forward-auth.")
    # an app that speaks lifespan, so the gate's start-up runs at start, not at the first request
    signed_in = Starlette(routes=[Route("/{path:path}", lambda request: page)])
    return SamlGate(signed_in, **{**options, "forward_auth": True})  # serves /saml/auth


def command(args: argparse.Namespace) -> int:
    def what(settings: GateSettings) -> str:
        auth = settings.base_path + settings.prefix + "/auth"
        return f"forward-auth for nginx, Caddy or Traefik (they ask {auth})"

    return serve_command(args, build, what)
