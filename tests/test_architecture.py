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

#: package (or top-level module) → what it must never reach, directly or through others, even
#: lazily: the layers, from the bottom (errors, user, ip_addresses, background) up through
#: config, policy, store, saml, identity, session, ops, runtime, web, middleware, proxy.
FORBIDDEN = {
    "saml": {"web", "session", "middleware", "proxy", "runtime", "store", "ops", "identity",
             "devidp", "testing"},
    "store": {"web", "session", "saml", "runtime", "ops", "identity", "middleware", "proxy",
              "devidp", "testing"},
    "config": {"web", "session", "runtime", "middleware", "proxy", "store", "saml", "ops",
               "identity", "devidp", "testing"},
    "policy": {"config", "web", "session", "runtime", "middleware", "proxy", "store", "saml", "ops",
               "identity", "devidp", "testing"},
    "identity": {"web", "session", "runtime", "ops", "middleware", "proxy", "devidp", "testing"},
    "session": {"web", "runtime", "ops", "identity", "middleware", "proxy", "devidp", "testing"},
    "ops": {"web", "runtime", "session", "middleware", "proxy", "devidp", "testing"},
    "runtime": {"web", "middleware", "proxy", "contrib", "cli", "testing"},
    "web": {"middleware", "proxy", "devidp", "testing", "contrib", "cli"},
    "middleware": {"proxy", "devidp", "testing", "contrib", "cli"},
    "proxy": {"devidp", "testing", "contrib", "cli"},
    "devidp": {"web", "runtime", "session", "store", "ops", "middleware", "proxy", "testing"},
    "contrib": {"devidp", "testing", "cli"},
}  # fmt: skip
#: Modules inside a package that any layer may import: they import nothing of saml_gate but
#: errors (checked below), so importing them ties no two packages together.
LEAF_MODULES = {
    "saml_gate.saml.xmlconst",  # constants: the settings' checks read the algorithm URIs
    "saml_gate.store.redis_url",  # parsing a Redis URL: the store setting's check
}
#: Modules that may import the development IdP (only when dev_idp is on).
DEVIDP_IMPORTERS = {"saml_gate.runtime.saml_state"}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


KNOWN = {name for name, _ in modules()}


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
                    for alias in child.names:  # ``from saml_gate.saml import xmlconst``
                        submodule = f"{child.module}.{alias.name}"
                        found.append((submodule if submodule in KNOWN else child.module, top))
            elif isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names if a.name.startswith("saml_gate"))
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            )
            visit(child, inner)

    visit(tree, True)
    return found


def package(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``web`` for saml_gate.web.acs."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_edges() -> dict[tuple[str, str], list[str]]:
    """(package, package) → the module imports that make the first depend on the second, at
    run time (lazy imports too): not to leaf modules, not the development IdP switch (checked on
    its own below)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for name, path in modules():
        for target, top in imports(path):
            source, dest = package(name), package(target)
            if source == dest or target in LEAF_MODULES:
                continue
            if dest == "devidp" and not top and name in DEVIDP_IMPORTERS:
                continue
            edges.setdefault((source, dest), []).append(f"{name} imports {target}")
    return edges


def reachable(start: str, edges: dict[tuple[str, str], list[str]]) -> dict[str, list[str]]:
    """Every package ``start`` reaches, each with one path of imports that reaches it."""
    paths: dict[str, list[str]] = {}
    todo = [(start, list[str]())]
    while todo:
        node, path = todo.pop(0)
        for (source, dest), why in edges.items():
            if source == node and dest not in paths:
                paths[dest] = [*path, why[0]]
                todo.append((dest, paths[dest]))
    return paths


def test_no_module_sounds_the_size_alarm() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules()}
    long = {n: s for n, s in sizes.items() if s > ALARM_LINES}
    assert long == {}, "look for more than one concern in each: split by cohesion"


def test_the_top_level_holds_only_the_face() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_the_package_graph_has_no_cycle() -> None:
    """Transitively: no package reaches itself through the others' imports."""
    edges = module_edges()
    packages = {p for edge in edges for p in edge}
    cycles = {p: reachable(p, edges)[p] for p in sorted(packages) if p in reachable(p, edges)}
    assert cycles == {}


@pytest.mark.parametrize("package_name", sorted(FORBIDDEN))
def test_packages_never_reach_what_they_may_not(package_name: str) -> None:
    reached = reachable(package_name, module_edges())
    bad = {p: reached[p] for p in sorted(FORBIDDEN[package_name] & set(reached))}
    assert bad == {}


def test_leaf_modules_import_nothing_but_errors() -> None:
    paths = dict(modules())
    for leaf in sorted(LEAF_MODULES):
        imported = {target for target, _ in imports(paths[leaf])}
        assert {t for t in imported if package(t) != "errors"} == set(), leaf


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
             "query_string": b"", "root_path": "",
             "headers": [(b"host", b"acme.example"), (b"accept", b"text/html")]}
    await gate(scope, receive, send)
    assert sent[0]["status"] == 303, sent[0]
    await gate.stop()

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
