"""The README stays true: its commands, every setting and every error code are documented."""

from __future__ import annotations

import re
from pathlib import Path

from saml_gate.config.catalogue import every_declaration
from saml_gate.config.generate import readme_with_tables
from saml_gate.config.reference import markdown_tables
from saml_gate.errors import ERRORS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


def test_readme_starts_with_the_demo_and_the_test_command() -> None:
    demo, tests = code_blocks()[:2]
    assert "saml-gate demo" in demo and demo.startswith("python3 -m venv .venv")
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests
    assert "--all" in tests.split(), "the README's (and CI's) test command runs every tier"
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines(), ".ci/run must run exactly the README's test command"


def test_every_setting_is_documented_with_its_flag_and_variable() -> None:
    for d in every_declaration():
        if not d.setting.documented:  # the clock, a test hook
            continue
        if d.env_name is None:
            assert f"| `{d.name}` | — | (keyword only) |" in README, d.name
        else:
            flags = ", ".join(f"`{flag}`" for flag in d.flags)
            assert f"| `{d.name}` | {flags} | `SAML_GATE_{d.name.upper()}` |" in README, d.name


def test_the_settings_tables_are_generated_from_the_declarations() -> None:
    """After changing a declaration, run ``python -m saml_gate.config.generate``."""
    assert markdown_tables() in README
    assert readme_with_tables(README) == README


def test_the_advanced_groups_are_marked_and_come_last() -> None:
    tables = markdown_tables()
    titles = re.findall(r"^\*\*(.+?)\*\*( \(advanced\))?$", tables, re.M)
    marked = [bool(advanced) for _, advanced in titles]
    assert marked == sorted(marked) and any(marked) and not all(marked)
    section = tables.split("(advanced)", 1)[1]
    assert "`max_xml_depth`" in section and "`metadata_timeout`" in section
    assert "`base_url`" not in section


def test_every_error_code_is_in_the_troubleshooting_table() -> None:
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for code in ERRORS:
        assert f"`{code}`" in section, f"README troubleshooting lacks {code}"
