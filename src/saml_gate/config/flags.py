"""The command line's flags, derived from the settings' declarations.

Every setting read from text has ``--<name-with-dashes>`` (and its short form, if declared):
``--X`` / ``--no-X`` for a boolean, ``type=`` for a number, a repeatable flag for a list (each
use a comma-separated list) and for the access rules. Flags default to None ("not given"), so
the ``SAML_GATE_*`` variables and the declared defaults apply. The flags of one settings group
are one section of ``--help``, the advanced groups last.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Final

from saml_gate.config.catalogue import find
from saml_gate.config.declaration import Declared, declarations
from saml_gate.config.kinds import BOOL, FLOAT, INT, RULES, SECRETS, TEXTS
from saml_gate.config.reference import flag_help, grouped
from saml_gate.errors import ConfigError

SOURCES_NOTE: Final = (
    "Each flag is also read from its SAML_GATE_<NAME> variable (--base-url from"
    " SAML_GATE_BASE_URL); a flag wins over its variable."
)


def _argparse_options(d: Declared) -> dict[str, Any]:
    if d.kind is BOOL:
        return {"action": argparse.BooleanOptionalAction}
    if d.kind is RULES:
        return {"action": "append", "metavar": "RULE"}
    if d.kind is TEXTS:  # repeatable, each a comma-separated list
        return {"type": d.kind.from_text, "action": "extend"}
    if d.kind in (INT, FLOAT, SECRETS):
        return {"type": d.kind.from_text}
    return {}


def add_flags(
    parser: argparse.ArgumentParser,
    classes: Sequence[type],
    only: Collection[str] | None = None,
) -> None:
    """The flags of these settings classes' settings (``only``: of these settings alone), one
    section per group; the epilog says where else they are read from, and names the settings
    that have no flag."""
    found = tuple(
        d
        for cls in classes
        for d in declarations(cls)
        if d.flags and (only is None or d.name in only)
    )
    for group, members in grouped(found):
        title = group.title.replace("`", "") + (" — advanced" if group.advanced else "")
        section = parser.add_argument_group(title)
        for d in members:
            section.add_argument(
                *d.flags,
                dest=d.name,
                default=None,
                help=flag_help(d).replace("%", "%%"),
                **_argparse_options(d),
            )
    notes = [SOURCES_NOTE] if found else []
    if only is None:
        notes.append(keyword_only_note(classes))
    for note in notes:
        if note and note not in (parser.epilog or ""):
            parser.epilog = f"{parser.epilog or ''} {note}".strip()


def keyword_only_note(classes: Iterable[type]) -> str:
    """The ``--help`` line naming the settings that have no flag (Python objects)."""
    names = [
        d.name for c in classes for d in declarations(c) if not d.flags and d.setting.documented
    ]
    if not names:
        return ""
    return f"Settings given in Python only, as keyword arguments of SamlGate: {', '.join(names)}."


def flag_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The settings of ``cls`` given as flags (the rest come from the environment)."""
    values: dict[str, Any] = {}
    for d in declarations(cls):
        value = getattr(args, d.name, None)
        if d.flags and value is not None:
            values[d.name] = tuple(value) if d.kind is TEXTS else value
    return values


def flag_message(problem: ConfigError, given: Collection[str]) -> str:
    """A settings problem as a command line speaks of it: by its flag when the value came from
    one (``--base-url: must be ...``), a missing required setting by its flag and variable."""
    d = find(problem.setting)
    if d is None or d.flag is None:
        return str(problem)
    if d.name in given:
        return f"{d.flag}: {problem.problem}"
    if problem.problem.startswith("is required (keyword"):
        return f"{d.flag} is required (or the {d.env_name} variable)"
    if problem.problem.startswith("is required"):
        return f"{d.flag} (or {d.env_name}) {problem.problem}"
    return str(problem)
