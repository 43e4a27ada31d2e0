"""``saml-gate sessions list|revoke``: the live sessions in the shared store, and ending them
on every gate at once. The store's settings are the gates' own (``store``, ``store_prefix``,
``store_timeout``, ``clock_skew``): flags, else their ``SAML_GATE_*`` variables, else the
declared defaults."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Final

from saml_gate.cli.options import fail
from saml_gate.config.flags import add_flags, flag_values
from saml_gate.config.settings import GateSettings, StoreSettings

USAGE = "%(prog)s {list,revoke} [flags]"
HELP = "list or revoke sessions in the shared store"

#: The settings the command reads (the outage policy is its own: it never serves a session).
READS: Final = frozenset(("store", "store_prefix", "store_timeout", "clock_skew"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "revoke"))
    parser.add_argument("--user", help="their NameID (default: everyone's sessions)")
    parser.add_argument("--session", help="one session, by its ID (default: none)")
    add_store_flags(parser)


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    """The store's flags and ``--config``: what :func:`settings` reads (``tokens`` too)."""
    add_flags(parser, [StoreSettings], READS)
    add_flags(parser, [GateSettings], {"config_file"})


def settings(args: argparse.Namespace) -> StoreSettings:
    """The store's settings, declared and loaded as the gates load them; a store that cannot
    be reached counts as a failure (``refuse``), never as "no sessions"."""
    loaded = StoreSettings.load(config_file=args.config_file, **flag_values(args, StoreSettings))
    return dataclasses.replace(loaded, store_outage="refuse")


def command(args: argparse.Namespace) -> int:
    """The exit status: 0, 1 when nothing matched, 2 on a problem (said on stderr)."""
    import anyio

    from saml_gate.session.admin import NotShared, StoreUnavailable, run

    if args.action == "revoke" and (args.user is None) == (args.session is None):
        return fail("sessions revoke needs exactly one of --user NAME or --session ID")
    try:
        code: int = anyio.run(run, settings(args), args.action, args.user, args.session, sys.stdout)
    except NotShared as exc:
        return fail(str(exc))
    except StoreUnavailable as exc:
        return fail(f"the store is unreachable: {exc}")
    return code
