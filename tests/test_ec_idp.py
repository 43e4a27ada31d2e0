"""An IdP that signs with an elliptic-curve key (ECDSA), through the real ACS.

The verifier takes the bare public key out of each metadata certificate; these tests prove
that this works for EC keys as well as RSA ones, and that KeyInfo still counts for nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.conftest import HarnessFactory
from tests.support import Harness, idp_metadata
from tests.test_acs_refusals import assert_refused

pytestmark = pytest.mark.anyio

CURVES: dict[str, ec.EllipticCurve] = {
    X.ECDSA_SHA256: ec.SECP256R1(),
    X.ECDSA_SHA384: ec.SECP384R1(),
    X.ECDSA_SHA512: ec.SECP521R1(),
}


def ec_keypair(algorithm: str, common_name: str = "EC IdP") -> KeyPair:
    return generate_keypair(common_name, key=ec.generate_private_key(CURVES[algorithm]))


async def ec_login(h: Harness, keys: KeyPair, algorithm: str, **issue: Any) -> httpx.Response:
    request_id, relay = await h.start_login()
    spec = h.spec(in_response_to=request_id)
    b64 = h.response_b64(spec, keys=keys, signature_algorithm=algorithm, **issue)
    return await h.post_acs(b64, relay)


@pytest.mark.parametrize("algorithm", list(CURVES))
async def test_ecdsa_signed_response_signs_in(make_harness: HarnessFactory, algorithm: str) -> None:
    keys = ec_keypair(algorithm)
    h: Harness = make_harness(idp_metadata=idp_metadata(keys))
    r = await ec_login(h, keys, algorithm)
    assert r.status_code == 303, r.text
    me = await h.client.get("/saml/session")
    assert me.status_code == 200 and me.json()["name_id"] == "alice@example.com"


async def test_ecdsa_assertion_only_signed_and_encrypted(make_harness: HarnessFactory) -> None:
    keys = ec_keypair(X.ECDSA_SHA256)
    h: Harness = make_harness(idp_metadata=idp_metadata(keys))
    r = await ec_login(h, keys, X.ECDSA_SHA256, sign_response=False, encrypt_to=h.sp_keys.cert_pem)
    assert r.status_code == 303, r.text


async def test_another_ec_key_naming_the_real_certificate_is_refused(
    make_harness: HarnessFactory,
) -> None:
    keys = ec_keypair(X.ECDSA_SHA256)
    forger = KeyPair(key_pem=ec_keypair(X.ECDSA_SHA256, "forger").key_pem, cert_pem=keys.cert_pem)
    h: Harness = make_harness(idp_metadata=idp_metadata(keys))
    assert_refused(await ec_login(h, forger, X.ECDSA_SHA256), "signature_invalid")
    assert (await h.client.get("/saml/session")).status_code == 401


async def test_rsa_signature_against_ec_metadata_is_refused(
    make_harness: HarnessFactory, idp_keys: KeyPair
) -> None:
    """The IdP's RSA key signs, but the metadata only trusts its EC key."""
    h: Harness = make_harness(idp_metadata=idp_metadata(ec_keypair(X.ECDSA_SHA256)))
    assert_refused(await ec_login(h, idp_keys, X.RSA_SHA256), "unknown_signing_certificate")
