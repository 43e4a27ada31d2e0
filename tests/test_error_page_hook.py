"""on_error: branded error pages through the real endpoints, the gate's own page as fallback."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, Response

from saml_gate import ConfigError, GateError, GateSettings
from tests.conftest import HarnessFactory

pytestmark = pytest.mark.anyio


class Branding:
    """An on_error hook that records its calls and brands the codes it is told to."""

    def __init__(self, codes: set[str]) -> None:
        self.codes = codes
        self.calls: list[tuple[str, str]] = []

    def __call__(self, connection: HTTPConnection, error: GateError) -> Response | None:
        self.calls.append((connection.url.path, error.code))
        if error.code not in self.codes:
            return None
        return HTMLResponse(f"<h1>Acme: {error.info.title}</h1>", status_code=error.status)


async def test_a_gate_endpoint_error_gets_the_branded_page(make_harness: HarnessFactory) -> None:
    hook = Branding({"not_found"})
    h = make_harness(on_error=hook)
    r = await h.client.get("/saml/nope", headers={"accept": "text/html"})
    assert (r.status_code, r.text) == (404, "<h1>Acme: Not found</h1>")
    assert r.headers["cache-control"] == "no-store"
    assert hook.calls == [("/saml/nope", "not_found")]


async def test_a_refused_app_request_gets_the_branded_page(make_harness: HarnessFactory) -> None:
    hook = Branding({"bad_path"})
    h = make_harness(on_error=hook)
    r = await h.client.get("/private;x/page", headers={"accept": "text/html"})
    assert r.status_code == 400 and r.text.startswith("<h1>Acme: ")
    assert hook.calls == [("/private;x/page", "bad_path")]


async def test_none_keeps_the_gates_own_page(make_harness: HarnessFactory) -> None:
    hook = Branding(set())
    h = make_harness(on_error=hook)
    r = await h.client.get("/saml/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "Error code: <code>not_found</code>" in r.text
    assert hook.calls == [("/saml/nope", "not_found")]


async def test_a_failing_hook_is_logged_and_the_gates_page_sent(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(connection: HTTPConnection, error: GateError) -> Response | None:
        raise RuntimeError("template missing")

    h = make_harness(on_error=broken)
    with caplog.at_level(logging.ERROR, logger="saml_gate"):
        r = await h.client.get("/saml/nope", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert any("on_error hook" in record.getMessage() for record in caplog.records)


async def test_sign_in_and_the_401_to_api_calls_do_not_call_it(
    make_harness: HarnessFactory,
) -> None:
    """The hook stays in the app's process: the verification workers never see it (a lambda
    cannot be pickled for them)."""
    hook = Branding({"not_authenticated"})
    h = make_harness(on_error=lambda connection, error: hook(connection, error))
    assert h.gate.core.workers is not None
    r = await h.client.get("/private/api", headers={"accept": "application/json"})
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
    r = await h.login()
    assert r.status_code == 303, r.text
    assert hook.calls == []


def test_on_error_must_be_callable() -> None:
    with pytest.raises(ConfigError, match="on_error"):
        GateSettings.load(
            {}, base_url="http://127.0.0.1:8000", secret_key="s" * 40, dev_idp=True, on_error=42
        )
