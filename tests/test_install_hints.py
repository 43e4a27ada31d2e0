"""saml-gate is installed from its checkout or a wheel built from it (not from a package index):
no hint tells anyone to ``pip install 'saml-gate[...]'``, and a missing extra's message gives the
command that installs it into the environment saml-gate runs from. (The fresh-environment run of
that command, as printed, is in tests/test_fresh_install.py.)"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from saml_gate.config.extras import extra_requirements, install_hint

ROOT = Path(__file__).resolve().parent.parent


def test_no_file_says_to_install_saml_gate_from_an_index() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".toml", ".txt", ".yml", ".conf"))
        and name != "tests/test_install_hints.py"
        and any(
            phrase in (ROOT / name).read_text(errors="replace")
            for phrase in ("install 'saml-gate[", 'install "saml-gate[', "install saml-gate")
        )
    ]
    assert offenders == []


def test_an_extra_is_named_by_its_own_requirements_and_this_interpreter() -> None:
    assert extra_requirements("redis") == ("redis>=5.0",)
    assert set(extra_requirements("examples")) == {"fastapi>=0.110", "django>=4.2", "asgiref>=3.6"}
    words = shlex.split(install_hint("metrics"))
    assert words == [sys.executable, "-m", "pip", "install", "prometheus-client>=0.17"]
    assert "the README's Install section" in install_hint("no-such-extra")
