"""The ``saml-gate`` command: one module per subcommand (``run``, ``proxy``, ``forward-auth``,
``demo``, ``setup``, ``metadata``, ``keygen``, ``check``, ``sessions``, ``tokens``, ``policy``),
and what they share: :mod:`~saml_gate.cli.options` (what the flags give),
:mod:`~saml_gate.cli.server` (the server commands' flags, workers, tunnel, serving),
:mod:`~saml_gate.cli.summary` (what a server prints before serving),
:mod:`~saml_gate.cli.app_import`.

Every flag is a setting, declared with the others (:mod:`saml_gate.config`), and also read from
its ``SAML_GATE_*`` variable; flags win.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from saml_gate.__about__ import __version__
from saml_gate.cli import (
    check,
    demo,
    forward_auth,
    keygen,
    metadata,
    policy,
    proxy,
    run,
    sessions,
    setup,
    tokens,
)
from saml_gate.cli.options import LaunchError, fail, given_flags
from saml_gate.cli.tunnel import TunnelError
from saml_gate.config.flags import flag_message
from saml_gate.config.validation import ConfigErrors
from saml_gate.errors import ConfigError
from saml_gate.ops.logs import configure_cli_logging

__all__ = ["build_parser", "main"]

#: Each subcommand and its module: ``HELP``, ``add_arguments(parser)``, ``command(args)`` (and
#: ``USAGE`` when it takes more than flags).
COMMANDS: dict[str, ModuleType] = {
    "demo": demo,
    "run": run,
    "proxy": proxy,
    "forward-auth": forward_auth,
    "setup": setup,
    "metadata": metadata,
    "keygen": keygen,
    "check": check,
    "sessions": sessions,
    "tokens": tokens,
    "policy": policy,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saml-gate", description="SAML single sign-on in front of any ASGI app."
    )
    parser.add_argument("--version", action="version", version=f"saml-gate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            usage=getattr(module, "USAGE", "%(prog)s [flags]"),
        )
        module.add_arguments(command)
        command.set_defaults(func=module.command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_cli_logging()
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        problems = exc.problems if isinstance(exc, ConfigErrors) else (exc,)
        given = given_flags(args)
        return fail("\n  ".join(flag_message(problem, given) for problem in problems))
    except LaunchError as exc:
        return fail(str(exc))
    except TunnelError as exc:
        result = fail(str(exc))
    if "ngrok" in sys.modules:
        # The ngrok SDK's native runtime often crashes while the interpreter shuts down (seen:
        # SIGSEGV / SIGABRT after a failed connect): leave without running that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result)
    return result
