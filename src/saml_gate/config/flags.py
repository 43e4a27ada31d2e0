"""The command line's gate flags, derived from the settings' declarations.

A setting declared with ``flag=`` gets one: a switch for a boolean, ``type=`` for a number,
a repeatable flag for a list (each use a comma-separated list) and for the access rules.
Flags default to None ("not given"), so the ``SAML_GATE_*`` variables and the settings'
defaults apply.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from saml_gate.config.declaration import Declared, declarations, declared
from saml_gate.config.environment import env_value
from saml_gate.config.kinds import BOOL, FLOAT, INT, RULES, SECRETS, TEXTS
from saml_gate.config.reference import flag_help
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError


def gate_flags() -> tuple[Declared, ...]:
    """The settings that have a gate flag."""
    return tuple(d for d in declarations(GateSettings) if d.flag)


def _argparse_options(d: Declared) -> dict[str, Any]:
    if d.kind is BOOL:
        return {"action": "store_true"}
    if d.kind is RULES:
        return {"action": "append", "metavar": "RULE"}
    if d.kind is TEXTS:  # repeatable, each a comma-separated list
        return {"type": d.kind.from_text, "action": "extend"}
    if d.kind in (INT, FLOAT, SECRETS):
        return {"type": d.kind.from_text}
    return {}


def add_gate_flags(parser: argparse.ArgumentParser, only: Collection[str] | None = None) -> None:
    """The gate flags (``only``: those of these settings, for a command that reads no others)."""
    group = parser.add_argument_group("gate settings (also SAML_GATE_<NAME> variables)")
    for d in gate_flags():
        if only is not None and d.name not in only:
            continue
        group.add_argument(
            str(d.flag),
            dest=d.name,
            default=None,
            help=flag_help(d).replace("%", "%%"),
            **_argparse_options(d),
        )


def gate_env(name: str) -> str | None:
    """A gate setting's ``SAML_GATE_*`` variable in the process environment (None: unset)."""
    return env_value(GateSettings, name)


def gate_default(name: str) -> Any:
    return declared(GateSettings, name).default


def gate_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gate settings given as flags; the rest come from the environment."""
    options: dict[str, Any] = {}
    for d in gate_flags():
        value = getattr(args, d.name, None)
        if value is not None:
            options[d.name] = tuple(value) if d.kind is TEXTS else value
    return options


def flag_message(problem: ConfigError, given: Collection[str]) -> str:
    """A settings problem as a command line speaks of it: by its flag when the value came from
    one (``--base-url: must be ...``), a missing required setting by its flag and variable."""
    try:
        d = declared(GateSettings, problem.setting)
    except KeyError:
        return str(problem)
    if d.flag is None:
        return str(problem)
    if d.name in given:
        return f"{d.flag}: {problem.problem}"
    if problem.problem.startswith("is required (keyword"):
        return f"{d.flag} is required (or the {d.env_name} variable)"
    if problem.problem.startswith("is required"):
        return f"{d.flag} (or {d.env_name}) {problem.problem}"
    return str(problem)
