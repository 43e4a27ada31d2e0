"""The attack generator's toolkit: golden responses, tree surgery, signing and encryption.

Everything here is ours. Golden responses come from the dev IdP's Okta-shaped builder
(:func:`build_response`, :func:`sign_element`, :func:`encrypt_assertion`); on top of that an
attacker (or a broken IdP) strips, clones, moves and edits elements, signs with unusual
references, transforms and algorithms (with the real IdP key, so only a semantic check can
catch the result), and encrypts chosen plaintext to the SP's public certificate.

Trees are re-parsed after every xmlsec operation: lxml's ``find``/``iter`` may miss nodes that
xmlsec's template helpers created, XPath (:func:`xp`) does not.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import xmlsec
from lxml import etree

from saml_gate.devidp.response import ResponseSpec, build_response, saml_instant
from saml_gate.devidp.signing import encrypt_assertion, sign_element
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from tests.support import ACS_URL, ENTITY_ID, IDP_ENTITY_ID

C = xmlsec.constants
NS: dict[str, str] = {
    "samlp": X.NS_SAMLP,
    "saml2": X.NS_SAML,
    "ds": X.NS_DS,
    "xenc": X.NS_XENC,
    "ec": X.C14N_EXCL,
}
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'

#: The attacker's own account at the IdP, and the victim the forgeries try to become.
ATTACKER = "alice@example.com"
VICTIM = "admin@example.com"
ATTRIBUTES: dict[str, list[str]] = {
    "email": [ATTACKER],
    "displayName": ["Alice Attacker"],
    "groups": ["users"],
}

# Algorithms the gate refuses (not in saml_gate.saml.xmlconst, which lists what is used).
C14N_INCL = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_EXCL_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH2 = "http://www.w3.org/2002/06/xmldsig-filter2"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
RSA_MD5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"
DSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#dsa-sha1"
DIGEST_MD5 = "http://www.w3.org/2001/04/xmldsig-more#md5"
HMAC_SHA1 = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"

_TRANSFORMS: dict[str, Any] = {
    X.C14N_EXCL: C.TransformExclC14N,
    C14N_EXCL_COMMENTS: C.TransformExclC14NWithComments,
    C14N_INCL: C.TransformInclC14N,
    C14N11: C.TransformInclC14N11,
    X.TRANSFORM_ENVELOPED: C.TransformEnveloped,
    XPATH: C.TransformXPath,
    XPATH2: C.TransformXPath2,
    XSLT: C.TransformXslt,
    X.RSA_SHA1: C.TransformRsaSha1,
    X.RSA_SHA256: C.TransformRsaSha256,
    RSA_MD5: C.TransformRsaMd5,
    HMAC_SHA1: C.TransformHmacSha1,
    HMAC_SHA256: C.TransformHmacSha256,
    X.DIGEST_SHA1: C.TransformSha1,
    X.DIGEST_SHA256: C.TransformSha256,
    DIGEST_MD5: C.TransformMd5,
}
STANDARD_TRANSFORMS: tuple[str, ...] = (X.TRANSFORM_ENVELOPED, X.C14N_EXCL)


def q(ns_prefix: str, local: str) -> str:
    return f"{{{NS[ns_prefix]}}}{local}"


def xp(node: etree._Element, path: str) -> list[etree._Element]:
    found = node.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    return [item for item in found if isinstance(item, etree._Element)]


def one(node: etree._Element, path: str) -> etree._Element:
    found = xp(node, path)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    return found[0]


def reparse(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def serialize(element: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(element, encoding="UTF-8", xml_declaration=False)


def assertion_of(response: etree._Element) -> etree._Element:
    return one(response, "saml2:Assertion")


def signature_of(element: etree._Element) -> etree._Element:
    return one(element, "ds:Signature")


def strip_signature(element: etree._Element) -> etree._Element:
    """Remove the element's own enveloped signature (not those of descendants)."""
    for signature in xp(element, "ds:Signature"):
        element.remove(signature)
    return element


def set_name_id(assertion: etree._Element, value: str) -> etree._Element:
    one(assertion, "saml2:Subject/saml2:NameID").text = value
    return assertion


def make_evil(assertion: etree._Element) -> etree._Element:
    """The attacker's edit: become the victim, and an admin."""
    set_name_id(assertion, VICTIM)
    for value in xp(assertion, ".//saml2:Attribute[@Name='email']/saml2:AttributeValue"):
        value.text = VICTIM
    for value in xp(assertion, ".//saml2:Attribute[@Name='groups']/saml2:AttributeValue"):
        value.text = "admins"
    return assertion


def insert_after_issuer(parent: etree._Element, child: etree._Element) -> None:
    """Where the schema puts Signature/Extensions: right after Issuer (and its Signature)."""
    anchor = xp(parent, "ds:Signature") or xp(parent, "saml2:Issuer")
    if anchor:
        anchor[-1].addnext(child)
    else:
        parent.insert(0, child)


class Mode(enum.Enum):
    """How the golden response is signed (all three occur at Okta)."""

    AS = "assertion-signed"
    RS = "response-signed"
    BS = "both-signed"

    @property
    def signs_assertion(self) -> bool:
        return self is not Mode.RS

    @property
    def signs_response(self) -> bool:
        return self is not Mode.AS

    @property
    def slug(self) -> str:
        return self.name.lower()


# ------------------------------------------------------------------------------------ signing
@dataclass(frozen=True)
class Signer:
    """An XML signature as someone might make it: by default exactly what Okta makes."""

    key: KeyPair | bytes
    """An RSA key pair, or raw bytes used as an HMAC key."""
    signature_method: str = X.RSA_SHA256
    digest_method: str = X.DIGEST_SHA256
    c14n: str = X.C14N_EXCL
    transforms: tuple[str, ...] = STANDARD_TRANSFORMS
    uri: str | None = None
    """The Reference URI; None means ``#`` + the signed element's ID."""
    extra_uris: tuple[str, ...] = ()
    """Further References in the same SignedInfo."""
    inclusive_prefixes: tuple[str, ...] = ()
    key_info: bool = True
    """Put the signing certificate in KeyInfo (as Okta does)."""

    def is_standard(self) -> bool:
        return (
            isinstance(self.key, KeyPair)
            and self.signature_method in (X.RSA_SHA1, X.RSA_SHA256)
            and self.digest_method in (X.DIGEST_SHA1, X.DIGEST_SHA256)
            and (self.c14n, self.transforms, self.uri, self.extra_uris)
            == (X.C14N_EXCL, STANDARD_TRANSFORMS, None, ())
            and self.key_info
        )


def _transform_child(transform: etree._Element, algorithm: str) -> None:
    """The parameters some transforms need."""
    if algorithm == XPATH:
        etree.SubElement(transform, q("ds", "XPath")).text = "not(ancestor-or-self::ds:Signature)"
    elif algorithm == XPATH2:
        etree.SubElement(
            transform, f"{{{XPATH2}}}XPath", Filter="subtract"
        ).text = "//*[local-name()='Signature']"
    elif algorithm == XSLT:
        transform.append(
            etree.fromstring(
                b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
                b'<xsl:template match="/"><xsl:copy-of select="."/></xsl:template>'
                b"</xsl:stylesheet>"
            )
        )


def sign(
    element: etree._Element,
    signer: Signer,
    *,
    register: Sequence[etree._Element] = (),
    place: Callable[[etree._Element], None] | None = None,
) -> None:
    """Sign ``element`` in place with an enveloped signature shaped by ``signer``.

    ``register`` lists further elements whose ``ID`` a Reference may point at; ``place`` puts
    the new ``ds:Signature`` somewhere else than right after the element's Issuer.
    """
    if signer.is_standard() and place is None and not register:
        assert isinstance(signer.key, KeyPair)
        sign_element(
            element,
            signer.key,
            signature_algorithm=signer.signature_method,
            digest_algorithm=signer.digest_method,
            inclusive_prefixes=signer.inclusive_prefixes,
        )
        return
    signature = xmlsec.template.create(
        element, _TRANSFORMS[signer.c14n], _TRANSFORMS[signer.signature_method], ns="ds"
    )
    if place is not None:
        place(signature)
    else:
        insert_after_issuer(element, signature)
    element_id = element.get("ID") or ""
    for uri in (signer.uri if signer.uri is not None else "#" + element_id, *signer.extra_uris):
        reference = xmlsec.template.add_reference(
            signature, _TRANSFORMS[signer.digest_method], uri=uri
        )
        for algorithm in signer.transforms:
            _transform_child(
                xmlsec.template.add_transform(reference, _TRANSFORMS[algorithm]), algorithm
            )
    ctx = xmlsec.SignatureContext()
    for node in (element, *register):
        if node.get("ID"):
            ctx.register_id(node, "ID")
    if isinstance(signer.key, bytes):
        ctx.key = xmlsec.Key.from_binary_data(C.KeyDataHmac, signer.key)
    else:
        if signer.key_info:
            key_info = xmlsec.template.ensure_key_info(signature)
            xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
        key = xmlsec.Key.from_memory(signer.key.key_pem, C.KeyDataFormatPem)
        key.load_cert_from_memory(signer.key.cert_pem, C.KeyDataFormatCertPem)
        ctx.key = key
    ctx.sign(signature)


def sign_mode(
    response: etree._Element, mode: Mode, signer: Signer, assertion_signer: Signer | None = None
) -> etree._Element:
    """Sign the Assertion and/or the Response as ``mode`` says (assertion first, as Okta)."""
    assertions = xp(response, "saml2:Assertion")
    if mode.signs_assertion:
        for assertion in assertions:
            sign(assertion, assertion_signer or replace(signer, inclusive_prefixes=("xs",)))
    if mode.signs_response:
        sign(response, signer)
    return reparse(response)


def resign(response: etree._Element, mode: Mode, signer: Signer) -> etree._Element:
    """Drop the signatures of the Response and its assertions, then sign again."""
    strip_signature(response)
    for assertion in xp(response, "saml2:Assertion"):
        strip_signature(assertion)
    return sign_mode(response, mode, signer)


# ------------------------------------------------------------------------------------ encryption
_DATA = {
    X.AES128_CBC: (C.TransformAes128Cbc, 128),
    X.AES256_CBC: (C.TransformAes256Cbc, 256),
    X.AES128_GCM: (C.TransformAes128Gcm, 128),
}


def encrypt_plaintext(
    response: etree._Element,
    plaintext: bytes,
    cert_pem: bytes,
    *,
    data_algorithm: str = X.AES256_CBC,
) -> etree._Element:
    """Append an EncryptedAssertion holding ``plaintext`` (anything) encrypted to ``cert_pem``."""
    transform, bits = _DATA[data_algorithm]
    wrapper = etree.SubElement(response, q("saml2", "EncryptedAssertion"))
    enc_data = xmlsec.template.encrypted_data_create(
        response, transform, type=X.ENC_TYPE_ELEMENT, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, C.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(cert_pem, C.KeyDataFormatCertPem))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(C.KeyDataAes, bits, C.KeyDataTypeSession)
    wrapper.append(ctx.encrypt_binary(enc_data, plaintext))
    return reparse(response)


# ------------------------------------------------------------------------------------ context
@dataclass(frozen=True)
class Context:
    """Everything a case needs to build its message."""

    idp: KeyPair
    sp: KeyPair
    attacker: KeyPair
    other_idp: KeyPair
    """A second IdP that is trusted for *another* entity ID in the same metadata (case 20b)."""
    request_id: str
    """The AuthnRequest ID the Response answers (InResponseTo)."""
    now: datetime
    canary: str
    """``http://127.0.0.1:<port>``: a loopback listener that counts connections (no fetch)."""

    @property
    def signer(self) -> Signer:
        return Signer(self.idp)

    def spec(self, **overrides: Any) -> ResponseSpec:
        fields: dict[str, Any] = dict(
            issuer=IDP_ENTITY_ID,
            destination=ACS_URL,
            audience=ENTITY_ID,
            name_id=ATTACKER,
            attributes=ATTRIBUTES,
            in_response_to=self.request_id,
            now=self.now,
        )
        fields.update(overrides)
        return ResponseSpec(**fields)

    def tree(self, **overrides: Any) -> etree._Element:
        """The unsigned golden Response."""
        return reparse(build_response(self.spec(**overrides)))

    def golden(self, mode: Mode, **overrides: Any) -> etree._Element:
        return sign_mode(self.tree(**overrides), mode, self.signer)

    def golden_xml(self, mode: Mode, **overrides: Any) -> bytes:
        return serialize(self.golden(mode, **overrides))

    def encrypted(
        self,
        mode: Mode,
        *,
        data_algorithm: str = X.AES256_CBC,
        key_transport: str = X.RSA_OAEP_MGF1P,
        **overrides: Any,
    ) -> etree._Element:
        """Okta's layout: sign the assertion, encrypt it, then sign the Response."""
        response = self.tree(**overrides)
        if mode.signs_assertion:
            sign(assertion_of(response), replace(self.signer, inclusive_prefixes=("xs",)))
        encrypt_assertion(
            response,
            self.sp.cert_pem,
            data_algorithm=data_algorithm,
            key_transport=key_transport,
            okta_retrieval_method=True,
        )
        if mode.signs_response:
            sign(response, self.signer)
        return reparse(response)

    def instant(self, seconds: float) -> str:
        """``now`` + ``seconds`` written as Okta writes instants."""
        return saml_instant(self.now + timedelta(seconds=seconds))


def clone(element: etree._Element) -> etree._Element:
    return copy.deepcopy(element)
