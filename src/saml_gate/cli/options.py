"""What a command's flags give: the gate's options (with the secret from ``--secret-key-file``),
the command line's own settings, and the settings of commands that describe the SP alone.
Every value not given as a flag comes from its ``SAML_GATE_*`` variable through the settings'
loader (:mod:`saml_gate.config.loading`), never from the environment directly."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any, Final

from saml_gate.config.catalogue import find
from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.declaration import declared
from saml_gate.config.flags import flag_values
from saml_gate.config.loading import load, value_of
from saml_gate.config.settings import GateSettings

#: The settings ``metadata`` describes (the SP), and what the setup sheet shows on top.
SP_SETTINGS: Final = frozenset(
    (
        "base_url",
        "prefix",
        "entity_id",
        "sp_key",
        "sp_cert",
        "state_dir",
        "name_id_format",
        "sign_authn_requests",
        "config_file",
    )
)
SHEET_SETTINGS: Final = frozenset(
    (
        "authorized_groups",
        "groups_attribute",
        "allow_idp_initiated",
        "universal_logout_issuer",
        "universal_logout_keys",
        "universal_logout_app_id",
    )
)


class LaunchError(Exception):
    """A command-line input the gate cannot start with; the message says what to do."""


def fail(message: str) -> int:
    """Say what is wrong on stderr; the exit status of a command that could not run."""
    print(f"saml-gate: {message}", file=sys.stderr)
    return 2


def given_flags(args: argparse.Namespace) -> frozenset[str]:
    """The settings given as flags (their problems are worded by the flag)."""
    return frozenset(n for n, v in vars(args).items() if v is not None and find(n) is not None)


def config_file(args: argparse.Namespace) -> str | None:
    """``--config FILE`` where the command has it (else its variable is read)."""
    found: str | None = getattr(args, "config_file", None)
    return found


def cli_settings(args: argparse.Namespace) -> CliSettings:
    """The command line's settings: its flags, then their variables, then the configuration
    file, then the defaults."""
    return CliSettings.load(config_file=config_file(args), **flag_values(args, CliSettings))


def gate_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gate settings given as flags, and the secret from ``--secret-key-file`` (or its
    variable) unless ``--secret-key`` gave one; the rest come from the environment."""
    options = flag_values(args, GateSettings)
    if "secret_key" not in options and hasattr(args, "secret_key_file"):
        path = value_of(
            CliSettings, "secret_key_file", args.secret_key_file, config_file=config_file(args)
        )
        if path:
            options["secret_key"] = secret_from_file(path)
    return options


def secret_from_file(path: str) -> tuple[str, ...]:
    """``--secret-key-file``: the secret(s) in a file (comma-separated, like the variable)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text().strip()
    except OSError as exc:
        raise LaunchError(f"--secret-key-file {path}: cannot read it ({exc.strerror})") from exc
    if not text:
        raise LaunchError(f"--secret-key-file {path}: the file is empty")
    parse = declared(GateSettings, "secret_key").kind.from_text
    assert parse is not None  # the secret is read from the environment, so from text too
    found: tuple[str, ...] = parse(text)  # checked with the other settings, by the loader
    return found


def sp_settings(args: argparse.Namespace) -> GateSettings:
    """Settings for commands that describe the SP before any IdP exists (setup, metadata): the
    IdP's values come before its metadata does, so stand-ins for what is not needed."""
    stand_ins = {
        "idp_metadata": "(not needed for this command)",
        "secret_key": secrets.token_urlsafe(32),
    }
    return load(GateSettings, flag_values(args, GateSettings), fallback=stand_ins)
