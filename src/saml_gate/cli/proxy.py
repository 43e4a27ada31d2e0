"""``saml-gate proxy --upstream URL``: the gate in front of any local web app, in any language."""

from __future__ import annotations

import argparse
from typing import Any

from saml_gate.cli.server import add_server_flags, serve_command
from saml_gate.config.flags import add_flags, flag_values
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.settings import GateSettings

HELP = "put the gate in front of any local web app (any language)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_flags(parser)
    add_flags(parser, [GateSettings, ProxySettings])
    parser.set_defaults(build=build)


def build(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from saml_gate.proxy import build_proxy_app

    proxy = flag_values(args, ProxySettings)
    return build_proxy_app(proxy.pop("upstream", None), **options, **proxy)


def command(args: argparse.Namespace) -> int:
    def what(settings: GateSettings) -> str:
        upstream = ProxySettings.load(**flag_values(args, ProxySettings)).upstream
        return f"proxy to {upstream}"

    return serve_command(args, build, what)
