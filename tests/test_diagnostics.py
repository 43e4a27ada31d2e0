"""Okta set-up mistakes: each has its own error code and a hint naming the Okta field to fix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from tests.support import ACS_URL, ENTITY_ID, Harness

pytestmark = pytest.mark.anyio


async def diagnose(
    h: Harness,
    *,
    issue: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    request_id, relay = await h.start_login()
    spec.setdefault("in_response_to", request_id)
    body = h.response_b64(h.spec(**spec), **(issue or {}))
    r = await h.client.post(
        "/saml/acs",
        data={"SAMLResponse": body, "RelayState": relay},
        headers={"accept": "application/json", **(headers or {})},
    )
    assert 400 <= r.status_code < 500, r.text
    assert "saml_gate_session" not in r.headers.get("set-cookie", "")
    result: dict[str, Any] = r.json()
    result["status"] = r.status_code
    return result


async def test_audience_still_the_temporary_placeholder(harness: Harness) -> None:
    d = await diagnose(harness, audience="https://temporary")
    assert d["error"] == "audience_placeholder"
    assert "Audience URI (SP Entity ID)" in d["hint"] and ENTITY_ID in d["hint"]


async def test_single_sign_on_url_is_not_the_acs(harness: Harness) -> None:
    d = await diagnose(harness, destination="https://temporary")
    assert d["error"] == "wrong_destination"
    assert "Single sign-on URL" in d["hint"] and ACS_URL in d["hint"]
    assert "https://temporary" in d["detail"]


async def test_idp_rotated_its_signing_key(harness: Harness, attacker_keys: KeyPair) -> None:
    d = await diagnose(harness, issue={"keys": attacker_keys})
    assert d["error"] == "unknown_signing_certificate"
    assert "metadata" in d["hint"] and "rotated" in d["hint"]


async def test_assertion_not_signed(make_harness: Any) -> None:
    h = make_harness(want_assertions_signed=True)
    d = await diagnose(h, issue={"sign_assertion": False})
    assert d["error"] == "signature_missing" and "Assertion Signature" in d["hint"]


async def test_name_id_format_mismatch(harness: Harness) -> None:
    d = await diagnose(harness, name_id_format=X.NAMEID_PERSISTENT, name_id="00u1abcd")
    assert d["error"] == "name_id_format"
    assert "Name ID format" in d["hint"] and "emailAddress" in d["hint"]


async def test_groups_attribute_missing_with_authorized_groups(make_harness: Any) -> None:
    h = make_harness(authorized_groups=["admins"])
    d = await diagnose(h, attributes={"email": ["alice@example.com"]})
    assert d["error"] == "groups_missing" and d["status"] == 403
    assert "Group Attribute Statements" in d["hint"] and "'groups'" in d["hint"]


async def test_groups_attribute_not_required_without_authorized_groups(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    spec = harness.spec(in_response_to=request_id, attributes={"email": ["alice@example.com"]})
    assert (await harness.post_acs(harness.response_b64(spec), relay)).status_code == 303


async def test_idp_clock_ahead(harness: Harness) -> None:
    d = await diagnose(harness, now=harness.clock.datetime + timedelta(minutes=4))
    assert d["error"] == "not_yet_valid"
    assert "clock" in d["hint"] and "240 s in the future" in d["detail"]


async def test_idp_clock_behind(harness: Harness) -> None:
    d = await diagnose(harness, now=harness.clock.datetime - timedelta(minutes=10))
    assert d["error"] == "expired"
    assert "NTP" in d["hint"] and "expired 300 s ago" in d["detail"]


async def test_user_not_assigned_to_the_app(harness: Harness) -> None:
    d = await diagnose(
        harness,
        include_assertion=False,
        status_code="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_message="User is not assigned to this application",
    )
    assert d["error"] == "idp_denied" and d["status"] == 403
    assert "Assignments" in d["hint"]


async def test_base_url_does_not_match_the_browsers_address(harness: Harness) -> None:
    """The browser is on another ngrok URL than base_url: its sign-in cookie never comes back."""
    harness.client.cookies.clear()
    body = harness.response_b64(harness.spec(in_response_to="id-from-other-host"))
    r = await harness.client.post(
        "/saml/acs",
        data={"SAMLResponse": body},
        headers={"accept": "application/json", "x-forwarded-host": "other.ngrok.app"},
    )
    d = r.json()
    assert r.status_code == 400 and d["error"] == "base_url_mismatch"
    assert "base_url" in d["hint"] and "http://127.0.0.1:8000" in d["hint"]


async def test_sign_in_from_another_host_is_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    r = await harness.client.get(
        "/private/x", headers={"accept": "text/html", "x-forwarded-host": "old.ngrok.app"}
    )
    # base_url names a loopback port the browser did not use: a page, not a doomed redirect
    assert r.status_code == 400 and "<code>base_url_mismatch</code>" in r.text
    assert "base_url_mismatch" in caplog.text and "old.ngrok.app" in caplog.text
