"""What the gate's log says, and where it goes.

Under plain ``uvicorn`` (which configures only its own loggers) the auth events are visible, once
each; under ``saml-gate run`` and plain uvicorn alike, no access log line carries a SAML message.
The sign-in line names groups, IdP, IdP-initiated and the request id; a browser's icon request
does not double a denial; ``GET /saml/acs`` is no failed sign-in.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from saml_gate import Rule, SamlGate
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.ops.events import AuthEvent, EventSink
from saml_gate.ops.logs import (
    ConsoleHandler,
    FallbackHandler,
    JsonFormatter,
    RedactSamlMessages,
    plain_consoles,
    redact_saml,
)
from saml_gate.saml.keys import KeyPair
from tests.support import (
    BASE_URL,
    IDP_ENTITY_ID,
    FrozenClock,
    Harness,
    decode_redirect_request,
    gate_options,
    make_app,
)
from tests.test_cli import ROOT, SECRET, cli_env, free_port

pytestmark = pytest.mark.anyio

APP_MODULE = """
from saml_gate import SamlGate
from tests.support import make_app

inner = make_app()  # for saml-gate run, which puts the gate in front itself
app = SamlGate(make_app())  # for plain uvicorn
"""


def test_redaction_keeps_the_path_and_drops_saml_values() -> None:
    line = "GET /saml/slo?SAMLRequest=fZBB%2Bx&RelayState=%2Fa&SigAlg=x&Signature=AbC%3D HTTP/1.1"
    assert redact_saml(line) == (
        "GET /saml/slo?SAMLRequest=…&RelayState=%2Fa&SigAlg=x&Signature=… HTTP/1.1"
    )
    assert redact_saml("/p?a=1&SAMLResponse=PHNhbWw") == "/p?a=1&SAMLResponse=…"


EVENTS = [
    AuthEvent(
        "login",
        "success",
        name_id="alice@example.com",
        groups=("admins", "users"),
        issuer=IDP_ENTITY_ID,
        request_id="abc123",
        idp_initiated=False,
        step_up=True,
    ),
    AuthEvent(  # an argument that starts with a SAML value: redacted as an argument alone
        "login_refused",
        "failure",
        error_code="replayed",
        reason="GET /saml/slo?SAMLRequest=fZB&RelayState=%2F",
        name_id="SAMLResponse=PHNhbWw",
    ),
    AuthEvent("policy_denied", "failure", client="10.0.0.1", path="/p?SAMLRequest=fZB"),
]


def test_the_gate_console_prints_an_event_line_as_the_logging_record_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Printed without a record when only the gate's own console handlers would print it, the
    line is the one logging prints from the record (a filter on the handler makes it so),
    redaction included; and any other handler, filter or formatter gets the record."""
    auth, gate_logger = logging.getLogger("saml_gate.auth"), logging.getLogger("saml_gate")
    handler = FallbackHandler()
    monkeypatch.setattr(logging.root, "handlers", [])  # pytest's own capture
    monkeypatch.setattr(gate_logger, "handlers", [handler])
    monkeypatch.setattr(auth, "filters", [RedactSamlMessages()])
    level = gate_logger.level
    gate_logger.setLevel(logging.INFO)
    try:
        lines = []
        for plain in (True, False):
            handler.setStream(io.StringIO())
            if not plain:
                handler.addFilter(lambda record: True)  # the record's way, through logging
            assert (plain_consoles(auth, logging.WARNING) is not None) is plain
            for event in EVENTS:
                EventSink().emit(event)
            lines.append(handler.stream.getvalue())
        assert lines[0] == lines[1]
        assert lines[0].splitlines() == [
            f"INFO saml_gate.auth: saml-gate login alice@example.com groups=[admins, users]"
            f" idp={IDP_ENTITY_ID} idp_initiated=no step_up=yes request_id=abc123",
            "WARNING saml_gate.auth: saml-gate login_refused SAMLResponse=… replayed"
            " (GET /saml/slo?SAMLRequest=…&RelayState=%2F)",
            "WARNING saml_gate.auth: saml-gate policy_denied 10.0.0.1",
        ]

        handler.filters.clear()
        handler.setFormatter(JsonFormatter())  # a formatter of the app's own: the record
        handler.setStream(io.StringIO())
        assert plain_consoles(auth, logging.INFO) is None
        EventSink().emit(EVENTS[0])
        assert json.loads(handler.stream.getvalue())["request_id"] == "abc123"

        ours, theirs = ConsoleHandler(), logging.StreamHandler(io.StringIO())
        monkeypatch.setattr(gate_logger, "handlers", [])
        monkeypatch.setattr(logging.root, "handlers", [ours])  # saml-gate run's console
        assert plain_consoles(auth, logging.INFO) == [ours]
        monkeypatch.setattr(logging.root, "handlers", [ours, theirs])
        assert plain_consoles(auth, logging.INFO) is None
        monkeypatch.setattr(logging.root, "handlers", [])
        assert plain_consoles(auth, logging.INFO) is None  # nobody: logging's last resort
    finally:
        gate_logger.setLevel(level)


async def test_sign_in_line_and_quiet_icon_denials(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = gate_options(
        idp_keys, sp_keys, clock, str(tmp_path), access_rules=[Rule("/", groups=["staff"])]
    )
    gate = SamlGate(make_app(), **options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
    h = Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)
    caplog.set_level(logging.DEBUG, logger="saml_gate")
    r = await h.login()
    assert r.status_code == 303
    line = next(r.getMessage() for r in caplog.records if getattr(r, "event", "") == "login")
    assert "alice@example.com" in line and "groups=[admins, users]" in line
    assert f"idp={IDP_ENTITY_ID}" in line and "idp_initiated=no" in line
    assert "request_id=" in line and "request_id=-" not in line and "step_up=no" in line

    caplog.clear()
    page = await client.get("/private/page", headers={"accept": "text/html"})
    icon = await client.get("/favicon.ico", headers={"sec-fetch-dest": "image"})
    assert page.status_code == icon.status_code == 403
    denials = [r for r in caplog.records if getattr(r, "event", "") == "policy_denied"]
    assert [(d.path, d.levelno) for d in denials] == [  # type: ignore[attr-defined]
        ("/private/page", logging.WARNING),
        ("/favicon.ico", logging.DEBUG),
    ]

    caplog.clear()
    assert (await client.get("/saml/acs")).status_code == 405
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "request_refused" in events and "login_refused" not in events
    await client.aclose()


async def test_a_step_up_sign_in_says_so(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = [Rule("/private/", max_authn_age=300)]  # ForceAuthn for these pages
    gate = SamlGate(
        make_app(), **gate_options(idp_keys, sp_keys, clock, str(tmp_path), access_rules=rules)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url=BASE_URL
    ) as client:
        h = Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)
        caplog.set_level(logging.INFO, logger="saml_gate")
        assert (await h.login()).status_code == 303
    login = next(r for r in caplog.records if getattr(r, "event", "") == "login")
    assert login.step_up is True and "step_up=yes" in login.getMessage()  # type: ignore[attr-defined]


class Process:
    """A server process whose output (stdout and stderr together) is read after it stops."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{self.url}/saml/metadata", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


@pytest.fixture
def gate_env(gate_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """conftest's, in an environment without the caller's settings, with the logged app."""
    (tmp_path / "logged_app.py").write_text(APP_MODULE)
    return cli_env(**gate_env, PYTHONPATH=f"{ROOT}:{tmp_path}")


def sign_in_and_poke(server: Process, idp_keys: KeyPair) -> None:
    """A sign-in over real HTTP, then a logout message in a query (for the access log)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get("/private/page", headers={"accept": "text/html"})
        assert r.status_code == 303
        request, relay = decode_redirect_request(r.headers["location"])
        spec = ResponseSpec(
            issuer=IDP_ENTITY_ID,
            destination=server.url + "/saml/acs",
            audience=server.url + "/saml/metadata",
            name_id="alice@example.com",
            attributes={"email": ["alice@example.com"], "groups": ["admins", "users"]},
            now=datetime.now(UTC),
            in_response_to=request.get("ID"),
        )
        body = base64.b64encode(issue_response(spec, idp_keys)).decode()
        r = client.post("/saml/acs", data={"SAMLResponse": body, "RelayState": relay or ""})
        assert r.status_code == 303, r.text
        client.get("/saml/slo?SAMLRequest=SECRETSAMLVALUE&Signature=SECRETSIGVALUE")


def served_output(gate_env: dict[str, str], idp_keys: KeyPair, *command: str) -> str:
    """Everything a server started with ``command ... --port PORT`` printed while a person
    signed in and a logout message arrived in a query; the sign-in line is in it once."""
    port = free_port()
    env = gate_env | {"SAML_GATE_BASE_URL": f"http://127.0.0.1:{port}"}
    server = Process([sys.executable, "-m", *command, "--port", str(port)], env, port)
    try:
        sign_in_and_poke(server, idp_keys)
    finally:
        out = server.stop()
    assert out.count("saml-gate login alice@example.com") == 1, out
    assert "GET /saml/slo?SAMLRequest=…&Signature=…" in out  # uvicorn's access line, redacted
    assert "SECRETSAMLVALUE" not in out and "SECRETSIGVALUE" not in out
    assert not re.search(r"(SAMLRequest|SAMLResponse|Signature)=[^…]", out), out
    return out


def test_plain_uvicorn_shows_auth_events_once_and_no_saml_messages(
    gate_env: dict[str, str], idp_keys: KeyPair
) -> None:
    out = served_output(gate_env, idp_keys, "uvicorn", "logged_app:app")
    assert "groups=[admins, users]" in out


def test_saml_gate_run_logs_once_redacted_and_without_library_chatter(
    gate_env: dict[str, str], idp_keys: KeyPair
) -> None:
    out = served_output(gate_env, idp_keys, "saml_gate.cli", "run", "logged_app:inner")
    assert "INFO xmlschema" not in out and "INFO httpx" not in out


def test_an_unreachable_metadata_url_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = cli_env(SAML_GATE_SECRET_KEY=SECRET, SAML_GATE_STATE_DIR=str(tmp_path))
    result = subprocess.run(
        [
            *(sys.executable, "-m", "saml_gate.cli", "run", "tests.support:make_app", "--factory"),
            *("--idp-metadata", f"http://127.0.0.1:{port}/metadata", "--port", str(port)),
            *("--base-url", f"http://127.0.0.1:{port}"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    about_it = [line for line in result.stderr.splitlines() if f"127.0.0.1:{port}" in line]
    assert len(about_it) == 1, result.stderr
    assert "cannot fetch" in about_it[0] and "no cached copy" in about_it[0]
    assert "For more information" not in result.stderr and "Traceback" not in result.stderr
