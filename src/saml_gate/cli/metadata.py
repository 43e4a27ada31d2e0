"""``saml-gate metadata``: the SP metadata XML (for IdPs that import it)."""

from __future__ import annotations

import argparse
import sys

from saml_gate.cli.options import SP_SETTINGS, sp_settings
from saml_gate.config.flags import add_flags
from saml_gate.config.settings import GateSettings

HELP = "print the SP metadata XML"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, [GateSettings], SP_SETTINGS)


def command(args: argparse.Namespace) -> int:
    from saml_gate.saml.outgoing import signs_authn_requests
    from saml_gate.saml.sp import load_sp_keys, sp_metadata_xml

    settings = sp_settings(args)
    keys = load_sp_keys(settings)
    sign = signs_authn_requests(settings, idp_wants_signed=False)
    sys.stdout.write(sp_metadata_xml(settings, keys, sign).decode() + "\n")
    return 0
