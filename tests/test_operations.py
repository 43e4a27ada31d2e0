"""Operating the gate: auth events in the log and the hooks, metrics, health and status, warnings.

Everything is read after real sign-ins and refusals through the endpoints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import time
from typing import Any

import pytest

from saml_gate.ops.events import EVENT_FIELDS, AuthEvent, EventSink
from saml_gate.ops.logs import JsonFormatter
from saml_gate.saml.keys import generate_keypair
from tests.support import Harness

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}
REMOTE = {"x-forwarded-for": "203.0.113.7"}


def auth_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "saml_gate.auth"]


def no_secrets(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in caplog.records:
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        for secret in secrets:
            assert secret not in text, f"{secret[:20]}… leaked into a log record"


async def test_sign_in_and_refusal_are_logged_with_stable_fields(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    request_id, relay = await harness.start_login()
    body = harness.response_b64(harness.spec(in_response_to=request_id))
    ok = await harness.client.post(
        "/saml/acs",
        data={"SAMLResponse": body, "RelayState": relay},
        headers={"x-request-id": "req-42"},
    )
    assert ok.status_code == 303
    login = auth_records(caplog)[-1]
    assert login.event == "login" and login.outcome == "success"  # type: ignore[attr-defined]
    fields = {name: getattr(login, name) for name in EVENT_FIELDS}
    assert fields["name_id"] == "alice@example.com" and fields["email"] == "alice@example.com"
    assert fields["groups"] == ("admins", "users")
    assert fields["issuer"] == "http://www.okta.com/exkTESTIDP0000000001"
    assert fields["request_id"] == "req-42" and fields["client"] == "127.0.0.1"
    assert fields["idp_initiated"] is False and fields["duration_ms"] > 0

    again = await harness.client.post("/saml/acs", data={"SAMLResponse": body}, headers=JSON)
    refused = auth_records(caplog)[-1]
    assert refused.event == "login_refused" and refused.error_code in (
        "replayed",
        "unknown_request",
    )  # type: ignore[attr-defined]
    assert refused.levelno == logging.WARNING and refused.issuer  # type: ignore[attr-defined]
    assert again.json()["request_id"] == refused.request_id  # type: ignore[attr-defined]
    no_secrets(caplog, body, str(harness.client.cookies.get("saml_gate_session")))


async def test_an_event_line_is_built_for_a_listener_and_the_metrics_count_it_anyway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[AuthEvent] = []

    class Metrics:
        def record(self, event: AuthEvent) -> None:
            counted.append(event)

    sink = EventSink(metrics=Metrics())
    event = AuthEvent("login", "success", name_id="alice@example.com", groups=("admins",))
    caplog.set_level(logging.WARNING, logger="saml_gate.auth")
    sink.emit(event)
    assert not auth_records(caplog) and counted == [event]
    caplog.set_level(logging.INFO, logger="saml_gate.auth")
    sink.emit(event)
    (line,) = auth_records(caplog)
    assert line.getMessage().startswith("saml-gate login alice@example.com groups=[admins]")
    assert line.levelno == logging.INFO and line.groups == ("admins",)  # type: ignore[attr-defined]
    assert line.filename == "events.py" and counted == [event, event]


def test_an_event_is_the_dataclass_its_fields_say() -> None:
    """AuthEvent's own ``__init__`` takes the dataclass's fields, in order, with their
    defaults, and each event gets its own ``extra``; ``replace`` and ``asdict`` work on it."""
    params = list(inspect.signature(AuthEvent).parameters.values())
    declared = dataclasses.fields(AuthEvent)
    assert [p.name for p in params] == [f.name for f in declared]
    for param, declared_field in zip(params[:-1], declared[:-1], strict=True):
        assert param.default == declared_field.default or param.default is inspect.Parameter.empty
    first, second = AuthEvent("login", "success"), AuthEvent("login", "success")
    assert first.extra == {} and first.extra is not second.extra
    assert first == second and first.groups == () and first.reason is None
    changed = dataclasses.replace(first, reason="why", extra={"a": 1})
    assert (changed.reason, changed.extra, changed.outcome) == ("why", {"a": 1}, "success")
    assert changed.as_dict()["extra"] == {"a": 1} and changed.as_dict()["groups"] == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.reason = "no"  # type: ignore[misc]


async def test_logout_expiry_and_policy_denial_are_events(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h = make_harness(authorized_groups=["admins"], inactivity_timeout=600)
    await h.login(
        attributes={"email": ["bob@example.com"], "groups": ["users"]}, name_id="bob@example.com"
    )
    assert (await h.client.get("/private/x", headers=JSON)).status_code == 403
    denial = auth_records(caplog)[-1]
    assert denial.event == "policy_denied" and denial.error_code == "forbidden"  # type: ignore[attr-defined]
    assert denial.path == "/private/x"  # type: ignore[attr-defined]

    h.clock.advance(601)
    assert (await h.client.get("/private/x", headers=JSON)).status_code == 401
    expiry = auth_records(caplog)[-1]
    assert expiry.event == "session_expired" and "idle" in expiry.reason  # type: ignore[attr-defined]

    h2 = make_harness()
    await h2.login()
    page = await h2.client.get("/saml/logout")
    token = page.text.split("name=token value='")[1].split("'")[0]
    await h2.client.post("/saml/logout", data={"token": token})
    events = [r.event for r in auth_records(caplog)]  # type: ignore[attr-defined]
    assert events[-1] == "logout"


async def test_json_formatter_keeps_the_fields(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await harness.login()
    line = JsonFormatter().format(auth_records(caplog)[-1])
    data = json.loads(line)
    assert data["event"] == "login" and data["name_id"] == "alice@example.com"
    assert data["groups"] == ["admins", "users"] and data["logger"] == "saml_gate.auth"


async def test_hooks_sync_and_async_and_a_failing_one(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen_sync: list[AuthEvent] = []
    seen_async: list[AuthEvent] = []

    def sync_hook(event: AuthEvent) -> None:
        seen_sync.append(event)

    async def async_hook(event: AuthEvent) -> None:
        await asyncio.sleep(0)
        seen_async.append(event)

    def broken_hook(event: AuthEvent) -> None:
        raise RuntimeError("the SIEM is down")

    h = make_harness(on_event=[sync_hook, async_hook, broken_hook])
    r = await h.login()
    assert r.status_code == 303  # the broken hook never breaks the request
    await h.post_acs("garbage")
    await h.gate.core.events.drain()
    assert [e.event for e in seen_sync] == ["login", "login_refused"]
    assert [e.event for e in seen_async] == ["login", "login_refused"]
    assert seen_async[1].error_code == "malformed_response"
    assert "on_event hook" in caplog.text and "the SIEM is down" in caplog.text


async def test_prometheus_metrics(make_harness: Any) -> None:
    pytest.importorskip("prometheus_client", reason="pip install -e '.[test]'")
    h = make_harness(metrics_path="/metrics")
    await h.login()
    h.client.cookies.clear()
    await h.login(audience="https://other-sp.example")
    assert (await h.client.get("/metrics", headers=REMOTE)).status_code == 403
    text = (await h.client.get("/metrics")).text
    assert 'saml_gate_logins_total{error_code="",outcome="success"} 1.0' in text
    assert 'saml_gate_logins_total{error_code="wrong_audience",outcome="failure"} 1.0' in text
    assert "saml_gate_acs_verify_seconds_count 2.0" in text
    assert 'saml_gate_certificate_expiry_days{certificate="sp"}' in text
    assert 'saml_gate_certificate_expiry_days{certificate="idp_signing_0"}' in text
    public = make_harness(metrics_path="/metrics", metrics_public=True)
    assert (await public.client.get("/metrics", headers=REMOTE)).status_code == 200


async def test_metrics_in_the_apps_own_registry(make_harness: Any) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    h = make_harness(metrics_registry=registry)
    await h.login()
    assert (
        registry.get_sample_value(
            "saml_gate_logins_total", {"outcome": "success", "error_code": ""}
        )
        == 1.0
    )
    # No metrics_path: nothing is served by the gate; the app's own routes answer (here: 404).
    assert (await h.client.get("/metrics")).status_code == 404


async def test_health_ready_and_status(make_harness: Any) -> None:
    h = make_harness(status_group="ops")
    assert (await h.client.get("/saml/health")).json() == {"status": "ok"}
    ready = await h.client.get("/saml/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["idp_metadata"]["ok"]
    status = (await h.client.get("/saml/status")).json()
    assert status["entity_id"] == "http://127.0.0.1:8000/saml/metadata"
    assert status["idp"]["entity_id"] == "http://www.okta.com/exkTESTIDP0000000001"
    assert status["idp"]["signing_certificates"][0]["days_left"] > 3000
    assert status["store"] == "memory" and status["version"]
    assert (await h.client.get("/saml/status", headers=REMOTE)).status_code == 403
    await h.login(attributes={"email": ["ops@example.com"], "groups": ["ops"]})
    assert (await h.client.get("/saml/status", headers=REMOTE)).status_code == 200


async def test_readiness_fails_when_the_shared_store_is_down(make_harness: Any) -> None:
    pytest.importorskip("redis", reason="pip install -e '.[test]'")
    h = make_harness(store="redis://127.0.0.1:1/0", store_timeout=0.2)
    ready = await h.client.get("/saml/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"]["ok"] is False


async def test_startup_warnings(
    make_harness: Any, caplog: pytest.LogCaptureFixture, clock: Any
) -> None:
    clock.now = time.time()  # the certificate below is made with the real clock
    soon = generate_keypair("expiring SP", days=10)
    h = make_harness(sp_key=soon.key_pem.decode(), sp_cert=soon.cert_pem.decode(), debug=True)
    assert "the SP certificate" not in caplog.text  # building a gate only checks its settings
    await h.gate.start()
    text = caplog.text
    assert "the SP certificate" in text and "expires in" in text
    assert "debug is on" in text
    events = {getattr(r, "event", None) for r in caplog.records}
    assert {"certificate_expiry", "debug_on"} <= events


async def test_warnings_are_repeated_daily(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_harness(debug=True)
    await h.gate.start()
    h.gate.core.warnings._interval = 0.01
    caplog.clear()
    h.gate.core.warnings.start()
    await asyncio.sleep(0.1)
    await h.gate.core.warnings.stop()
    assert caplog.text.count("debug is on") >= 2
