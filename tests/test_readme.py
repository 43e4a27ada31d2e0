"""The README stays true: its commands, every setting and every error code are documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from saml_gate import GateSettings
from saml_gate.config.reference import markdown_table
from saml_gate.config.settings import NOT_FROM_ENV
from saml_gate.errors import ERRORS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


def test_readme_starts_with_the_demo_and_the_test_command() -> None:
    demo, tests = code_blocks()[:2]
    assert "saml-gate demo" in demo and demo.startswith("python3 -m venv .venv")
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines(), ".ci/run must run exactly the README's test command"


def test_every_setting_is_documented_with_its_variable() -> None:
    for field in dataclasses.fields(GateSettings):
        if field.name in NOT_FROM_ENV:
            if field.name != "clock":  # a test hook
                assert f"| `{field.name}` | (keyword only) |" in README, field.name
            continue
        row = f"| `{field.name}` | `SAML_GATE_{field.name.upper()}` |"
        assert row in README, f"README settings table lacks {field.name}"


def test_the_settings_table_is_generated_from_the_declarations() -> None:
    """After changing a setting's declaration, paste markdown_table() over the README's table."""
    assert markdown_table() in README


def test_every_error_code_is_in_the_troubleshooting_table() -> None:
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for code in ERRORS:
        assert f"`{code}`" in section, f"README troubleshooting lacks {code}"
