"""The settings documented from their declarations: the README's table and the flags' help.

tests/test_readme.py keeps the README's settings table equal to :func:`markdown_table`; after
changing a declaration, paste ``python -c 'from saml_gate.config.reference import
markdown_table; print(markdown_table())'`` over the README's table.
"""

from __future__ import annotations

import re

from saml_gate.config.declaration import Declared, declarations
from saml_gate.config.kinds import BOOL, split_list
from saml_gate.config.settings import GateSettings

TABLE_HEADER = "| setting | environment variable | default | meaning |\n|---|---|---|---|\n"
_LINK = re.compile(r"\[([^]]*)\]\([^)]*\)")


def shown_default(d: Declared) -> str:
    """The default as the README shows it (Markdown)."""
    if d.setting.shown_default is not None:
        return d.setting.shown_default
    value = d.default
    if d.required:
        return "required"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == ():
        return "none"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def markdown_table() -> str:
    """The README's settings table: settings read from the environment first, in declaration
    order, then those given as keyword arguments only."""
    documented = [d for d in declarations(GateSettings) if d.setting.documented]
    ordered = [d for d in documented if d.env_name] + [d for d in documented if not d.env_name]
    rows = (
        f"| `{d.name}` | {f'`{d.env_name}`' if d.env_name else '(keyword only)'} "
        f"| {shown_default(d)} | {d.setting.help} |\n"
        for d in ordered
    )
    return TABLE_HEADER + "".join(rows)


def plain(markdown: str) -> str:
    """Markdown as terminal text: no backticks, links as their text."""
    return _LINK.sub(r"\1", markdown).replace("`", "")


def flag_help(d: Declared) -> str:
    """A gate flag's ``--help`` text: what it does, then its default."""
    text = d.setting.flag_help or plain(d.setting.help)
    if d.kind.from_text is split_list:
        text += "; comma-separated"
    default = plain(shown_default(d)).replace("(", "").replace(")", "")
    notes = [] if d.kind is BOOL or default == "—" else [default]
    if notes and not default.startswith("required"):
        notes[0] = "default: " + default
    if d.setting.range is not None:
        notes.append(d.setting.range_text())
    return f"{text} ({'; '.join(notes)})" if notes else text
