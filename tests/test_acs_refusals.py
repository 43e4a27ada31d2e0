"""Basic refusals at the ACS: each one a 4xx with a stable code, no session, no redirect.

The full attack catalogue lives in tests/security/; these are the everyday failures.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree

from saml_gate.devidp.response import build_response
from saml_gate.devidp.signing import sign_element
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from tests.support import Harness

pytestmark = pytest.mark.anyio


def assert_refused(r: Any, code: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    assert f"<code>{code}</code>" in r.text or (
        r.headers.get("content-type", "").startswith("application/json")
        and r.json()["error"] == code
    )
    assert "saml_gate_session" not in r.headers.get("set-cookie", "")
    assert "location" not in r.headers


async def refused_login(
    h: Harness, code: str, status: int = 400, *, issue: dict[str, Any] | None = None, **spec: Any
) -> None:
    request_id, relay = await h.start_login()
    spec.setdefault("in_response_to", request_id)
    r = await h.post_acs(h.response_b64(h.spec(**spec), **(issue or {})), relay)
    assert_refused(r, code, status)
    assert (await h.client.get("/saml/session")).status_code == 401


async def test_unsigned_response_is_refused(harness: Harness) -> None:
    await refused_login(
        harness, "signature_missing", issue={"sign_response": False, "sign_assertion": False}
    )


async def test_signed_with_another_key_is_refused(harness: Harness, attacker_keys: KeyPair) -> None:
    await refused_login(harness, "unknown_signing_certificate", issue={"keys": attacker_keys})


async def test_signed_with_another_key_naming_the_real_certificate(
    harness: Harness, attacker_keys: KeyPair
) -> None:
    """KeyInfo is never trusted: naming the IdP's certificate does not help a forger."""
    forger = KeyPair(key_pem=attacker_keys.key_pem, cert_pem=harness.idp_keys.cert_pem)
    await refused_login(harness, "signature_invalid", issue={"keys": forger})


async def test_tampered_after_signing_is_refused(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    xml = base64.b64decode(harness.response_b64(harness.spec(in_response_to=request_id)))
    tampered = xml.replace(
        b"alice@example.com</saml2:NameID>", b"mallory@example.com</saml2:NameID>"
    )
    assert tampered != xml
    r = await harness.post_acs(base64.b64encode(tampered).decode(), relay)
    assert_refused(r, "signature_invalid")


async def test_expired_assertion_is_refused(harness: Harness) -> None:
    harness.clock.advance(0)
    await refused_login(harness, "expired", now=harness.clock.datetime - timedelta(minutes=20))


async def test_future_assertion_is_refused(harness: Harness) -> None:
    await refused_login(
        harness, "not_yet_valid", now=harness.clock.datetime + timedelta(minutes=10)
    )


@pytest.mark.parametrize("offset,accepted", [(-389, True), (-391, False)])
async def test_clock_skew_boundary(harness: Harness, offset: int, accepted: bool) -> None:
    """Lifetime 5 min + 90 s skew: 389 s old is still fine, 391 s is not."""
    request_id, relay = await harness.start_login()
    spec = harness.spec(
        in_response_to=request_id, now=harness.clock.datetime + timedelta(seconds=offset)
    )
    r = await harness.post_acs(harness.response_b64(spec), relay)
    assert (r.status_code == 303) is accepted, r.text


async def test_configurable_clock_skew(make_harness: Any) -> None:
    h = make_harness(clock_skew=600)
    request_id, relay = await h.start_login()
    spec = h.spec(in_response_to=request_id, now=h.clock.datetime - timedelta(minutes=14))
    assert (await h.post_acs(h.response_b64(spec), relay)).status_code == 303


async def test_wrong_audience_is_refused(harness: Harness) -> None:
    await refused_login(harness, "wrong_audience", audience="https://other-sp.example")


async def test_wrong_recipient_is_refused(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    tree = build_response(harness.spec(in_response_to=request_id))
    for scd in tree.iter(f"{{{X.NS_SAML}}}SubjectConfirmationData"):
        scd.set("Recipient", "https://other.example/saml/acs")
    assertion = tree.find(f"{{{X.NS_SAML}}}Assertion")
    sign_element(assertion, harness.idp_keys)
    sign_element(tree, harness.idp_keys)
    r = await harness.post_acs(base64.b64encode(etree.tostring(tree)).decode(), relay)
    assert_refused(r, "wrong_recipient")


async def test_wrong_destination_is_refused(harness: Harness) -> None:
    await refused_login(harness, "wrong_destination", destination="https://other.example/saml/acs")


async def test_wrong_issuer_is_refused(harness: Harness) -> None:
    await refused_login(harness, "wrong_issuer", issuer="http://www.okta.com/exkSOMEONEELSE")


async def test_replayed_response_is_refused(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    body = harness.response_b64(harness.spec(in_response_to=request_id))
    first = await harness.post_acs(body, relay)
    assert first.status_code == 303
    harness.client.cookies.clear()
    # Even from a browser that holds a matching pending request, the same assertion is refused.
    _, relay2 = await harness.start_login()
    assert_refused(await harness.post_acs(body, relay2), "unknown_request")
    header = harness.gate.core.relay.pending_cookie("x", request_id, "/").decode()
    name, value = header.split(";")[0].split("=", 1)
    harness.client.cookies.set(name, value, path="/saml/acs")
    assert_refused(await harness.post_acs(body), "replayed")


async def test_unsolicited_refused_when_idp_initiated_is_off(harness: Harness) -> None:
    r = await harness.post_acs(harness.response_b64(harness.spec(in_response_to=None)))
    assert_refused(r, "unsolicited")


async def test_unsolicited_accepted_when_allowed(make_harness: Any) -> None:
    h = make_harness(allow_idp_initiated=True)
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=None)), "/private/tile")
    assert r.status_code == 303 and r.headers["location"] == "/private/tile"


@pytest.mark.parametrize(
    "relay", ["https://evil.example/", "//evil.example", "/\\evil", "/%2F%2Fevil"]
)
async def test_unsolicited_open_redirect_relay_state_is_refused(
    make_harness: Any, relay: str
) -> None:
    h = make_harness(allow_idp_initiated=True)
    r = await h.post_acs(h.response_b64(h.spec(in_response_to=None)), relay)
    assert_refused(r, "bad_relay_state")


async def test_response_for_another_browsers_request_is_refused(harness: Harness) -> None:
    """A Response obtained for someone else's AuthnRequest cannot be used in this browser."""
    request_id, _ = await harness.start_login()
    harness.client.cookies.clear()
    _, my_relay = await harness.start_login()
    r = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=request_id)), my_relay
    )
    assert_refused(r, "unknown_request")


async def test_unknown_in_response_to_is_refused_even_with_idp_initiated(make_harness: Any) -> None:
    h = make_harness(allow_idp_initiated=True)
    await h.start_login()
    r = await h.post_acs(h.response_b64(h.spec(in_response_to="id-not-ours")))
    assert_refused(r, "unknown_request")


async def test_relay_state_of_another_sign_in_is_refused(harness: Harness) -> None:
    first_id, _ = await harness.start_login()
    _, second_relay = await harness.start_login()
    r = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=first_id)), second_relay
    )
    assert_refused(r, "bad_relay_state")


async def test_two_tabs_can_sign_in_concurrently(harness: Harness) -> None:
    first_id, first_relay = await harness.start_login("/private/one")
    second_id, second_relay = await harness.start_login("/private/two")
    r2 = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=second_id)), second_relay
    )
    assert r2.headers["location"] == "/private/two"
    r1 = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=first_id)), first_relay
    )
    assert r1.headers["location"] == "/private/one"


async def test_idp_error_status_is_explained(harness: Harness) -> None:
    await refused_login(
        harness,
        "idp_status",
        403,
        status_code="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_message="Authentication failed",
        include_assertion=False,
    )


async def test_sha1_signature_is_refused_by_default(harness: Harness) -> None:
    await refused_login(
        harness,
        "algorithm_refused",
        issue={"signature_algorithm": X.RSA_SHA1, "digest_algorithm": X.DIGEST_SHA1},
    )


async def test_want_assertions_signed_requires_an_assertion_signature(make_harness: Any) -> None:
    h = make_harness(want_assertions_signed=True)
    await refused_login(h, "signature_missing", issue={"sign_assertion": False})


async def test_want_response_signed_requires_a_response_signature(make_harness: Any) -> None:
    h = make_harness(want_response_signed=True)
    await refused_login(h, "signature_missing", issue={"sign_response": False})


@pytest.mark.parametrize("signed", [{"sign_response": False}, {"sign_assertion": False}, {}])
async def test_each_signing_mode_is_accepted(harness: Harness, signed: dict[str, bool]) -> None:
    request_id, relay = await harness.start_login()
    r = await harness.post_acs(
        harness.response_b64(harness.spec(in_response_to=request_id), **signed), relay
    )
    assert r.status_code == 303, r.text


async def test_encrypted_assertion_is_accepted(harness: Harness) -> None:
    for layout in ({}, {"okta_retrieval_method": True}, {"data_algorithm": X.AES128_GCM}):
        harness.client.cookies.clear()
        request_id, relay = await harness.start_login()
        body = harness.response_b64(
            harness.spec(in_response_to=request_id), encrypt_to=harness.sp_keys.cert_pem, **layout
        )
        r = await harness.post_acs(body, relay)
        assert r.status_code == 303, (layout, r.text)


async def test_rsa_1_5_key_transport_is_refused(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    from saml_gate.devidp.signing import encrypt_assertion

    tree = build_response(harness.spec(in_response_to=request_id))
    sign_element(tree.find(f"{{{X.NS_SAML}}}Assertion"), harness.idp_keys)
    encrypt_assertion(tree, harness.sp_keys.cert_pem, key_transport=X.RSA_1_5)
    sign_element(tree, harness.idp_keys)
    r = await harness.post_acs(base64.b64encode(etree.tostring(tree)).decode(), relay)
    assert_refused(r, "algorithm_refused")


async def test_garbage_and_oversized_posts_are_4xx(harness: Harness) -> None:
    assert_refused(await harness.post_acs("not base64!!"), "malformed_response")
    assert_refused(await harness.post_acs(base64.b64encode(b"<a>").decode()), "malformed_response")
    assert_refused(await harness.post_acs(base64.b64encode(b"<x/>").decode()), "not_a_response")
    big = base64.b64encode(b"<a>" + b"x" * 400_000 + b"</a>").decode()
    r = await harness.post_acs(big)
    assert r.status_code == 413
    r = await harness.client.post("/saml/acs", data={"RelayState": "/"})
    assert_refused(r, "missing_saml_response")
    r = await harness.client.get("/saml/acs")
    assert r.status_code == 405
    r = await harness.client.post(
        "/saml/acs", content=b"{}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


async def test_doctype_is_refused(harness: Harness) -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>'
    assert_refused(await harness.post_acs(base64.b64encode(xml).decode()), "forbidden_xml")


async def test_details_hidden_from_remote_clients(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    body = harness.response_b64(
        harness.spec(in_response_to=request_id, audience="https://other-sp.example")
    )
    r = await harness.client.post(
        "/saml/acs",
        data={"SAMLResponse": body, "RelayState": relay},
        headers={"x-forwarded-for": "203.0.113.9"},
    )
    assert r.status_code == 400 and "wrong_audience" in r.text
    assert "https://other-sp.example" not in r.text
    request_id, relay = await harness.start_login()
    body = harness.response_b64(
        harness.spec(in_response_to=request_id, audience="https://other-sp.example")
    )
    local = await harness.post_acs(body, relay)
    assert (
        "https://other-sp.example" in local.text
    )  # loopback client: the detail helps the operator
