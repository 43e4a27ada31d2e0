"""The package's public face: what it exports, what importing it costs, its typed constructor."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import saml_gate
from saml_gate import GateOptions, GateSettings

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("lxml", "xmlsec", "saml2", "httpx", "cryptography")

#: What users need, as issue 15 lists it (VerifiedLogin and other internals are not in it).
PUBLIC = {
    "SamlGate", "SamlUser", "Rule", "GateSettings", "GateOptions", "GateError", "ConfigError",
    "AuthEvent", "StoreUnavailable", "Store", "MemoryStore", "build_proxy_app", "JsonFormatter",
    "__version__", "sign_out_form",
}  # fmt: skip


def loaded_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after ``statement``."""
    code = f"import sys; {statement}; print(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


def test_import_loads_no_xml_crypto_or_http_library() -> None:
    assert not loaded_after("import saml_gate") & {*HEAVY, "starlette", "anyio"}


def test_the_user_and_the_settings_are_cheap_to_import() -> None:
    assert not loaded_after("from saml_gate import SamlUser, GateSettings, Rule") & set(HEAVY)


def test_exports_are_the_public_names_only() -> None:
    assert set(saml_gate.__all__) == PUBLIC
    assert "VerifiedLogin" not in dir(saml_gate)
    for name in saml_gate.__all__:
        assert getattr(saml_gate, name) is not None, name
    assert set(dir(saml_gate)) >= PUBLIC
    with pytest.raises(AttributeError, match="VerifiedLogin"):
        _ = saml_gate.VerifiedLogin  # type: ignore[attr-defined]


def test_exports_are_the_defining_modules_objects() -> None:
    from saml_gate.middleware import SamlGate
    from saml_gate.store import MemoryStore, Store, StoreUnavailable

    assert saml_gate.SamlGate is SamlGate
    assert (saml_gate.Store, saml_gate.StoreUnavailable) == (Store, StoreUnavailable)
    assert saml_gate.MemoryStore is MemoryStore


def test_version_comes_from_one_place() -> None:
    from saml_gate.__about__ import __version__

    assert saml_gate.__version__ == __version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "saml_gate.__about__.__version__" }' in pyproject


def test_options_name_every_setting() -> None:
    """Derived: tests/test_settings_declarations.py checks each key's type too."""
    assert set(GateOptions.__annotations__) == {f.name for f in dataclasses.fields(GateSettings)}
    assert not GateOptions.__required_keys__  # all optional: the environment may give them


TYPED_USE = textwrap.dedent(
    """
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection
    from starlette.responses import PlainTextResponse, Response

    from saml_gate import GateError, GateOptions, MemoryStore, Rule, SamlGate, build_proxy_app

    def branded(connection: HTTPConnection, error: GateError) -> Response | None:
        return PlainTextResponse(error.code, status_code=error.status)

    app = Starlette()
    app.add_middleware(
        SamlGate,
        base_url="https://acme.ngrok.app",
        secret_key=["a" * 32, "b" * 32],
        idp_metadata="okta.xml",
        access_rules=[Rule("/admin/", groups="admins"), "/health public"],
        store=MemoryStore(),
        on_error=branded,
        gc_freeze=True,
    )
    options: GateOptions = {"dev_idp": True, "store": "redis://localhost"}
    gate = SamlGate(app, **options)
    app.add_middleware(SamlGate, debug="yes")  # wrong
    app.add_middleware(SamlGate, no_such_setting=1)  # wrong
    SamlGate(app, cookie_samesite="sometimes")  # wrong
    SamlGate(app, base_url=1)  # wrong
    build_proxy_app("http://127.0.0.1:3000", user_header="X-User", upstream_timeout=0, debug=True)
    build_proxy_app(upstream_timeout="soon")  # wrong
    build_proxy_app("http://127.0.0.1:3000", upstream="http://127.0.0.1:4000")  # wrong
    """
)


def test_constructor_is_typed_through_add_middleware(tmp_path: Path) -> None:
    """mypy --strict accepts the README's add_middleware call and flags bad options."""
    checked = tmp_path / "typed_use.py"
    checked.write_text(TYPED_USE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(checked), "examples/fastapi_app/main.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    wrong = [str(n) for n, line in enumerate(TYPED_USE.splitlines(), 1) if "# wrong" in line]
    assert [line.split(":")[1] for line in errors] == wrong, result.stdout
    assert "examples" not in result.stdout


def test_store_and_settings_are_taken_as_before(tmp_path: Path) -> None:
    from saml_gate import MemoryStore, SamlGate

    async def app(scope: object, receive: object, send: object) -> None: ...

    basics: GateOptions = {
        "base_url": "http://127.0.0.1:8000",
        "secret_key": "s" * 40,
        "dev_idp": True,
        "state_dir": str(tmp_path),
        "verify_isolation": "thread",
    }
    store = MemoryStore()
    assert SamlGate(app, **basics, store=store).core.store is store
    by_url = SamlGate(app, **basics, store="redis://127.0.0.1:6379/0", store_prefix="t:")
    assert by_url.settings.store == "redis://127.0.0.1:6379/0"
    settings = GateSettings.load({}, **basics)
    assert SamlGate(app, settings).settings is settings
    assert SamlGate(app, settings, store=store).core.store is store
    for options in ({"debug": True}, {"store": "memory"}):
        with pytest.raises(TypeError, match="either settings= or keyword options"):
            SamlGate(app, settings, **options)  # type: ignore[arg-type]
