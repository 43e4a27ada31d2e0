"""``saml-gate check``: load and validate everything (settings, IdP metadata, certificates, keys,
clock) and report every problem; non-zero when there is one."""

from __future__ import annotations

import argparse

from saml_gate.cli.options import gate_options, given_flags
from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.flags import add_flags, flag_message
from saml_gate.config.settings import GateSettings

HELP = "load and validate everything; non-zero on problems"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, [CliSettings], {"secret_key_file"})
    add_flags(parser, [GateSettings])


def command(args: argparse.Namespace) -> int:
    from saml_gate.runtime.selfcheck import run_checks

    given = given_flags(args)
    report = run_checks(gate_options(args), lambda problem: flag_message(problem, given))
    for line in report.lines:
        print(line)
    print(f"\n{report.summary}")
    return 0 if report.ok else 1
