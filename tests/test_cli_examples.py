"""`saml-gate run` on the repository's own examples, and a SamlGate inside a SamlGate refused at
start-up: real commands, real servers, a real sign-in through the development IdP."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_cli import ROOT, SECRET, Server, cli_env, free_port, saml_gate

DEV_IDP_USER = {"user": "0"}  # Alice Admin, groups admins and users


def _fields(page: str) -> dict[str, str]:
    found = re.findall(r'name="([A-Za-z_]+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in found}


def sign_in_with_dev_idp(client: httpx.Client, path: str) -> httpx.Response:
    """Open ``path`` as a browser, pick Alice on the development IdP, post the Response to the
    ACS; the page at ``path`` afterwards."""
    start = client.get(path, headers={"accept": "text/html"})
    assert start.status_code == 303 and "/saml/devidp/sso?SAMLRequest=" in start.headers["location"]
    login = client.get(start.headers["location"])
    assert login.status_code == 200 and "Development IdP" in login.text
    fields = _fields(login.text)
    answer = client.post(
        "/saml/devidp/sso",
        data={
            "in_response_to": fields["in_response_to"],
            "relay_state": fields.get("relay_state", ""),
            **DEV_IDP_USER,
        },
    )
    form = _fields(answer.text)
    acs = client.post(
        "/saml/acs", data={"SAMLResponse": form["SAMLResponse"], "RelayState": form["RelayState"]}
    )
    assert acs.status_code == 303, acs.text
    return client.get(path, headers={"accept": "text/html"})


def dev_idp_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(
        SAML_GATE_DEV_IDP="true",
        SAML_GATE_STATE_DIR=str(tmp_path / "state"),
        HOME=str(tmp_path),
        **extra,
    )


def test_run_the_fastapi_example_with_flags_and_the_dev_idp(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(
        "run",
        "examples.fastapi_app.main:app",
        "--base-url",
        base,
        "--secret-key",
        SECRET,
        "--rule",
        "/healthz public",
        env=dev_idp_env(tmp_path),
        port=port,
    )
    try:
        assert server.get("/healthz").text == "ok"
        with httpx.Client(base_url=base, timeout=10) as client:
            page = sign_in_with_dev_idp(client, "/")
            assert page.status_code == 200 and "Hello, Alice Admin" in page.text
            assert client.get("/api/me").json()["groups"] == ["admins", "users"]
            assert client.get("/admin").status_code == 200  # require_groups("admins")
    finally:
        output = server.stop()
    assert "SamlGate inside a SamlGate" not in output and "Traceback" not in output


def test_run_the_django_example_with_flags_and_the_dev_idp(tmp_path: Path) -> None:
    database = {"DJANGO_DB_PATH": str(tmp_path / "django.sqlite3")}
    migrate = subprocess.run(
        [sys.executable, "examples/django_asgi/manage.py", "migrate", "--no-input"],
        cwd=ROOT,
        env=cli_env(**database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(
        "run",
        "examples.django_asgi.demo_site.asgi:application",
        "--base-url",
        base,
        "--secret-key",
        SECRET,
        env=dev_idp_env(tmp_path, **database),
        port=port,
    )
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            page = sign_in_with_dev_idp(client, "/")
            assert page.status_code == 200 and "alice@example.com" in page.text
            assert client.get("/admin/").status_code == 200  # Alice is in admins: superuser
    finally:
        output = server.stop()
    assert "SamlGate inside a SamlGate" not in output and "Traceback" not in output


def test_a_gated_factory_is_refused_before_serving(tmp_path: Path, config: dict[str, str]) -> None:
    """create_app() adds its own gate: even fully configured by the environment, `run` must not
    put a second one in front (two gates, two sessions) but say what to run instead."""
    env = cli_env(**config, SAML_GATE_BASE_URL="http://127.0.0.1:8000")
    result = saml_gate("run", "examples.fastapi_app.main:create_app", "--factory", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SamlGate inside a SamlGate" in result.stderr
    assert "examples.fastapi_app.main:app" in result.stderr and "Traceback" not in result.stderr


LAZY_GATED_APP = """
from starlette.applications import Starlette
from saml_gate import SamlGate


class BuildsItsGateAtStartUp:
    def __init__(self):
        self.app = None

    async def __call__(self, scope, receive, send):
        if self.app is None:
            self.app = SamlGate(Starlette())
        await self.app(scope, receive, send)


app = BuildsItsGateAtStartUp()
"""


def test_a_gate_built_at_start_up_inside_the_gate_stops_the_start(
    tmp_path: Path, config: dict[str, str]
) -> None:
    (tmp_path / "lazy_gated.py").write_text(LAZY_GATED_APP)
    env = cli_env(**config, PYTHONPATH=str(tmp_path))
    result = saml_gate(
        "run", "lazy_gated:app", "--base-url", "http://127.0.0.1:8000", "--port", str(free_port()),
        env=env,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "SamlGate inside a SamlGate" in output and "Application startup failed" in output
    assert "'base_url' is required" not in output


@pytest.fixture
def config(tmp_path: Path) -> dict[str, str]:
    from saml_gate.saml.keys import generate_keypair
    from tests.support import idp_metadata

    metadata = tmp_path / "okta-metadata.xml"
    metadata.write_text(idp_metadata(generate_keypair("cli examples IdP")))
    return {
        "SAML_GATE_IDP_METADATA": str(metadata),
        "SAML_GATE_SECRET_KEY": SECRET,
        "SAML_GATE_STATE_DIR": str(tmp_path / "state"),
    }


def test_the_django_application_served_alone_keeps_its_own_gate(tmp_path: Path) -> None:
    """Only a gate in front makes `application` leave its own out: under plain uvicorn it is
    still gated (configured by the environment)."""
    port = free_port()
    env = dev_idp_env(
        tmp_path,
        SAML_GATE_BASE_URL=f"http://127.0.0.1:{port}",
        SAML_GATE_SECRET_KEY=SECRET,
        DJANGO_DB_PATH=str(tmp_path / "django.sqlite3"),
    )
    command = [sys.executable, "-m", "uvicorn", "examples.django_asgi.demo_site.asgi:application"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = None
        for _ in range(300):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", headers={"accept": "text/html"})
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert page is not None and page.status_code == 303
        assert "/saml/devidp/sso?SAMLRequest=" in page.headers["location"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_run_names_an_app_it_cannot_import(tmp_path: Path) -> None:
    result = saml_gate("run", "no_such_module:app", env=dev_idp_env(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "saml-gate: cannot import the app 'no_such_module:app'" in result.stderr
