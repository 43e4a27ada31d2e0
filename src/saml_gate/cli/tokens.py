"""``saml-gate tokens create|list|revoke``: gate service tokens in the shared store, for
scripts, CI jobs and services (see :mod:`saml_gate.session.gate_tokens`). The store's settings
are the gates' own, read as ``saml-gate sessions`` reads them; the memory store is refused."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TextIO

from saml_gate.cli.options import fail
from saml_gate.cli.sessions import add_store_flags, settings
from saml_gate.config.settings import StoreSettings

if TYPE_CHECKING:
    from saml_gate.session.gate_tokens import GateTokens

USAGE = "%(prog)s {create,list,revoke} [NAME] [flags]"
HELP = "create, list or revoke service tokens (Authorization: Bearer) in the shared store"

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MEMORY_STORE_MESSAGE: Final = (
    "the memory store lives inside each gate process: service tokens need the shared store"
    " every gate reads (--store redis://... or SAML_GATE_STORE)"
)


def lifetime(text: str) -> float:
    """``90d``, ``12h``, ``30m``, ``3600s`` (or plain seconds) as seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lifetime such as 90d, 12h or 30m")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("create", "list", "revoke"))
    parser.add_argument("token_name", nargs="?", metavar="NAME", help="revoke: the token's name")
    parser.add_argument(
        "--name", help="create: the token's name, as the app and logs see it (required)"
    )
    parser.add_argument(
        "--groups", default="", help="create: its groups, comma-separated (default: none)"
    )
    parser.add_argument(
        "--expires",
        type=lifetime,
        default=90 * 86400.0,
        help="create: its lifetime, such as 90d, 12h or 30m (default: 90d)",
    )
    add_store_flags(parser)


def command(args: argparse.Namespace) -> int:
    """The exit status: 0, 1 when nothing matched, 2 on a problem (said on stderr)."""
    import anyio

    from saml_gate.session.gate_tokens import check_name
    from saml_gate.store import StoreUnavailable

    name = args.name if args.action == "create" else args.token_name
    if args.action != "list":
        if not name:
            how = "--name NAME" if args.action == "create" else "NAME"
            return fail(f"tokens {args.action} needs a name ({how})")
        problem = check_name(name)
        if problem is not None:
            return fail(problem)
    loaded = settings(args)
    if loaded.store == "memory":
        return fail(MEMORY_STORE_MESSAGE)
    try:
        code: int = anyio.run(_run, loaded, args, name, sys.stdout)
    except StoreUnavailable as exc:
        return fail(f"the store is unreachable: {exc}")
    except ValueError as exc:
        return fail(str(exc))
    return code


async def _run(loaded: StoreSettings, args: argparse.Namespace, name: str, out: TextIO) -> int:
    from saml_gate.session.gate_tokens import GateTokens
    from saml_gate.session.revocation import Revocations
    from saml_gate.store import open_store

    store = open_store(loaded)
    try:
        tokens = GateTokens(store, Revocations(store, loaded), loaded.clock, loaded.clock_skew)
        if args.action == "create":
            groups = [g.strip() for g in args.groups.split(",") if g.strip()]
            token = await tokens.create(name, groups, args.expires)
            print(token, file=out)
            print(
                f"saml-gate: token {name!r} created; it is shown only this once (the store"
                " keeps its hash). Send it as 'Authorization: Bearer <token>'.",
                file=sys.stderr,
            )
            return 0
        if args.action == "list":
            await _list(tokens, loaded.clock(), out)
            return 0
        revoked = await tokens.revoke(name)
        if not revoked:
            print(f"no live token is named {name!r}", file=out)
            return 1
        print(f"revoked {revoked} token(s); every gate sharing this store refuses them", file=out)
        return 0
    finally:
        await store.close()


async def _list(tokens: GateTokens, now: float, out: TextIO) -> None:
    live = sorted(await tokens.live(now), key=lambda r: (r.name, r.expires_at))
    print(f"{'NAME':<24} {'EXPIRES (UTC)':<20} GROUPS", file=out)
    for record in live:
        expires = datetime.fromtimestamp(record.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{record.name:<24} {expires:<20} {','.join(record.groups)}", file=out)
    print(f"{len(live)} live token(s)", file=out)
