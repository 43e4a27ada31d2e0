"""Install-level guarantees: xmlsec and lxml agree (or the gate says how to fix it), nothing
needs the xmlsec1 program, and the wheel carries the license, one version and no dead files."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_lxml_and_xmlsec_share_libxml2() -> None:
    import lxml.etree
    import xmlsec

    assert xmlsec.get_libxml_version()[:2] == lxml.etree.LIBXML_VERSION[:2]


GATE_WITHOUT_XMLSEC1 = textwrap.dedent(
    """
    import asyncio, base64, html, re, shutil, subprocess, sys, tempfile

    assert shutil.which("xmlsec1") is None, "xmlsec1 must not be on PATH for this check"

    real_popen = subprocess.Popen

    def only_the_gate_worker(command, *args, **kwargs):
        # the gate's own verification processes (this Python, no shell: a worker, or the zygote
        # that forks them) are the ones allowed; they inherit the empty PATH, so they cannot
        # run xmlsec1 either
        ours = ("saml_gate.runtime.worker_child", "saml_gate.runtime.zygote")
        if command[:2] == [sys.executable, "-c"] and any(m in command[2] for m in ours):
            return real_popen(command, *args, **kwargs)
        raise AssertionError(f"a subprocess was started: {command!r}")

    subprocess.Popen = only_the_gate_worker  # running xmlsec1 (or anything else) fails loudly

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from saml_gate import SamlGate

    async def page(request):
        return PlainTextResponse("hello " + request.user.email)

    async def main():
        gate = SamlGate(Starlette(routes=[Route("/", page)]), base_url="http://127.0.0.1:8000",
                        dev_idp=True, secret_key="s" * 40, state_dir=tempfile.mkdtemp(),
                        sign_authn_requests=True)
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                     follow_redirects=False) as c:
            r = await c.get("/", headers={"accept": "text/html"})
            r = await c.get(r.headers["location"])  # the dev IdP's login page
            form = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', r.text))
            keep = ("in_response_to", "relay_state")
            data = {k: html.unescape(v) for k, v in form.items() if k in keep}
            r = await c.post("/saml/devidp/sso", data={**data, "user": "0"})
            fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', r.text))
            r = await c.post("/saml/acs", data={k: html.unescape(v) for k, v in fields.items()})
            assert r.status_code == 303, r.text
            r = await c.get("/")
            assert r.text == "hello alice@example.com", r.text
        assert gate.core.workers is not None, "verified in threads: the worker did not start"
        print("OK")

    asyncio.run(main())
    """
)


def test_gate_runs_without_the_xmlsec1_program(tmp_path: Path) -> None:
    """A whole dev-IdP login (signed AuthnRequest, signed Response) with no xmlsec1 anywhere."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "PYTHONPATH")}
    env["PATH"] = str(empty_bin)  # nothing to find: not xmlsec1, not anything
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(
        [sys.executable, "-c", GATE_WITHOUT_XMLSEC1],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


# ---------------------------------------------------------------------------------- the wheel
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """The wheel of a copy of the sources, built with the installed setuptools (no download)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("saml_gate-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_carries_the_license_the_version_and_only_real_files(tmp_path: Path) -> None:
    """And what an index shows: the project's links and classifiers."""
    from saml_gate import __version__

    wheel = build_wheel(tmp_path)
    names = wheel.namelist()
    dist_info = f"saml_gate-{__version__}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert wheel.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "\nProject-URL: Source, https://github.com/saml-gate/saml-gate\n" in metadata
    assert "\nProject-URL: Changelog, " in metadata and "\nProject-URL: Issues, " in metadata
    assert "\nClassifier: Typing :: Typed\n" in metadata
    assert "\nClassifier: Topic :: Security\n" in metadata
    assert "\nRequires-Python: >=3.11\n" in metadata
    # the server commands serve as installed: no extra needed for uvicorn or its WebSockets
    assert "\nRequires-Dist: uvicorn>=0.29\n" in metadata
    assert "\nRequires-Dist: websockets>=15\n" in metadata
    # ... on uvicorn's fast stack, which uvicorn picks when these are installed
    assert "\nRequires-Dist: httptools>=0.6.3\n" in metadata
    assert "\nRequires-Dist: uvloop>=0.19; " in metadata
    package = {name for name in names if name.startswith("saml_gate/")}
    assert "saml_gate/py.typed" in package
    assert {name for name in package if not name.endswith((".py", "/py.typed"))} == set()
    sources = {
        "saml_gate/" + path.relative_to(ROOT / "src" / "saml_gate").as_posix()
        for path in (ROOT / "src" / "saml_gate").rglob("*.py")
    }
    assert package - {"saml_gate/py.typed"} == sources


def test_xmlsec_is_a_compatible_range_next_to_lxml() -> None:
    dependencies = pyproject()["project"]["dependencies"]
    assert "xmlsec>=1.3.17,<1.4" in dependencies
    assert "lxml>=6.0,<6.2" in dependencies


def test_the_test_extra_brings_the_pinned_dev_tools() -> None:
    """The README's test command installs `.[test]`, and the tests run ruff and mypy."""
    extras = pyproject()["project"]["optional-dependencies"]
    assert any(r.startswith("saml-gate[") and "dev" in r for r in extras["test"])
    for tool in ("ruff", "mypy"):
        assert f"{tool}=={importlib.metadata.version(tool)}" in extras["dev"]


# ---------------------------------------------------------------------------------- libxml2
FAKE_XMLSEC = {
    "refuses": 'raise ImportError("lxml & xmlsec libxml2 library version mismatch")',
    "differs": "def get_libxml_version():\n    return (2, 9, 14)\n",
}


@pytest.mark.parametrize("kind", sorted(FAKE_XMLSEC))
def test_an_xmlsec_on_another_libxml2_is_named_with_the_fix(tmp_path: Path, kind: str) -> None:
    """The gate's import fails with the versions and the pip command, not xmlsec's riddle."""
    (tmp_path / "xmlsec.py").write_text(FAKE_XMLSEC[kind])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    result = subprocess.run(
        [sys.executable, "-c", "from saml_gate import SamlGate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("saml_gate.saml.xml_libraries.XmlLibrariesMismatch: "), last
    assert "pip install --force-reinstall --no-binary lxml,xmlsec lxml xmlsec" in last
    assert ("libxml2 2.9.14" in last) is (kind == "differs")


# ------------------------------------------------------------------------ declared imports
#: Modules imported by the package whose distribution a user never installs: the standard
#: library aside, only the package itself.
_OWN = {"saml_gate"}


def _imported_top_level_modules() -> dict[str, set[str]]:
    """Top-level module name -> the package's modules importing it (anywhere in the file)."""
    import ast

    found: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "saml_gate").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in _OWN:
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def _requirement_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower().replace("_", "-")


def test_every_module_the_package_imports_is_declared() -> None:
    """A module that only arrives with another dependency (h11 with httpx, asgiref with Django)
    disappears when that dependency changes: each one the package imports is declared, in
    the dependencies or in the extra of the feature that imports it."""
    project = pyproject()["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    for requirements in project["optional-dependencies"].values():
        declared |= {_requirement_name(r) for r in requirements}
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module, users in sorted(_imported_top_level_modules().items()):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            missing[module] = sorted(users)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_lock_pins_every_installed_test_dependency() -> None:
    """constraints.txt (the README's test command installs through it) pins every package of
    this environment, so the next release of any of them cannot change what CI runs."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in lines
        if line and not line.startswith("#")
    }
    assert all("==" in line for line in lines if line and not line.startswith("#"))
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in ("saml-gate", "pip", "wheel"):
            continue
        assert name in pins, f"{name} is installed but not pinned in constraints.txt"
        assert pins[name] == dist.version, f"{name} {dist.version}, pinned {pins[name]}"


def test_no_tracked_file_is_ignored() -> None:
    """.gitignore lists nothing the repository tracks (examples/__init__.py is tracked: the
    examples are imported as a package)."""
    ignored = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert ignored == []
    assert (
        "examples/__init__.py"
        in subprocess.run(
            ["git", "ls-files", "examples/__init__.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
