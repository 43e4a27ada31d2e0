"""The package's shape, as ARCHITECTURE.md states it: sizes, and who may import whom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "saml_gate"
#: An alarm, not a design rule: a module this long probably holds more than one concern. Split
#: it by cohesion (one concern per module), never by cutting it where the count says.
ALARM_LINES = 600
MAX_TOP_LEVEL_MODULES = 12

#: package → packages (or top-level modules) it must never import, even lazily.
FORBIDDEN = {
    "saml": {"web", "session", "middleware", "proxy", "devidp", "testing"},
    "session": {"web", "middleware", "proxy", "devidp", "testing"},
    "store": {"web", "session", "saml", "runtime", "middleware", "devidp", "testing"},
    "config": {"web", "session", "runtime", "middleware", "proxy", "devidp", "testing"},
    "ops": {"web", "middleware", "devidp", "testing"},
    "web": {"devidp", "testing", "middleware", "proxy"},
    "contrib": {"devidp", "testing"},
}
#: Modules that may import the development IdP (only when dev_idp is on).
DEVIDP_IMPORTERS = {"saml_gate.runtime.core"}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported saml_gate module, whether at module level outside TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # types only: never imported at run time
            if isinstance(child, ast.ImportFrom) and child.module:
                if child.module.startswith("saml_gate"):
                    found.append((child.module, top))
            elif isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names if a.name.startswith("saml_gate"))
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            )
            visit(child, inner)

    visit(tree, True)
    return found


def test_no_module_sounds_the_size_alarm() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules()}
    long = {n: s for n, s in sizes.items() if s > ALARM_LINES}
    assert long == {}, "look for more than one concern in each: split by cohesion"


def test_the_top_level_holds_only_the_face() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_they_may(package: str) -> None:
    bad = []
    for name, path in modules():
        if name.split(".")[1:2] != [package]:
            continue
        for target, _ in imports(path):
            parts = target.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                bad.append(f"{name} imports {target}")
    assert bad == []


def test_only_the_dev_idp_switch_reaches_the_dev_idp() -> None:
    bad = []
    for name, path in modules():
        if name.startswith(("saml_gate.devidp", "saml_gate.testing")):
            continue
        for target, top in imports(path):
            if target.startswith("saml_gate.devidp") and (top or name not in DEVIDP_IMPORTERS):
                bad.append(f"{name} imports {target}" + (" at module level" if top else ""))
    assert bad == []


def test_a_gate_with_a_real_idp_never_loads_the_dev_idp(tmp_path: Path) -> None:
    """Built and serving a request with IdP metadata: saml_gate.devidp stays unloaded."""
    code = """
import asyncio, sys
from saml_gate import SamlGate
METADATA = open(sys.argv[1]).read()

async def app(scope, receive, send):
    pass

async def main():
    gate = SamlGate(app, idp_metadata=METADATA, base_url="https://acme.example",
                    secret_key="x" * 40, state_dir=sys.argv[2], verify_isolation="thread")
    sent = []
    async def receive():
        return {"type": "http.request", "body": b""}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/",
             "query_string": b"", "headers": [(b"accept", b"text/html")], "root_path": ""}
    await gate(scope, receive, send)
    assert sent[0]["status"] == 303, sent[0]
    await gate.core.stop_background()

asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.startswith("saml_gate.devidp"))
assert not loaded, loaded
"""
    metadata = tmp_path / "idp.xml"
    maker = (
        "import sys\nfrom saml_gate.saml.keys import generate_keypair\n"
        "from saml_gate.devidp.metadata import idp_metadata_xml\n"
        "keys = generate_keypair('idp')\n"
        "open(sys.argv[1], 'wb').write(idp_metadata_xml(entity_id='https://idp.example',"
        " sso_url='https://idp.example/sso', slo_url=None, keypair=keys))\n"
    )
    subprocess.run([sys.executable, "-c", maker, str(metadata)], check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "-c", code, str(metadata), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
