"""``saml-gate setup``: the values to enter in the IdP, each with its Okta field."""

from __future__ import annotations

import argparse

from saml_gate.cli.options import SHEET_SETTINGS, SP_SETTINGS, sp_settings
from saml_gate.config.flags import add_flags
from saml_gate.config.settings import GateSettings

HELP = "print the values to enter in the IdP (and where Okta has each)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, [GateSettings], SP_SETTINGS | SHEET_SETTINGS)


def command(args: argparse.Namespace) -> int:
    from saml_gate.ops.setup_sheet import SetupSheet
    from saml_gate.saml.sp import load_sp_keys

    settings = sp_settings(args)
    print(SetupSheet.build(settings, load_sp_keys(settings).cert_pem).as_text())
    return 0
