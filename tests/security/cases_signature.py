"""Catalogue A.1: signature presence, coverage and SignedInfo structure (cases 1-22)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from lxml import etree

from saml_gate.devidp.response import new_id
from saml_gate.saml import xmlconst as X
from tests.security.corpus import OTHER_IDP_ENTITY_ID, Build, Policy, Registry
from tests.security.forge import (
    BASE64,
    C14N11,
    C14N_EXCL_COMMENTS,
    C14N_INCL,
    DIGEST_MD5,
    DSA_SHA1,
    HMAC_SHA1,
    HMAC_SHA256,
    RSA_MD5,
    VICTIM,
    XPATH,
    XPATH2,
    XSLT,
    Context,
    Mode,
    Signer,
    assertion_of,
    clone,
    insert_after_issuer,
    make_evil,
    one,
    q,
    reparse,
    serialize,
    sign,
    sign_mode,
    signature_of,
    strip_signature,
    xp,
)

R = Registry()
Edit = Callable[[etree._Element], None]
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS


def swap(xml: bytes, old: bytes, new: bytes) -> bytes:
    assert old in xml, old
    return xml.replace(old, new, 1)


def c14n_digest(element: etree._Element) -> str:
    """base64(SHA-256(exclusive c14n of the element without its own signature))."""
    canonical = etree.tostring(strip_signature(clone(element)), method="c14n", exclusive=True)
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode()


def cert_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


# ------------------------------------------------------------------------------------ 1-5
@R.add(
    "01",
    "strip-all-signatures",
    "Both signatures removed, NameID changed",
    codes=("signature_missing",),
    mode=BS,
)
def strip_all(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    assertion = assertion_of(response)
    strip_signature(response)
    strip_signature(assertion)
    make_evil(assertion)
    return serialize(response)


@R.add(
    "02",
    "strip-response-signature-want-response-signed",
    "Response signature removed, Assertion signature kept, want_response_signed",
    codes=("signature_missing",),
    mode=BS,
    policy=Policy(want_response_signed=True),
)
def strip_response_signature(ctx: Context) -> bytes:
    return serialize(strip_signature(ctx.golden(BS)))


@R.add(
    "02",
    "strip-response-signature-want-both",
    "Response signature removed under want_response_signed + want_assertions_signed",
    codes=("signature_missing",),
    mode=BS,
    policy=Policy(want_response_signed=True, want_assertions_signed=True),
)
def strip_response_signature_both(ctx: Context) -> bytes:
    return serialize(strip_signature(ctx.golden(BS)))


@R.add(
    "03",
    "strip-assertion-signature-response-kept",
    "Assertion signature removed inside a signed Response (digest breaks)",
    codes=("signature_invalid",),
    mode=BS,
)
def strip_assertion_signature(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    strip_signature(assertion_of(response))
    return serialize(response)


@R.add(
    "03",
    "unsigned-assertion-want-assertions-signed",
    "Only the Response is signed, want_assertions_signed",
    codes=("signature_missing",),
    mode=RS,
    policy=Policy(want_assertions_signed=True),
)
def unsigned_assertion(ctx: Context) -> bytes:
    return ctx.golden_xml(RS)


def _tamper(mode: Mode, old: bytes, new: bytes) -> Build:
    def build(ctx: Context) -> bytes:
        return swap(ctx.golden_xml(mode), old, new)

    return build


for _mode in (AS, RS, BS):
    R.case(
        "04",
        f"tamper-name-id-{_mode.slug}",
        f"One NameID byte changed after signing ({_mode.value})",
        _tamper(_mode, b"alice@example.com</saml2:NameID>", b"alicf@example.com</saml2:NameID>"),
        codes=("signature_invalid",),
        mode=_mode,
    )
R.case(
    "04",
    "tamper-attribute-as",
    "A group value changed after signing",
    _tamper(AS, b'xs:string">users<', b'xs:string">admin<'),
    codes=("signature_invalid",),
    mode=AS,
)


@R.add(
    "04",
    "tamper-not-on-or-after-bs",
    "Conditions NotOnOrAfter extended after signing",
    codes=("signature_invalid",),
    mode=BS,
)
def tamper_not_on_or_after(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    one(response, ".//saml2:Conditions").set("NotOnOrAfter", ctx.instant(86400))
    return serialize(response)


@R.add(
    "04",
    "tamper-issue-instant-rs",
    "Response IssueInstant moved by one second after signing",
    codes=("signature_invalid",),
    mode=RS,
)
def tamper_issue_instant(ctx: Context) -> bytes:
    response = ctx.golden(RS)
    response.set("IssueInstant", ctx.instant(1))
    return serialize(response)


def _malform(edit: Edit, mode: Mode = BS) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(mode)
        edit(signature_of(response))
        return serialize(response)

    return build


def _set_text(path: str, text: str) -> Edit:
    def edit(signature: etree._Element) -> None:
        one(signature, path).text = text

    return edit


def _remove(path: str) -> Edit:
    def edit(signature: etree._Element) -> None:
        node = one(signature, path)
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)

    return edit


for _slug, _title, _edit, _codes in (
    (
        "empty-signature-value",
        "Empty SignatureValue",
        _set_text("ds:SignatureValue", ""),
        ("signature_invalid",),
    ),
    (
        "empty-digest-value",
        "Empty DigestValue",
        _set_text(".//ds:DigestValue", ""),
        ("signature_invalid",),
    ),
    (
        "garbage-digest-value",
        "Garbage DigestValue",
        _set_text(".//ds:DigestValue", "AAAA"),
        ("signature_invalid",),
    ),
    ("signed-info-removed", "SignedInfo removed", _remove("ds:SignedInfo"), ("schema_invalid",)),
    (
        "transforms-removed",
        "Transforms removed",
        _remove(".//ds:Transforms"),
        ("signature_structure",),
    ),
):
    R.case("05", _slug, _title, _malform(_edit), codes=_codes, mode=BS)


# ------------------------------------------------------------------------------------ 6-9
@R.add(
    "06",
    "reference-uri-empty",
    'Response signature with Reference URI="" (whole document), re-signed',
    codes=("signature_structure",),
    mode=RS,
)
def reference_empty(ctx: Context) -> bytes:
    response = ctx.tree()
    sign(response, Signer(ctx.idp, uri=""))
    return serialize(reparse(response))


@R.add(
    "06",
    "assertion-signature-references-response",
    "Signature inside the Assertion with URI=#<Response ID>, re-signed",
    codes=("signature_structure",),
    mode=AS,
)
def reference_to_response(ctx: Context) -> bytes:
    response = ctx.tree()
    assertion = assertion_of(response)
    sign(assertion, Signer(ctx.idp, uri="#" + (response.get("ID") or "")), register=[response])
    make_evil(assertion)  # covered by nothing now: the signature digests the Response
    return serialize(reparse(response))


@R.add(
    "06",
    "response-signature-references-assertion",
    "Signature of the Response with URI=#<Assertion ID>, re-signed",
    codes=("signature_structure",),
    mode=RS,
)
def reference_to_assertion(ctx: Context) -> bytes:
    response = ctx.tree()
    sign(
        response,
        Signer(ctx.idp, uri="#" + (assertion_of(response).get("ID") or "")),
        register=[assertion_of(response)],
    )
    return serialize(reparse(response))


@R.add(
    "06",
    "reference-to-conditions",
    "Assertion signature referencing an ID given to Conditions, re-signed",
    codes=("schema_invalid",),
    mode=AS,
)
def reference_to_conditions(ctx: Context) -> bytes:
    response = ctx.tree()
    assertion = assertion_of(response)
    conditions = one(assertion, "saml2:Conditions")
    conditions.set("ID", "conditions1")
    sign(assertion, Signer(ctx.idp, uri="#conditions1"), register=[conditions])
    make_evil(assertion)
    return serialize(reparse(response))


@R.add(
    "06", "reference-uri-hash-only", 'Reference URI="#"', codes=("signature_structure",), mode=BS
)
def reference_hash(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    one(signature_of(response), ".//ds:Reference").set("URI", "#")
    return serialize(response)


@R.add(
    "07",
    "two-references",
    "One SignedInfo with References to the Response and the Assertion, re-signed",
    codes=("signature_structure",),
    mode=RS,
)
def two_references(ctx: Context) -> bytes:
    response = ctx.tree()
    assertion = assertion_of(response)
    sign(
        response,
        Signer(ctx.idp, extra_uris=("#" + (assertion.get("ID") or ""),)),
        register=[assertion],
    )
    return serialize(reparse(response))


@R.add(
    "08",
    "two-signed-info",
    "A second SignedInfo whose Reference digests the evil Assertion",
    codes=("schema_invalid", "signature_structure"),
    mode=AS,
)
def two_signed_info(ctx: Context) -> bytes:
    response = ctx.golden(AS)
    assertion = make_evil(assertion_of(response))
    signed_info = one(signature_of(assertion), "ds:SignedInfo")
    evil_info = clone(signed_info)
    one(evil_info, ".//ds:DigestValue").text = c14n_digest(assertion)
    signed_info.addnext(evil_info)
    return serialize(response)


@R.add(
    "08",
    "wrapped-signed-info",
    "The evil SignedInfo inside a wrapper element in the Signature",
    codes=("schema_invalid", "signature_structure"),
    mode=AS,
)
def wrapped_signed_info(ctx: Context) -> bytes:
    response = ctx.golden(AS)
    assertion = make_evil(assertion_of(response))
    signature = signature_of(assertion)
    evil_info = clone(one(signature, "ds:SignedInfo"))
    one(evil_info, ".//ds:DigestValue").text = c14n_digest(assertion)
    wrapper = etree.SubElement(signature, "{urn:x-attacker}Wrapper")
    wrapper.append(evil_info)
    return serialize(response)


def _stray_digest(where: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        assertion = make_evil(assertion_of(response))
        stray = clone(one(signature_of(assertion), ".//ds:Reference"))
        one(stray, "ds:DigestValue").text = c14n_digest(assertion)
        if where == "extensions":
            holder = etree.Element(q("samlp", "Extensions"))
            insert_after_issuer(response, holder)
        else:
            holder = etree.SubElement(one(response, "samlp:Status"), q("samlp", "StatusDetail"))
        holder.append(stray)
        return serialize(response)

    return build


for _where in ("extensions", "status-detail"):
    R.case(
        "09",
        f"stray-digest-in-{_where}",
        f"A Reference with the evil Assertion's digest in {_where}, before the real Signature",
        _stray_digest(_where),
        codes=("signature_invalid",),
        mode=AS,
    )


# ------------------------------------------------------------------------------------ 10-13
def _comment_in(path: str, before: bool) -> Build:
    def build(ctx: Context) -> bytes:
        xml = ctx.golden_xml(BS)
        value = one(etree.fromstring(xml), path).text or ""
        commented = f"<!--AAAA-->{value}" if before else f"{value}<!--AAAA-->"
        return swap(xml, f">{value}<".encode(), f">{commented}<".encode())

    return build


R.case(
    "10",
    "comment-before-digest-value",
    "<!--evil--> before the real DigestValue",
    _comment_in("ds:Signature//ds:DigestValue", True),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "10",
    "comment-after-digest-value",
    "A comment after the real DigestValue",
    _comment_in("ds:Signature//ds:DigestValue", False),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "10",
    "comment-in-signature-value",
    "A comment inside SignatureValue",
    _comment_in("ds:Signature/ds:SignatureValue", True),
    codes=("forbidden_xml",),
    mode=BS,
)


@R.add(
    "11",
    "object-in-signature",
    "ds:Object carrying data inside the Response signature",
    codes=("signature_structure",),
    mode=BS,
)
def object_in_signature(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    data = etree.SubElement(
        etree.SubElement(signature_of(response), q("ds", "Object")), "{urn:x-attacker}Data"
    )
    data.text = VICTIM
    return serialize(response)


def _resigned(signer_changes: dict[str, Any], mode: Mode = AS) -> Build:
    """The golden re-signed with the real IdP key by an unusual signer (only the shape is wrong)."""

    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        signer = replace(ctx.signer, **signer_changes)
        return serialize(sign_mode(response, mode, signer, assertion_signer=signer))

    return build


for _slug, _title, _transforms in (
    ("xslt", "an XSLT transform", (X.TRANSFORM_ENVELOPED, XSLT)),
    ("xpath", "an XPath transform", (XPATH, X.C14N_EXCL)),
    ("xpath-filter2", "an XPath-Filter2 transform", (XPATH2, X.C14N_EXCL)),
    ("three-transforms", "a third transform", (X.TRANSFORM_ENVELOPED, X.C14N_EXCL, X.C14N_EXCL)),
    (
        "inclusive-c14n-transform",
        "inclusive c14n as the reference transform",
        (X.TRANSFORM_ENVELOPED, C14N_INCL),
    ),
):
    R.case(
        "12",
        f"transform-{_slug}",
        f"Assertion re-signed with {_title}",
        _resigned({"transforms": _transforms}),
        codes=("signature_structure",),
        mode=AS,
    )


def _edit_transforms(edit: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        transforms = one(signature_of(assertion_of(response)), ".//ds:Transforms")
        if edit == "base64":
            etree.SubElement(transforms, q("ds", "Transform"), Algorithm=BASE64)
        else:
            transforms.remove(
                one(transforms, f"ds:Transform[@Algorithm='{X.TRANSFORM_ENVELOPED}']")
            )
        return serialize(response)

    return build


R.case(
    "12",
    "transform-base64",
    "A base64 transform added to the Reference",
    _edit_transforms("base64"),
    codes=("signature_structure",),
    mode=AS,
)
R.case(
    "12",
    "transform-no-enveloped",
    "enveloped-signature transform dropped",
    _edit_transforms("drop"),
    codes=("signature_structure",),
    mode=AS,
)

for _slug, _c14n in (
    ("inclusive", C14N_INCL),
    ("exclusive-with-comments", C14N_EXCL_COMMENTS),
    ("c14n11", C14N11),
):
    R.case(
        "13",
        f"c14n-{_slug}",
        f"CanonicalizationMethod {_c14n}, re-signed",
        _resigned({"c14n": _c14n}, BS),
        codes=("algorithm_refused",),
        mode=BS,
    )


# ------------------------------------------------------------------------------------ 14-16
for _slug, _changes in (
    ("rsa-sha1", {"signature_method": X.RSA_SHA1, "digest_method": X.DIGEST_SHA1}),
    ("sha1-digest", {"digest_method": X.DIGEST_SHA1}),
    ("md5-digest", {"digest_method": DIGEST_MD5}),
    ("rsa-md5", {"signature_method": RSA_MD5}),
):
    R.case(
        "14",
        f"weak-{_slug}",
        f"Re-signed with the IdP key using {_slug}",
        _resigned(_changes, BS),
        codes=("algorithm_refused",),
        mode=BS,
    )


@R.add("14", "weak-dsa-sha1", "SignatureMethod dsa-sha1", codes=("algorithm_refused",), mode=BS)
def weak_dsa(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    for method in xp(response, "//ds:SignatureMethod"):
        method.set("Algorithm", DSA_SHA1)
    return serialize(response)


def _hmac(method: str, der: bool) -> Build:
    def build(ctx: Context) -> bytes:
        key = cert_der(ctx.idp.cert_pem) if der else ctx.idp.cert_pem
        response = make_evil(assertion_of(ctx.tree())).getparent()
        assert response is not None
        signer = Signer(key, signature_method=method)
        return serialize(sign_mode(response, BS, signer, assertion_signer=signer))

    return build


R.case(
    "15",
    "hmac-sha1-cert-pem-key",
    "hmac-sha1 keyed with the IdP certificate (PEM) from metadata",
    _hmac(HMAC_SHA1, der=False),
    codes=("algorithm_refused",),
    mode=BS,
)
R.case(
    "15",
    "hmac-sha256-cert-der-key",
    "hmac-sha256 keyed with the IdP certificate (DER)",
    _hmac(HMAC_SHA256, der=True),
    codes=("algorithm_refused",),
    mode=BS,
)


@R.add(
    "16",
    "hmac-output-length-40",
    "hmac-sha1 truncated to 40 bits (HMACOutputLength)",
    codes=("algorithm_refused",),
    mode=BS,
)
def hmac_truncated(ctx: Context) -> bytes:
    xml = _hmac(HMAC_SHA1, der=False)(ctx)
    assert isinstance(xml, bytes)
    response = etree.fromstring(xml)
    for method in xp(response, "//ds:SignatureMethod"):
        etree.SubElement(method, q("ds", "HMACOutputLength")).text = "40"
    return serialize(response)


# ------------------------------------------------------------------------------------ 17-20
def _attacker_signed(mode: Mode, impostor: bool) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        make_evil(assertion_of(response))
        return serialize(
            sign_mode(response, mode, Signer(ctx.other_idp if impostor else ctx.attacker))
        )

    return build


R.case(
    "17",
    "attacker-key-both-signed",
    "Evil edit re-signed by an attacker key, its certificate in KeyInfo",
    _attacker_signed(BS, False),
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=BS,
)
R.case(
    "17",
    "attacker-key-assertion-only",
    "Only the Assertion, re-signed by an attacker key",
    _attacker_signed(AS, False),
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=AS,
)
R.case(
    "17",
    "cloned-subject-certificate",
    "Re-signed by a key whose certificate clones the IdP's subject",
    _attacker_signed(BS, True),
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=BS,
)


def _key_info(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        make_evil(assertion_of(response))
        response = sign_mode(response, AS, Signer(ctx.attacker))
        key_info = one(signature_of(assertion_of(response)), "ds:KeyInfo")
        for child in list(key_info):
            key_info.remove(child)
        if kind == "rsa-key-value":
            public_key = x509.load_pem_x509_certificate(ctx.attacker.cert_pem).public_key()
            assert isinstance(public_key, RSAPublicKey)
            numbers = public_key.public_numbers()
            rsa = etree.SubElement(
                etree.SubElement(key_info, q("ds", "KeyValue")), q("ds", "RSAKeyValue")
            )
            etree.SubElement(rsa, q("ds", "Modulus")).text = _b64int(numbers.n)
            etree.SubElement(rsa, q("ds", "Exponent")).text = _b64int(numbers.e)
        elif kind == "der-encoded-key-value":
            public = x509.load_pem_x509_certificate(ctx.attacker.cert_pem).public_key()
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            etree.SubElement(
                key_info, "{http://www.w3.org/2009/xmldsig11#}DEREncodedKeyValue"
            ).text = base64.b64encode(der).decode()
        elif kind == "key-name":
            etree.SubElement(key_info, q("ds", "KeyName")).text = "okta"
        elif kind == "issuer-serial":
            cert = x509.load_pem_x509_certificate(ctx.idp.cert_pem)
            serial = etree.SubElement(
                etree.SubElement(key_info, q("ds", "X509Data")), q("ds", "X509IssuerSerial")
            )
            etree.SubElement(serial, q("ds", "X509IssuerName")).text = cert.issuer.rfc4514_string()
            etree.SubElement(serial, q("ds", "X509SerialNumber")).text = str(cert.serial_number)
        else:
            uri = ctx.canary + "/key" if kind == "retrieval-http" else "file:///etc/passwd"
            etree.SubElement(
                key_info,
                q("ds", "RetrievalMethod"),
                URI=uri,
                Type="http://www.w3.org/2000/09/xmldsig#X509Data",
            )
        return serialize(response)

    return build


def _b64int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()


for _slug, _title in (
    ("rsa-key-value", "RSAKeyValue of the attacker key"),
    ("der-encoded-key-value", "DEREncodedKeyValue of the attacker key"),
    ("key-name", 'KeyName "okta"'),
    ("issuer-serial", "X509IssuerSerial naming the IdP certificate"),
    ("retrieval-http", "RetrievalMethod to a loopback URL"),
    ("retrieval-file", "RetrievalMethod to file:///etc/passwd"),
):
    R.case(
        "18",
        f"key-info-{_slug}",
        f"Attacker-signed Assertion, KeyInfo: {_title}",
        _key_info(_slug),
        codes=("signature_invalid",),
        mode=AS,
        network=_slug == "retrieval-http",
    )


def _external_reference(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(BS)
        uri = ctx.canary + "/ref" if kind == "http" else "file:///etc/passwd"
        one(signature_of(response), ".//ds:Reference").set("URI", uri)
        return serialize(response)

    return build


R.case(
    "19",
    "reference-uri-http",
    "Reference URI to a loopback http URL (SSRF)",
    _external_reference("http"),
    codes=("signature_structure",),
    mode=BS,
    network=True,
)
R.case(
    "19",
    "reference-uri-file",
    "Reference URI file:///etc/passwd",
    _external_reference("file"),
    codes=("signature_structure",),
    mode=BS,
)


@R.add(
    "20",
    "unknown-issuer-attacker-cert",
    "Issuer not in metadata, re-signed with the attacker's certificate in KeyInfo",
    codes=("wrong_issuer",),
    mode=BS,
)
def unknown_issuer(ctx: Context) -> bytes:
    response = ctx.tree(issuer="http://www.okta.com/exkATTACKER00000000")
    make_evil(assertion_of(response))
    return serialize(sign_mode(response, BS, Signer(ctx.attacker)))


@R.add(
    "20",
    "other-trusted-idp",
    "Issuer and key of another IdP in the same metadata (not the configured one)",
    codes=("wrong_issuer",),
    mode=BS,
    policy=Policy(metadata="two-idps"),
)
def other_trusted_idp(ctx: Context) -> bytes:
    response = ctx.tree(issuer=OTHER_IDP_ENTITY_ID)
    make_evil(assertion_of(response))
    return serialize(sign_mode(response, BS, Signer(ctx.other_idp)))


@R.add(
    "20",
    "wrong-issuer-real-key",
    "Wrong Issuer, re-signed with the real IdP key",
    codes=("wrong_issuer",),
    mode=BS,
)
def wrong_issuer(ctx: Context) -> bytes:
    return ctx.golden_xml(BS, issuer="http://www.okta.com/exkSOMEONEELSE00000")


@R.add(
    "20",
    "wrong-assertion-issuer-real-key",
    "Response Issuer right, Assertion Issuer wrong, re-signed with the real key",
    codes=("wrong_issuer",),
    mode=BS,
)
def wrong_assertion_issuer(ctx: Context) -> bytes:
    response = ctx.tree()
    one(response, "saml2:Assertion/saml2:Issuer").text = "http://www.okta.com/exkSOMEONEELSE00000"
    return serialize(sign_mode(response, BS, ctx.signer))


@R.add(
    "20",
    "issuer-format-unspecified",
    "Issuer Format unspecified instead of entity, re-signed",
    codes=("wrong_issuer",),
    mode=BS,
)
def issuer_format(ctx: Context) -> bytes:
    response = ctx.tree()
    for issuer in xp(response, "//saml2:Issuer"):
        issuer.set("Format", X.NAMEID_UNSPECIFIED)
    return serialize(sign_mode(response, BS, ctx.signer))


def _detached(pristine_copy: bool) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        assertion = assertion_of(response)
        pristine = clone(assertion)
        signature = signature_of(assertion)
        assertion.remove(signature)
        insert_after_issuer(response, signature)
        make_evil(assertion)
        if pristine_copy:
            extensions = etree.Element(q("samlp", "Extensions"))
            signature.addnext(extensions)
            extensions.append(pristine)
        return serialize(response)

    return build


R.case(
    "21",
    "detached-assertion-signature",
    "The Assertion's signature moved to the Response, Assertion edited",
    _detached(False),
    codes=("signature_structure",),
    mode=AS,
)
R.case(
    "21",
    "detached-signature-pristine-copy",
    "Same, with the pristine Assertion kept in Extensions",
    _detached(True),
    codes=("schema_invalid",),
    mode=AS,
)


def _signed_elsewhere(kind: str) -> Build:
    """An IdP-signed object embedded in an unsigned Response around an unsigned evil Assertion."""

    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        make_evil(assertion_of(response))
        if kind == "logout-request":
            other = etree.Element(
                q("samlp", "LogoutRequest"), ID=new_id(), Version="2.0", IssueInstant=ctx.instant(0)
            )
            etree.SubElement(other, q("saml2", "Issuer")).text = ctx.spec().issuer
            etree.SubElement(other, q("saml2", "NameID")).text = VICTIM
            sign(other, ctx.signer)
        elif kind == "metadata":
            other = etree.Element(
                f"{{{X.NS_MD}}}EntityDescriptor", ID=new_id(), entityID=ctx.spec().issuer
            )
            sign(other, ctx.signer, place=lambda s: other.insert(0, s))
        else:
            other = ctx.golden(RS, in_response_to="id-an-older-request")
        extensions = etree.Element(q("samlp", "Extensions"))
        insert_after_issuer(response, extensions)
        extensions.append(reparse(other))
        return serialize(response)

    return build


R.case(
    "22",
    "signed-logout-request-reused",
    "An IdP-signed LogoutRequest in Extensions, unsigned evil Assertion",
    _signed_elsewhere("logout-request"),
    codes=("schema_invalid",),
    mode=AS,
)
R.case(
    "22",
    "signed-metadata-reused",
    "IdP-signed metadata in Extensions, unsigned evil Assertion",
    _signed_elsewhere("metadata"),
    codes=("signature_structure",),
    mode=AS,
)
R.case(
    "22",
    "old-signed-response-reused",
    "An older IdP-signed Response in Extensions, unsigned evil Assertion",
    _signed_elsewhere("old-response"),
    codes=("schema_invalid",),
    mode=AS,
)


def _two_roots(signed_first: bool) -> Build:
    def build(ctx: Context) -> bytes:
        genuine = etree.tostring(ctx.golden(BS))
        evil = ctx.tree()
        make_evil(assertion_of(evil))
        roots = (genuine, etree.tostring(evil)) if signed_first else (etree.tostring(evil), genuine)
        return b"".join(roots)

    return build


R.case(
    "22",
    "multiple-roots-signed-first",
    "A signed Response followed by a second, evil root",
    _two_roots(True),
    codes=("malformed_response",),
    mode=BS,
)
R.case(
    "22",
    "multiple-roots-evil-first",
    "An evil root followed by the signed Response",
    _two_roots(False),
    codes=("malformed_response",),
    mode=BS,
)
