"""Where signatures are checked: always with keys from the IdP's metadata, never from the message.

* :class:`SignatureChecker` — an enveloped XML signature on one element (a Response, an
  Assertion, a logout message posted with HTTP-POST): exactly one Reference to that element,
  the enveloped-signature and exclusive c14n transforms only, allowed algorithms only.

The HTTP-Redirect binding's signature over a query string is checked in
:mod:`saml_gate.saml.query_signature` (with cryptography, which the verification children do
not import: Responses are checked here with libxmlsec alone).
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.process_policy import forbid_xmlsec_fetches
from saml_gate.saml.xml import children, one_child
from saml_gate.saml.xml_libraries import xmlsec

_SIG_TRANSFORMS: Final = {
    X.RSA_SHA1: xmlsec.constants.TransformRsaSha1,
    X.RSA_SHA256: xmlsec.constants.TransformRsaSha256,
    X.RSA_SHA384: xmlsec.constants.TransformRsaSha384,
    X.RSA_SHA512: xmlsec.constants.TransformRsaSha512,
    X.ECDSA_SHA256: xmlsec.constants.TransformEcdsaSha256,
    X.ECDSA_SHA384: xmlsec.constants.TransformEcdsaSha384,
    X.ECDSA_SHA512: xmlsec.constants.TransformEcdsaSha512,
}
_DIGEST_TRANSFORMS: Final = {
    X.DIGEST_SHA1: xmlsec.constants.TransformSha1,
    X.DIGEST_SHA256: xmlsec.constants.TransformSha256,
    X.DIGEST_SHA384: xmlsec.constants.TransformSha384,
    X.DIGEST_SHA512: xmlsec.constants.TransformSha512,
}


def check_signature_placement(root: etree._Element, container: etree._Element) -> None:
    """Signatures may only be direct children of ``root`` or of ``container`` (the element read:
    the Assertion of a Response, or ``root`` itself)."""
    for signature in root.iter(X.T_SIGNATURE):
        if signature.getparent() not in (root, container):
            raise GateError("signature_structure", "a ds:Signature sits in an unexpected place")


class SignatureChecker:
    """Checks enveloped XML signatures with the IdP metadata's keys and the accepted algorithms."""

    def __init__(self, settings: GateSettings, idp: IdpInfo) -> None:
        forbid_xmlsec_fetches()
        self._keys = tuple(_public_key(spki) for spki in idp.signing_keys)
        self._known_certificates = frozenset(
            "".join(line for line in pem.decode().splitlines() if "CERTIFICATE" not in line)
            for pem in idp.signing_certs
        )
        self._sig_algs = frozenset(settings.accepted_signature_algorithms)
        self._digest_algs = frozenset(settings.digest_algorithms)

    def verify(self, element: etree._Element) -> bool:
        """False when the element carries no signature; True when valid; GateError otherwise."""
        signatures = children(element, X.T_SIGNATURE)
        if not signatures:
            return False
        if len(signatures) > 1:
            raise GateError("signature_structure", "more than one ds:Signature")
        signature = signatures[0]
        element_id = element.get("ID")
        if not element_id:
            raise GateError("signature_structure", "the signed element has no ID")
        signature_method, digest_method = self._check_shape(signature, element_id)
        # Register exactly the element we will read: with collect_ids off, no other ID exists.
        registrar = xmlsec.SignatureContext()
        try:
            registrar.register_id(element, "ID")
        except xmlsec.Error as exc:
            raise GateError("duplicate_id", "the signed element's ID is not unique") from exc
        for key in self._keys:
            ctx = xmlsec.SignatureContext()
            ctx.enable_signature_transform(xmlsec.constants.TransformExclC14N)
            ctx.enable_signature_transform(_SIG_TRANSFORMS[signature_method])
            ctx.enable_reference_transform(xmlsec.constants.TransformEnveloped)
            ctx.enable_reference_transform(xmlsec.constants.TransformExclC14N)
            ctx.enable_reference_transform(_DIGEST_TRANSFORMS[digest_method])
            ctx.key = key
            try:
                ctx.verify(signature)
            except xmlsec.Error:
                continue
            return True
        what = etree.QName(element).localname
        if self._signed_with_unknown_certificate(signature):
            raise GateError(
                "unknown_signing_certificate",
                f"the {what} was signed with a certificate that is not in the IdP metadata",
            )
        raise GateError(
            "signature_invalid",
            f"the {what} signature does not verify with any of the"
            f" {len(self._keys)} certificate(s) in the IdP metadata",
        )

    def _signed_with_unknown_certificate(self, signature: etree._Element) -> bool:
        """Diagnosis only (never trusted): does KeyInfo name a certificate the metadata lacks?"""
        named = {"".join((c.text or "").split()) for c in signature.iter(X.T_X509_CERTIFICATE)}
        return bool(named) and not named & self._known_certificates

    def _check_shape(self, signature: etree._Element, element_id: str) -> tuple[str, str]:
        """(signature method, digest method) of a signature shaped as this checker accepts."""
        if children(signature, X.T_OBJECT):
            raise GateError("signature_structure", "ds:Object is not allowed")
        signed_info = one_child(signature, X.T_SIGNED_INFO, "signature_structure", "SignedInfo")
        c14n = one_child(
            signed_info, X.T_C14N_METHOD, "signature_structure", "CanonicalizationMethod"
        )
        if c14n.get("Algorithm") != X.C14N_EXCL:
            raise GateError("algorithm_refused", f"canonicalization {c14n.get('Algorithm')!r}")
        method = one_child(
            signed_info, X.T_SIGNATURE_METHOD, "signature_structure", "SignatureMethod"
        )
        signature_method = method.get("Algorithm") or ""
        if signature_method not in self._sig_algs:
            raise GateError("algorithm_refused", f"signature method {signature_method!r}")
        reference = one_child(signed_info, X.T_REFERENCE, "signature_structure", "Reference")
        if reference.get("URI") != "#" + element_id:
            raise GateError(
                "signature_structure", "the Reference does not point at the signed element"
            )
        transforms_parent = children(reference, X.T_TRANSFORMS)
        algorithms = (
            [t.get("Algorithm") for t in transforms_parent[0] if t.tag == X.T_TRANSFORM]
            if len(transforms_parent) == 1
            else []
        )
        if (
            len(transforms_parent) != 1
            or len(transforms_parent[0]) != len(algorithms)
            or X.TRANSFORM_ENVELOPED not in algorithms
            or not set(algorithms) <= {X.TRANSFORM_ENVELOPED, X.C14N_EXCL}
            or len(algorithms) != len(set(algorithms))
        ):
            raise GateError(
                "signature_structure", "transforms must be enveloped-signature and exclusive c14n"
            )
        digest = one_child(reference, X.T_DIGEST_METHOD, "signature_structure", "DigestMethod")
        digest_method = digest.get("Algorithm") or ""
        if digest_method not in self._digest_algs:
            raise GateError("algorithm_refused", f"digest method {digest_method!r}")
        return signature_method, digest_method


def _public_key(spki_pem: bytes) -> xmlsec.Key:
    """A metadata certificate's bare public key (:attr:`IdpInfo.signing_keys`): libxmlsec
    copies the key into every signature context, and a key that carries its certificate costs
    about 70 microseconds more per signature to copy and use. Nothing about the certificate is
    checked at verification time anyway: trust comes from the metadata, not from X.509
    validation."""
    return xmlsec.Key.from_memory(spki_pem, xmlsec.constants.KeyDataFormatPem)
