"""The command line's own surface: help with defaults, --version, the flags each command reads
(the same common flags for every server command), messages that name the flag,
--secret-key-file, --workers and the start summary."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from saml_gate.__about__ import __version__
from saml_gate.cli import build_parser
from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.declaration import declarations
from saml_gate.config.kinds import BOOL
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.settings import GateSettings
from saml_gate.saml.keys import KeyPair
from tests.test_cli import SECRET, Server, cli_env, free_port, http_server, saml_gate
from tests.test_cli import config as config
from tests.test_cli import keys as keys

COMMANDS = ("demo", "run", "proxy", "setup", "metadata", "keygen", "check")
SERVER_COMMANDS = ("run", "proxy", "forward-auth", "demo")


def flags_of(command: str) -> set[str]:
    """The option strings a command takes, as its parser defines them."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag for action in sub.choices[command]._actions for flag in action.option_strings}


def declared_flags(cls: type) -> set[str]:
    """Each setting's flags, and ``--no-X`` for a boolean's ``--X``."""
    flags = {flag for d in declarations(cls) for flag in d.flags}
    booleans = {"--no-" + d.flags[-1][2:] for d in declarations(cls) if d.kind is BOOL}
    return flags | booleans


def test_every_server_command_takes_the_same_common_flags() -> None:
    common = declared_flags(CliSettings)
    assert {"--host", "--port", "--workers", "--ngrok", "--ngrok-domain"} <= common
    assert "--secret-key-file" in common
    gate = declared_flags(GateSettings)
    for command in SERVER_COMMANDS:
        assert flags_of(command) - {"-h", "--help", "--factory"} == common | gate | (
            declared_flags(ProxySettings) if command == "proxy" else set()
        ), command
    assert flags_of("check") >= gate | {"--secret-key-file"}
    assert flags_of("sessions") >= {"--store", "--store-prefix", "--store-timeout", "--clock-skew"}


def test_version() -> None:
    result = saml_gate("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"saml-gate {__version__}"


def test_every_option_that_takes_a_value_says_its_default() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.option_strings[0]}"
        for name, command in sub.choices.items()
        for action in command._actions
        if action.option_strings and action.nargs != 0
        if not any(word in (action.help or "") for word in ("default", "required"))
    ]
    assert missing == []


def test_help_of_server_and_keygen_flags_shows_defaults() -> None:
    for command in SERVER_COMMANDS:
        text = saml_gate(command, "--help").stdout
        assert "address to listen on" in text and "(default: 127.0.0.1)" in text, command
        assert "(default: 8000;" in text and "--workers" in text
        assert "--secret-key-file" in text and "ps" in text
        assert "keyword arguments of SamlGate: on_event, on_error, metrics_registry" in text
        advanced = text.index("— advanced")
        assert text.index("--max-xml-depth") > advanced > text.index("--base-url"), command
    keygen = saml_gate("keygen", "--help").stdout
    assert "(default: 3650)" in keygen and "(default: saml-gate SP)" in keygen
    assert "~/.saml-gate" in keygen


def test_setup_and_metadata_list_only_the_flags_they_read() -> None:
    setup = saml_gate("setup", "--help").stdout
    metadata = saml_gate("metadata", "--help").stdout
    for text in (setup, metadata):
        assert "--base-url" in text and "--sp-cert" in text and "--entity-id" in text
        for unread in ("--idp-metadata", "--secret-key", "--store", "--rule", "--debug"):
            assert unread not in text
    assert "--authorized-groups" in setup and "--authorized-groups" not in metadata
    assert "--idp-metadata" in saml_gate("check", "--help").stdout


def test_messages_name_the_flag_that_gave_the_value(tmp_path: Path) -> None:
    bad = saml_gate("setup", "--base-url", "acme.ngrok.app", env=cli_env(HOME=str(tmp_path)))
    assert bad.returncode == 2
    assert "--base-url: " in bad.stderr and "keyword" not in bad.stderr
    missing = saml_gate(
        "run", "examples.fastapi_app.main:app", "--secret-key", SECRET, "--clock-skew", "9999",
        env=cli_env(SAML_GATE_DEV_IDP="true", HOME=str(tmp_path)),
    )  # fmt: skip
    assert missing.returncode == 2
    assert "--base-url is required (or the SAML_GATE_BASE_URL variable)" in missing.stderr
    assert "--clock-skew: must be between 0 and 600 seconds" in missing.stderr
    assert "keyword" not in missing.stderr and "Traceback" not in missing.stderr


def test_secret_key_file(config: dict[str, str], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    env = cli_env(**{k: v for k, v in config.items() if k != "SAML_GATE_SECRET_KEY"})
    base = ("check", "--base-url", "https://acme.ngrok.app")
    assert "FAIL  --secret-key is required" in saml_gate(*base, env=env).stdout
    ok = saml_gate(*base, "--secret-key-file", str(secret), env=env)
    assert ok.returncode == 0 and "ready" in ok.stdout, ok.stdout
    short = tmp_path / "short"
    short.write_text("too-short")
    refused = saml_gate(*base, "--secret-key-file", str(short), env=env)
    assert refused.returncode == 1 and "secret_key" in refused.stdout
    gone = saml_gate(*base, "--secret-key-file", str(tmp_path / "nope"), env=env)
    assert gone.returncode == 2 and "--secret-key-file" in gone.stderr
    assert SECRET not in gone.stderr + gone.stdout + ok.stdout


def test_run_prints_a_summary(config: dict[str, str]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(
        "run", "examples.fastapi_app.main:app", "--base-url", base, env=cli_env(**config),
        port=port,
    )  # fmt: skip
    output = server.stop()
    assert f"examples.fastapi_app.main:app behind the gate at {base}/" in output
    assert "IdP:         http://www.okta.com/exkTESTIDP0000000001 (metadata from a file" in output
    assert f"Setup sheet: {base}/saml/setup" in output
    assert f"Next:        enter the setup sheet's values in the IdP (once), then open {base}/" in (
        output
    )


def test_workers_need_a_shared_store(config: dict[str, str]) -> None:
    result = saml_gate(
        "run", "examples.fastapi_app.main:app", "--base-url", "http://127.0.0.1:8000",
        "--workers", "2", env=cli_env(**config),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--workers 2 with the memory store" in result.stderr and "redis://" in result.stderr


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("apt-get install redis-server (.ci/run does)")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_proxy_with_workers_and_redis(
    config: dict[str, str],
    redis_url: str,
    sp_keys: KeyPair,
) -> None:
    with http_server(lambda request: f"pid {os.getpid()}".encode()) as upstream:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            "proxy", "--upstream", upstream, "--base-url", base, "--workers", "2",
            "--store", redis_url, "--rule", "/open/ public", env=cli_env(**config), port=port,
        )  # fmt: skip
        try:
            assert server.get("/open/x").status_code == 200
            assert "entityID" in httpx.get(f"{base}/saml/metadata", timeout=10).text
        finally:
            output = server.stop()
    assert f"proxy to {upstream} at {base}/ (listening on 127.0.0.1:{port}, 2 workers)" in output
    assert "Started parent process" in output and "memory store" not in output


def test_forward_auth_reads_the_secret_file_and_prints_the_summary(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = cli_env(SAML_GATE_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path))
    server = Server(
        "forward-auth", "--secret-key-file", str(secret), "--dev-idp", "--base-url", base,
        "--verify-isolation", "thread", env=env, port=port,
    )  # fmt: skip
    nginx = {"X-Original-URL": base + "/x", "X-Original-Method": "GET"}
    try:
        assert server.get("/saml/auth", headers=nginx).status_code == 401
    finally:
        output = server.stop()
    assert f"forward-auth for nginx, Caddy or Traefik (they ask /saml/auth) at {base}/" in output
    assert f"(listening on 127.0.0.1:{port})" in output
    assert "IdP:         the embedded DEVELOPMENT IdP" in output
    assert f"Setup sheet: {base}/saml/setup" in output and SECRET not in output


def test_forward_auth_workers_need_a_shared_store(config: dict[str, str]) -> None:
    result = saml_gate(
        "forward-auth", "--base-url", "http://127.0.0.1:8000", "--workers", "2",
        env=cli_env(**config),
    )  # fmt: skip
    assert result.returncode == 2
    assert "--workers 2 with the memory store" in result.stderr and "redis://" in result.stderr


def test_forward_auth_with_workers_and_redis(config: dict[str, str], redis_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(
        "forward-auth", "--base-url", base, "--workers", "2", "--store", redis_url,
        env=cli_env(**config), port=port,
    )  # fmt: skip
    try:
        assert "keys" in server.get("/saml/jwks.json").json()
    finally:
        output = server.stop()
    assert f"(listening on 127.0.0.1:{port}, 2 workers)" in output
    assert "IdP:         http://www.okta.com/exkTESTIDP0000000001" in output
    assert "Started parent process" in output


def test_the_common_flags_are_read_from_their_variables(config: dict[str, str]) -> None:
    result = saml_gate(
        "run", "examples.fastapi_app.main:app", "--base-url", "http://127.0.0.1:8000",
        env=cli_env(**config, SAML_GATE_WORKERS="3"),
    )  # fmt: skip
    assert result.returncode == 2 and "--workers 3 with the memory store" in result.stderr
    bad = saml_gate("proxy", "--upstream", "http://127.0.0.1:1", env=cli_env(SAML_GATE_PORT="x"))
    assert bad.returncode == 2 and "SAML_GATE_PORT='x' is not a whole number" in bad.stderr


def test_proxy_names_a_missing_upstream(config: dict[str, str]) -> None:
    result = saml_gate("proxy", "--base-url", "http://127.0.0.1:8000", env=cli_env(**config))
    assert result.returncode == 2, result.stderr
    assert "--upstream is required (or the SAML_GATE_UPSTREAM variable)" in result.stderr


def test_the_demo_refuses_a_secret_with_the_development_idp(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    result = saml_gate("demo", "--secret-key-file", str(secret), env=cli_env(HOME=str(tmp_path)))
    assert result.returncode == 2 and "makes a secret of its own" in result.stderr
