"""Every CLI command, run as a subprocess the way a person runs it."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.support import idp_metadata

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cli-test-secret-0123456789-abcdefghijkl"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAML_GATE_", "NGROK_"))}
    env.update(extra)
    return env


def check_env(idp_keys: Any, folder: Path, **extra: str) -> dict[str, str]:
    """What ``saml-gate check`` needs to trust a test IdP (its metadata in ``folder``)."""
    from tests.support import idp_metadata

    metadata = folder / "idp.xml"
    metadata.write_text(idp_metadata(idp_keys))
    return cli_env(
        SAML_GATE_IDP_METADATA=str(metadata),
        SAML_GATE_SECRET_KEY="s" * 40,
        SAML_GATE_STATE_DIR=str(folder / "state"),
        **extra,
    )


def saml_gate(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", *args],
        env=env or cli_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A saml-gate server process, stopped at the end of the test."""

    def __init__(self, *args: str, env: dict[str, str], port: int, cwd: Path = ROOT) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "saml_gate.cli", *args, "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{port}/saml/metadata", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not start")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10, **kwargs)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return generate_keypair("cli test IdP")


@pytest.fixture
def config(tmp_path: Path, keys: KeyPair, sp_keys: KeyPair) -> dict[str, str]:
    metadata = tmp_path / "okta-metadata.xml"
    metadata.write_text(idp_metadata(keys))
    (tmp_path / "sp.key.pem").write_bytes(sp_keys.key_pem)
    (tmp_path / "sp.cert.pem").write_bytes(sp_keys.cert_pem)
    return {
        "SAML_GATE_IDP_METADATA": str(metadata),
        "SAML_GATE_SECRET_KEY": SECRET,
        "SAML_GATE_SP_KEY": str(tmp_path / "sp.key.pem"),
        "SAML_GATE_SP_CERT": str(tmp_path / "sp.cert.pem"),
        "SAML_GATE_STATE_DIR": str(tmp_path / "state"),
    }


def test_help_lists_every_command() -> None:
    result = saml_gate("--help")
    assert result.returncode == 0
    commands = ("demo", "run", "proxy", "forward-auth", "setup", "metadata", "keygen", "check")
    for command in (*commands, "sessions"):
        assert command in result.stdout
        assert saml_gate(command, "--help").returncode == 0


def test_setup_prints_the_idp_values(tmp_path: Path, sp_keys: KeyPair) -> None:
    cert = tmp_path / "sp.cert.pem"
    cert.write_bytes(sp_keys.cert_pem)
    key = tmp_path / "sp.key.pem"
    key.write_bytes(sp_keys.key_pem)
    result = saml_gate(
        "setup",
        "--base-url",
        "https://acme.ngrok.app",
        "--sp-key",
        str(key),
        "--sp-cert",
        str(cert),
        "--authorized-groups",
        "admins",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "Assertion Consumer Service (ACS) URL" in out and "https://acme.ngrok.app/saml/acs" in out
    )
    assert "Okta: Single sign-on URL" in out
    assert "SP entity ID (Audience)" in out and "https://acme.ngrok.app/saml/metadata" in out
    assert "Okta: Audience URI (SP Entity ID)" in out
    assert "EmailAddress" in out and "name 'groups'" in out and "admins" in out
    assert "https://acme.ngrok.app/saml/slo" in out and "signed" in out
    assert sp_keys.cert_pem.decode().strip() in out
    assert "PRIVATE KEY" not in out
    assert "WARNING" not in out


def test_setup_warns_on_a_base_url_that_is_probably_wrong(tmp_path: Path) -> None:
    env = cli_env(SAML_GATE_STATE_DIR=str(tmp_path))

    def setup(*flags: str) -> str:
        result = saml_gate("setup", *flags, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert setup("--base-url", "http://app.example.com").startswith(
        "WARNING: base_url http://app.example.com is plain http on a public host"
    )
    assert setup("--base-url", "https://acme.ngrok.app/saml/").startswith(
        "WARNING: base_url https://acme.ngrok.app/saml ends in the gate's prefix /saml, so every"
        " gate URL has it twice (the ACS is https://acme.ngrok.app/saml/saml/acs): base_url is"
        " the public URL of the app, https://acme.ngrok.app,"
    )
    for fine in ("http://127.0.0.1:8000", "https://acme.ngrok.app", "https://x.example/samlapp"):
        assert "WARNING" not in setup("--base-url", fine), fine
    mounted = setup("--base-url", "https://x.example/sso", "--prefix", "/sso")
    assert "ends in the gate's prefix /sso" in mounted


def test_setup_reads_the_environment(tmp_path: Path) -> None:
    env = cli_env(SAML_GATE_BASE_URL="https://env.ngrok.app", SAML_GATE_STATE_DIR=str(tmp_path))
    result = saml_gate("setup", env=env)
    assert result.returncode == 0, result.stderr
    assert "https://env.ngrok.app/saml/acs" in result.stdout
    assert "generated a development SP key pair" in result.stderr


def test_setup_names_a_bad_setting(tmp_path: Path) -> None:
    result = saml_gate("setup", "--base-url", "acme.ngrok.app", env=cli_env())
    assert result.returncode == 2
    assert "--base-url: " in result.stderr and "Traceback" not in result.stderr


def test_metadata_prints_sp_metadata(config: dict[str, str]) -> None:
    env = cli_env(**config)
    result = saml_gate("metadata", "--base-url", "https://acme.ngrok.app", env=env)
    assert result.returncode == 0, result.stderr
    assert 'entityID="https://acme.ngrok.app/saml/metadata"' in result.stdout
    assert "https://acme.ngrok.app/saml/acs" in result.stdout


def test_keygen_writes_a_private_key_and_a_certificate(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    result = saml_gate("keygen", "--out-dir", str(out), "--days", "400")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((out / "sp.key.pem").stat().st_mode) == 0o600
    assert b"BEGIN CERTIFICATE" in (out / "sp.cert.pem").read_bytes()
    key = (out / "sp.key.pem").read_bytes()
    again = saml_gate("keygen", "--out-dir", str(out))
    assert again.returncode == 0 and "kept" in again.stdout and "--force" in again.stdout
    assert (out / "sp.key.pem").read_bytes() == key
    assert saml_gate("keygen", "--out-dir", str(out), "--force").returncode == 0
    assert (out / "sp.key.pem").read_bytes() != key


def test_check_passes_on_a_good_configuration(config: dict[str, str]) -> None:
    result = saml_gate("check", "--base-url", "https://acme.ngrok.app", env=cli_env(**config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IdP http://www.okta.com/exkTESTIDP0000000001" in result.stdout
    assert "ready" in result.stdout


def test_check_fails_and_says_why(config: dict[str, str], tmp_path: Path) -> None:
    env = cli_env(**{**config, "SAML_GATE_IDP_METADATA": str(tmp_path / "missing.xml")})
    result = saml_gate("check", "--base-url", "https://acme.ngrok.app", env=env)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "idp_metadata" in result.stdout


@contextlib.contextmanager
def http_server(body_for: Callable[[http.server.BaseHTTPRequestHandler], bytes]) -> Iterator[str]:
    """A real HTTP server on loopback answering every GET with ``body_for(request)``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = body_for(self)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def metadata_url(keys: KeyPair) -> Iterator[str]:
    body = idp_metadata(keys).encode()
    with http_server(lambda request: body) as url:
        yield url + "/metadata"


def test_check_compares_clocks_with_a_metadata_url(
    config: dict[str, str], metadata_url: str
) -> None:
    env = cli_env(**{**config, "SAML_GATE_IDP_METADATA": metadata_url})
    result = saml_gate("check", "--base-url", "https://acme.ngrok.app", env=env)
    assert result.returncode == 0, result.stdout
    assert "clock: within" in result.stdout and "metadata from URL" in result.stdout


def test_run_serves_an_app_behind_the_gate(config: dict[str, str]) -> None:
    port = free_port()
    server = Server(
        "run",
        "examples.fastapi_app.main:build_app",
        "--factory",
        "--base-url",
        f"http://127.0.0.1:{port}",
        env=cli_env(**config),
        port=port,
    )
    try:
        api = server.get("/api/me", headers={"accept": "application/json"})
        assert api.status_code == 401 and api.json()["error"] == "not_authenticated"
        page = server.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and "SAMLRequest=" in page.headers["location"]
    finally:
        server.stop()


def test_demo_serves_the_example_with_the_dev_idp(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(SAML_GATE_STATE_DIR=str(tmp_path))
    server = Server("demo", env=env, port=port)
    try:
        r = server.get("/", headers={"accept": "text/html"})
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"http://127.0.0.1:{port}/saml/devidp/sso?")
        assert "Development IdP" in server.get(r.headers["location"].split(str(port), 1)[1]).text
    finally:
        output = server.stop()
    assert "DEVELOPMENT IdP" in output
    assert f"the demo app at http://127.0.0.1:{port}/ (listening on 127.0.0.1:{port})" in output
    assert "Next:        open" in output


FAKE_NGROK = """
class _Listener:
    def __init__(self, addr, domain):
        self.addr, self.domain = addr, domain

    def url(self):
        return "https://" + (self.domain or "fake-tunnel.ngrok.app")


def forward(addr, authtoken_from_env=False, **options):
    assert authtoken_from_env
    print("fake ngrok forwarding to", addr, flush=True)
    return _Listener(addr, options.get("domain"))
"""


def test_run_with_ngrok_takes_the_tunnel_url(config: dict[str, str], tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "ngrok.py").write_text(FAKE_NGROK)
    port = free_port()
    env = cli_env(
        **config, NGROK_AUTHTOKEN="test-token", PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)])
    )
    server = Server(
        "run",
        "examples.fastapi_app.main:build_app",
        "--factory",
        "--ngrok",
        "--ngrok-domain",
        "acme-test.ngrok.app",
        env=env,
        port=port,
    )
    try:
        metadata = server.get("/saml/metadata").text
        assert 'entityID="https://acme-test.ngrok.app/saml/metadata"' in metadata
    finally:
        output = server.stop()
    assert f"fake ngrok forwarding to 127.0.0.1:{port}" in output
    assert "ngrok tunnel: https://acme-test.ngrok.app" in output
    assert "https://acme-test.ngrok.app/saml/acs" in output  # the setup sheet


def test_ngrok_failures_are_one_clear_line(config: dict[str, str]) -> None:
    pytest.importorskip("ngrok", reason="the ngrok extra: pip install -e '.[test]'")
    base = ("run", "examples.fastapi_app.main:build_app", "--factory", "--ngrok")
    no_token = saml_gate(*base, env=cli_env(**config))
    assert no_token.returncode == 2
    assert "NGROK_AUTHTOKEN" in no_token.stderr and "Traceback" not in no_token.stderr
    bad = saml_gate(*base, env=cli_env(**config, NGROK_AUTHTOKEN="not-a-real-token"))
    assert bad.returncode == 2 and "ngrok could not open a tunnel" in bad.stderr
    errors = [line for line in bad.stderr.splitlines() if line.startswith("saml-gate:")]
    assert "Traceback" not in bad.stderr and len(errors) == 1, bad.stderr


def test_demo_refuses_ngrok_with_the_dev_idp() -> None:
    result = saml_gate("demo", "--ngrok", env=cli_env(NGROK_AUTHTOKEN="x"))
    assert result.returncode == 2 and "development IdP never runs on a public URL" in result.stderr


@pytest.fixture
def upstream() -> Iterator[str]:
    """A plain HTTP server standing for an app in any language; it echoes request headers."""
    with http_server(
        lambda r: "\n".join(f"{k}: {v}" for k, v in r.headers.items()).encode()
    ) as url:
        yield url


def test_proxy_puts_the_gate_in_front_of_any_web_app(config: dict[str, str], upstream: str) -> None:
    port = free_port()
    server = Server(
        "proxy",
        "--upstream",
        upstream,
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--rule",
        "/public/ public",
        "--user-header",
        "X-Remote-User",
        env=cli_env(**config),
        port=port,
    )
    try:
        public = server.get("/public/page", headers={"X-Remote-User": "mallory@example.com"})
        assert public.status_code == 200
        assert "mallory" not in public.text  # spoofed identity headers never reach the app
        private = server.get("/private", headers={"accept": "text/html"})
        assert private.status_code == 303 and "SAMLRequest=" in private.headers["location"]
    finally:
        server.stop()
