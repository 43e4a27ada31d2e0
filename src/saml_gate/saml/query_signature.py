"""The HTTP-Redirect binding's signature over the query string as received (logout messages),
always with keys from the IdP's metadata. Apart from :mod:`saml_gate.saml.dsig` because it needs
cryptography, which a verification child imports only for a logout message."""

from __future__ import annotations

import base64
import binascii
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo

_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    X.RSA_SHA1: hashes.SHA1(),  # noqa: S303 - only when allow_sha1 puts it in the accepted list
    X.RSA_SHA256: hashes.SHA256(),
    X.RSA_SHA384: hashes.SHA384(),
    X.RSA_SHA512: hashes.SHA512(),
    X.ECDSA_SHA256: hashes.SHA256(),
    X.ECDSA_SHA384: hashes.SHA384(),
    X.ECDSA_SHA512: hashes.SHA512(),
}


class QuerySignatureChecker:
    """Checks an HTTP-Redirect binding's ``Signature`` over the signed part of the query."""

    def __init__(self, settings: GateSettings, idp: IdpInfo) -> None:
        self._sig_algs = frozenset(settings.accepted_signature_algorithms)
        self._public_keys = tuple(
            x509.load_pem_x509_certificate(pem).public_key() for pem in idp.signing_certs
        )

    def verify(self, signed: bytes, algorithm: str, signature_b64: str) -> None:
        """Return when ``signature_b64`` (the ``SigAlg`` ``algorithm``) signs ``signed`` with a
        metadata key; GateError ``slo_signature`` otherwise."""
        if algorithm not in self._sig_algs:
            raise GateError("slo_signature", f"signature algorithm {algorithm!r} is not accepted")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GateError("slo_signature", "the Signature is not base64") from exc
        digest = _HASHES[algorithm]
        for key in self._public_keys:
            try:
                if isinstance(key, rsa.RSAPublicKey) and "rsa-" in algorithm:
                    key.verify(signature, signed, padding.PKCS1v15(), digest)
                    return
                if isinstance(key, ec.EllipticCurvePublicKey) and "ecdsa-" in algorithm:
                    key.verify(_ecdsa_der(signature, key), signed, ec.ECDSA(digest))
                    return
            except (InvalidSignature, ValueError):
                continue
        raise GateError(
            "slo_signature",
            f"the query signature does not verify with any of the {len(self._public_keys)}"
            " certificate(s) in the IdP metadata",
        )


def _ecdsa_der(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """XML-DSig ECDSA signatures are r‖s; cryptography verifies DER."""
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return signature
    return encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
