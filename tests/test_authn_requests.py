"""The gate's AuthnRequests (built without pysaml2, :mod:`saml_gate.saml.outgoing`), read by
pysaml2's own IdP, code nobody on this project wrote: it parses the request as the gate sent it
through its real redirect and checks the HTTP-Redirect signature with the certificate in the
gate's SP metadata."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.response import IncorrectlySigned

from saml_gate.saml.keys import KeyPair
from tests.support import ACS_URL, ENTITY_ID, IDP_SSO_URL, Harness
from tests.test_logout import Pysaml2Idp, query_of, redirect_signature

pytestmark = pytest.mark.anyio


async def gate_and_idp(
    make_harness: Any, idp_keys: KeyPair, tmp_path: Path, **settings: Any
) -> tuple[Harness, Pysaml2Idp]:
    bootstrap = Pysaml2Idp(idp_keys, tmp_path / "idp0")
    h: Harness = make_harness(idp_metadata=bootstrap.metadata, **settings)
    h.clock.now = time.time()  # pysaml2 checks IssueInstant against the real time
    await h.gate.start()
    return h, Pysaml2Idp(idp_keys, tmp_path / "idp", h.gate.core.saml.sp.metadata_xml.decode())


def read(idp: Pysaml2Idp, query: dict[str, str]) -> Any:
    return idp.server.parse_authn_request(
        query["SAMLRequest"], BINDING_HTTP_REDIRECT, **redirect_signature(query)
    )


@pytest.mark.parametrize("isolation", ["process", "thread"])
async def test_pysaml2s_idp_reads_and_checks_the_signed_authn_request(
    make_harness: Any, idp_keys: KeyPair, tmp_path: Path, isolation: str
) -> None:
    h, idp = await gate_and_idp(make_harness, idp_keys, tmp_path, verify_isolation=isolation)
    r = await h.client.get("/private/page?x=1", headers={"accept": "text/html"})
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(IDP_SSO_URL + "?SAMLRequest=")
    query = query_of(location)
    assert query["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    request = read(idp, query).message  # the signature checked with the SP metadata's certificate
    assert request.issuer.text == ENTITY_ID
    assert request.destination == IDP_SSO_URL
    assert request.assertion_consumer_service_url == ACS_URL
    assert request.protocol_binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    assert request.name_id_policy.format == h.gate.settings.name_id_format
    assert request.name_id_policy.allow_create == "true"
    assert request.version == "2.0" and request.force_authn is None and request.is_passive is None
    # The request ID is the one the browser's pending sign-in holds: its Response completes it.
    signed_in = await h.post_acs(
        h.response_b64(h.spec(in_response_to=request.id)), query["RelayState"]
    )
    assert signed_in.status_code == 303, signed_in.text

    tampered = dict(query, RelayState=query["RelayState"] + "x")
    with pytest.raises(IncorrectlySigned):
        read(idp, tampered)


async def test_force_authn_is_asked_for_when_configured(
    make_harness: Any, idp_keys: KeyPair, tmp_path: Path
) -> None:
    h, idp = await gate_and_idp(make_harness, idp_keys, tmp_path, force_authn=True)
    r = await h.client.get("/private/page", headers={"accept": "text/html"})
    request = read(idp, query_of(r.headers["location"])).message
    assert request.force_authn == "true" and request.is_passive is None
