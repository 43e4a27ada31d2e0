"""Every setting, documented from its declaration: the README's settings tables and the flags'
help. ``python -m saml_gate.config.generate`` writes the tables into the README (and the typed
keyword options); tests/test_readme.py checks that it is current."""

from __future__ import annotations

import re
from typing import Final

from saml_gate.config.catalogue import every_declaration
from saml_gate.config.declaration import Declared, Group
from saml_gate.config.kinds import TEXTS, split_list

TABLE_HEADER: Final = (
    "| setting | flag | environment variable | default | meaning |\n|---|---|---|---|---|\n"
)
BEGIN: Final = (
    "<!-- settings: generated from their declarations by `python -m saml_gate.config.generate`"
    " -->\n"
)
END: Final = "<!-- end of the generated settings -->\n"
ADVANCED_NOTE: Final = (
    "**Advanced settings.** The long tail: the defaults suit real IdPs and deployments, and a"
    " newcomer need not read on.\n"
)
_LINK: Final = re.compile(r"\[([^]]*)\]\([^)]*\)")


def grouped(found: tuple[Declared, ...]) -> list[tuple[Group, list[Declared]]]:
    """Settings by group, each group where its first setting is, the advanced groups last."""
    groups: dict[Group, list[Declared]] = {}
    for d in found:
        groups.setdefault(d.group, []).append(d)
    return sorted(groups.items(), key=lambda item: item[0].advanced)


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


def _row(d: Declared) -> str:
    flags = ", ".join(f"`{flag}`" for flag in d.flags) or "—"
    variable = f"`{d.env_name}`" if d.env_name else "(keyword only)"
    return f"| `{d.name}` | {flags} | {variable} | {shown_default(d)} | {d.setting.help} |\n"


def markdown_tables() -> str:
    """The README's settings: one table per group, the advanced groups last, between markers."""
    documented = tuple(d for d in every_declaration() if d.setting.documented)
    parts = [BEGIN]
    advanced_seen = False
    for group, members in grouped(documented):
        if group.advanced and not advanced_seen:
            parts.append("\n" + ADVANCED_NOTE)
            advanced_seen = True
        marker = " (advanced)" if group.advanced else ""
        parts.append(f"\n**{group.title}**{marker}\n\n" + TABLE_HEADER)
        parts.extend(_row(d) for d in members)
    parts.append("\n" + END)
    return "".join(parts)


def plain(markdown: str) -> str:
    """Markdown as terminal text: no backticks, links as their text."""
    return _LINK.sub(r"\1", markdown).replace("`", "")


def flag_help(d: Declared) -> str:
    """A flag's ``--help`` text: what it does, then its default (and range)."""
    text = plain(d.setting.flag_help or d.setting.help)
    if d.kind is TEXTS:
        text += "; comma-separated, repeatable"
    elif d.kind.from_text is split_list:
        text += "; comma-separated"
    default = plain(shown_default(d)).replace("(", "").replace(")", "")
    if default == "—":
        default = "none"
    notes = [default if default.startswith("required") else f"default: {default}"]
    if d.setting.range is not None:
        notes.append(d.setting.range_text())
    return f"{text} ({'; '.join(notes)})"
