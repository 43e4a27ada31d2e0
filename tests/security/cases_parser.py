"""Catalogue A.4: parser-level attacks (cases 41-53): comments, PIs and CDATA in signed text,
DTDs and entities, namespace confusion, void canonicalization, encodings, sizes, deflate bombs.
"""

from __future__ import annotations

import base64
import zlib
from functools import cache

from lxml import etree

from tests.security.cases_xsw import with_doctype
from tests.security.corpus import Build, FormValue, Registry
from tests.security.forge import (
    VICTIM,
    XML_DECLARATION,
    Context,
    Mode,
    assertion_of,
    clone,
    make_evil,
    one,
    q,
    serialize,
    sign_mode,
    signature_of,
    strip_signature,
    xp,
)

R = Registry()
AS, BS = Mode.AS, Mode.BS
#: The account the attacker registered at the IdP: the victim's address plus a suffix.
LOOKALIKE = VICTIM + ".evil.test"


def _split_name_id(mode: Mode, inserted: bytes, attribute: bool = False) -> Build:
    """Sign the look-alike NameID (or email attribute), then split its text with ``inserted``."""

    def build(ctx: Context) -> bytes:
        xml = ctx.golden_xml(mode, name_id=LOOKALIKE, attributes={"email": [LOOKALIKE]})
        head, tail = VICTIM.encode(), b".evil.test"
        closing = b"</saml2:AttributeValue>" if attribute else b"</saml2:NameID>"
        old = head + tail + closing
        assert old in xml
        return xml.replace(old, head + inserted + tail + closing, 1)

    return build


R.case(
    "41",
    "comment-in-name-id-bs",
    "NameID victim<!---->.evil.test in a both-signed Response (c14n drops the comment)",
    _split_name_id(BS, b"<!---->"),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "41",
    "comment-in-name-id-as",
    "The same comment split, assertion-signed",
    _split_name_id(AS, b"<!---->"),
    codes=("forbidden_xml",),
    mode=AS,
)
R.case(
    "41",
    "comment-in-attribute-value",
    "The email attribute split by a comment",
    _split_name_id(BS, b"<!---->", attribute=True),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "42",
    "pi-in-name-id-after-signing",
    "NameID split by a processing instruction",
    _split_name_id(BS, b"<?x?>"),
    codes=("forbidden_xml",),
    mode=BS,
)


@R.add(
    "42",
    "pi-in-name-id-signed",
    "A processing instruction inside the NameID, covered by the signature",
    codes=("forbidden_xml",),
    mode=BS,
)
def pi_signed(ctx: Context) -> bytes:
    response = ctx.tree()
    name_id = one(response, ".//saml2:NameID")
    name_id.text = VICTIM
    pi = etree.ProcessingInstruction("x")
    pi.tail = ".evil.test"
    name_id.append(pi)
    return serialize(sign_mode(response, BS, ctx.signer))


R.case(
    "43",
    "cdata-empty-split",
    "NameID victim<![CDATA[]]>.evil.test: the parser merges CDATA",
    _split_name_id(BS, b"<![CDATA[]]>"),
    mode=BS,
    outcome="full_name_id",
    name_id=LOOKALIKE,
)


@R.add(
    "43",
    "cdata-holding-suffix",
    "NameID victim<![CDATA[.evil.test]]>",
    mode=BS,
    outcome="full_name_id",
    name_id=LOOKALIKE,
)
def cdata_suffix(ctx: Context) -> bytes:
    xml = ctx.golden_xml(BS, name_id=LOOKALIKE)
    old = LOOKALIKE.encode() + b"</saml2:NameID>"
    return xml.replace(old, VICTIM.encode() + b"<![CDATA[.evil.test]]></saml2:NameID>", 1)


def _doctype_case(doctype: bytes, name_id: bytes | None = None, mode: Mode = BS) -> Build:
    def build(ctx: Context) -> bytes:
        xml = ctx.golden_xml(mode).replace(b"CANARY", ctx.canary.encode())
        if name_id is not None:
            xml = xml.replace(
                b">alice@example.com</saml2:NameID>", b">" + name_id + b"</saml2:NameID>", 1
            )
        return with_doctype(xml, doctype.replace(b"CANARY", ctx.canary.encode()))

    return build


R.case(
    "44",
    "xxe-file-entity",
    "External entity file:///etc/passwd used in the NameID",
    _doctype_case(
        b'<!DOCTYPE saml2p:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;"
    ),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "44",
    "xxe-parameter-entity-oob",
    "Parameter entity fetched from a loopback URL (out-of-band XXE)",
    _doctype_case(b'<!DOCTYPE saml2p:Response [<!ENTITY % xxe SYSTEM "CANARY/xxe"> %xxe;]>'),
    codes=("forbidden_xml", "malformed_response"),
    mode=BS,
    network=True,
)

_LAUGHS = b"".join(
    b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10 if n else b"lol") for n in range(10)
)
R.case(
    "45",
    "billion-laughs",
    "Nested internal entities (10^9 expansion) in the NameID",
    _doctype_case(b"<!DOCTYPE saml2p:Response [" + _LAUGHS + b"]>", b"&lol9;"),
    codes=("forbidden_xml", "malformed_response"),
    mode=BS,
)


@R.add(
    "46",
    "dtd-default-recipient",
    "Recipient supplied by an <!ATTLIST> default, absent from the signed element",
    codes=("forbidden_xml",),
    mode=BS,
)
def dtd_default_attribute(ctx: Context) -> bytes:
    response = ctx.tree()
    del one(response, ".//saml2:SubjectConfirmationData").attrib["Recipient"]
    xml = serialize(sign_mode(response, BS, ctx.signer))
    acs = ctx.spec().destination.encode()
    doctype = (
        b'<!DOCTYPE saml2p:Response [<!ATTLIST saml2:SubjectConfirmationData Recipient CDATA "'
        + acs
        + b'">]>'
    )
    return with_doctype(xml, doctype)


R.case(
    "47",
    "external-dtd-file",
    'External DTD SYSTEM "file:///dev/zero"',
    _doctype_case(b'<!DOCTYPE saml2p:Response SYSTEM "file:///dev/zero">'),
    codes=("forbidden_xml", "malformed_response"),
    mode=BS,
)
R.case(
    "47",
    "external-dtd-http",
    "External DTD from a loopback URL",
    _doctype_case(b'<!DOCTYPE saml2p:Response SYSTEM "CANARY/x.dtd">'),
    codes=("forbidden_xml", "malformed_response"),
    mode=BS,
    network=True,
)


def _namespace(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        if kind == "signature-foreign-namespace":
            response = ctx.golden(AS)
            assertion = assertion_of(response)
            signature_of(assertion).tag = "{urn:x-attacker}Signature"
            make_evil(assertion)
            return serialize(response)
        if kind == "no-namespace-assertion-same-id":
            response = ctx.golden(AS)
            assertion = assertion_of(response)
            bare = etree.Element("Assertion", ID=assertion.get("ID") or "")
            bare.append(make_evil(strip_signature(clone(assertion))))
            assertion.addprevious(bare)
            return serialize(response)
        response = ctx.tree()
        if kind == "name-id-prefix-rebound":
            name_id = one(response, ".//saml2:NameID")
            rebound = etree.Element("{urn:x-attacker}NameID", nsmap={"saml2": "urn:x-attacker"})
            rebound.text = VICTIM
            name_id.addprevious(rebound)
            name_id.getparent().remove(name_id)  # type: ignore[union-attr]
            return serialize(sign_mode(response, BS, ctx.signer))
        # ds prefix rebound inside the signature: SignedInfo in another namespace
        response = sign_mode(response, BS, ctx.signer)
        xml = serialize(response).replace(
            b"<ds:SignedInfo>", b'<ds:SignedInfo xmlns:ds="urn:x-attacker">', 1
        )
        return xml

    return build


R.case(
    "48",
    "signature-foreign-namespace",
    "The Assertion's Signature moved to a foreign namespace, Assertion edited",
    _namespace("signature-foreign-namespace"),
    codes=("schema_invalid", "signature_missing"),
    mode=AS,
)
R.case(
    "48",
    "no-namespace-assertion-same-id",
    "An Assertion in no namespace with the signed Assertion's ID",
    _namespace("no-namespace-assertion-same-id"),
    codes=("schema_invalid", "duplicate_id"),
    mode=AS,
)
R.case(
    "48",
    "name-id-prefix-rebound",
    "saml2 prefix rebound to a foreign namespace on the NameID, re-signed",
    _namespace("name-id-prefix-rebound"),
    codes=("schema_invalid", "bad_subject"),
    mode=BS,
)
R.case(
    "48",
    "ds-prefix-rebound",
    "ds prefix rebound on SignedInfo inside the Signature",
    _namespace("ds-prefix-rebound"),
    codes=("schema_invalid", "signature_structure"),
    mode=BS,
)
R.case(
    "48",
    "dtd-fixed-xmlns-cve-2025-25292",
    "<!ATTLIST Signature xmlns #FIXED dsig> parser differential",
    _doctype_case(
        b'<!DOCTYPE saml2p:Response [<!ATTLIST Signature xmlns CDATA #FIXED "http://www.w3.org/2000/09/xmldsig#">]>'
    ),
    codes=("forbidden_xml",),
    mode=BS,
)


@R.add(
    "49",
    "void-canonicalization",
    "An invalid namespace URI (c14n error) with DigestValue = SHA-256 of nothing",
    codes=("signature_invalid", "malformed_response"),
    mode=AS,
)
def void_c14n(ctx: Context) -> bytes:
    response = ctx.golden(AS)
    make_evil(assertion_of(response))
    one(response, ".//ds:DigestValue").text = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    xml = serialize(response)
    return xml.replace(
        b"<saml2:Assertion ", b'<saml2:Assertion xmlns:example="http://example.com\xc2\x80" ', 1
    )


def _encoding(name: str) -> Build:
    def build(ctx: Context) -> bytes:
        return etree.tostring(ctx.golden(BS), encoding=name, xml_declaration=True)

    return build


R.case(
    "50",
    "utf-16-encoding",
    "A valid Response re-encoded as UTF-16",
    _encoding("UTF-16"),
    codes=("malformed_response",),
    mode=BS,
)
R.case(
    "50",
    "latin-1-encoding",
    "A valid Response declared and encoded as ISO-8859-1",
    _encoding("ISO-8859-1"),
    codes=("malformed_response",),
    mode=BS,
)


@R.add(
    "51",
    "doctype-comment-cdata-differential-cve-2025-25291",
    "DOCTYPE/comment/CDATA trick: two parsers see two documents",
    codes=("forbidden_xml", "malformed_response"),
    mode=BS,
)
def doctype_differential(ctx: Context) -> bytes:
    genuine = etree.tostring(ctx.golden(BS))
    evil = ctx.tree()
    make_evil(assertion_of(evil))
    forged = etree.tostring(evil)
    close = b"</saml2p:Response>"
    return (
        XML_DECLARATION
        + b"<!DOCTYPE response SYSTEM 'x\"><!--'>"
        + forged[: -len(close)]
        + b"<![CDATA[-->"
        + genuine
        + b"<!--]]>-->"
        + close
    )


# ------------------------------------------------------------------------------------ 52-53
@R.add(
    "52", "oversized-saml-response", "A 2 MB SAMLResponse", codes=("response_too_large",), mode=BS
)
def oversized(ctx: Context) -> FormValue:
    return FormValue(base64.b64encode(ctx.golden_xml(BS) + b" " * 1_500_000).decode())


def _stuffed_extensions(depth: int, breadth: int) -> Build:
    """Unsigned Extensions stuffed with nested or many elements around a valid signed Assertion."""

    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        extensions = etree.Element(q("samlp", "Extensions"), nsmap={"x": "urn:x"})
        one(response, "saml2:Issuer").addnext(extensions)
        node = extensions
        for _ in range(depth):
            node = etree.SubElement(node, "{urn:x}a")
        for _ in range(breadth):
            etree.SubElement(extensions, "{urn:x}b")
        return serialize(response)

    return build


for _slug, _title, _build, _codes in (
    (
        "deep-nesting",
        "10,000 nested elements (beyond libxml2's own limit of 256)",
        _stuffed_extensions(10_000, 0),
        ("malformed_response",),
    ),
    (
        "nesting-100",
        "100 nested elements (beyond max_xml_depth)",
        _stuffed_extensions(100, 0),
        ("response_too_complex",),
    ),
    (
        "many-elements",
        "35,000 elements (under the byte limit, beyond max_xml_elements)",
        _stuffed_extensions(0, 35_000),
        ("response_too_complex",),
    ),
):
    R.case("52", _slug, f"Unsigned Extensions holding {_title}", _build, codes=_codes, mode=AS)


def _stuffed_attributes(elements: int, *, attributes: int = 0, declarations: int = 0) -> Build:
    """Unsigned Extensions holding ``elements`` elements, each of them carrying ``attributes``
    attributes and declaring ``declarations`` namespaces."""

    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        extensions = etree.Element(q("samlp", "Extensions"), nsmap={"x": "urn:x"})
        one(response, "saml2:Issuer").addnext(extensions)
        for _ in range(elements):
            names = {f"p{i}": f"u:{i}" for i in range(declarations)}
            element = etree.SubElement(extensions, "{urn:x}b", nsmap=names)
            for i in range(attributes):
                element.set(f"a{i}", "x")
        return serialize(response)

    return build


def _nested_declarations(ctx: Context, levels: int, per_level: int, leaves: int) -> bytes:
    """``leaves`` elements under ``levels`` nested ones that each declare ``per_level``
    namespaces: canonicalization walks every namespace in scope at every element."""
    response = ctx.golden(AS)
    extensions = etree.Element(q("samlp", "Extensions"), nsmap={"x": "urn:x"})
    one(response, "saml2:Issuer").addnext(extensions)
    node = extensions
    for level in range(levels):
        names = {f"p{level}x{i}": f"urn:n:{i}" for i in range(per_level)}
        node = etree.SubElement(node, "{urn:x}a", nsmap=names)
    for _ in range(leaves):
        etree.SubElement(node, "{urn:x}b")
    return serialize(response)


for _slug, _title, _build in (
    (
        "attributes-one-element",
        "an element with 1,000 attributes (beyond max_xml_attributes)",
        _stuffed_attributes(1, attributes=1_000),
    ),
    (
        "attributes-spread",
        "400 elements of 30 attributes each (beyond max_xml_elements attributes in all)",
        _stuffed_attributes(400, attributes=30),
    ),
    (
        "namespace-declarations-one-element",
        "an element declaring 9,000 namespaces (each cheap to parse)",
        _stuffed_attributes(1, declarations=9_000),
    ),
    (
        "namespace-declarations-nested",
        "5,000 elements under 20 nested ones declaring 250 namespaces each (c14n cost: 100 ms)",
        lambda ctx: _nested_declarations(ctx, 20, 250, 5_000),
    ),
    (
        "namespace-declarations-spread",
        "2,000 elements declaring 6 namespaces each (beyond max_xml_elements in all)",
        _stuffed_attributes(2_000, declarations=6),
    ),
):
    R.case(
        "52",
        _slug,
        f"Unsigned Extensions holding {_title}",
        _build,
        codes=("response_too_complex",),
        mode=AS,
    )


@R.add(
    "52",
    "huge-key-info-certificate",
    "A 300 KB base64 certificate in KeyInfo",
    codes=("response_too_large",),
    mode=AS,
)
def huge_certificate(ctx: Context) -> bytes:
    response = ctx.golden(AS)
    for certificate in xp(response, "//ds:X509Certificate"):
        certificate.text = base64.b64encode(b"\x00" * 230_000).decode()
    return serialize(response)


@R.add(
    "52",
    "base64-junk-characters",
    "The base64 SAMLResponse padded with junk characters",
    codes=("malformed_response",),
    mode=BS,
)
def base64_junk(ctx: Context) -> FormValue:
    value = base64.b64encode(ctx.golden_xml(BS)).decode()
    return FormValue(value[:100] + "!*$" + value[100:] + "@@@")


@cache
def _deflate_bomb() -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"A" * (1 << 20)
    data = b"".join(compressor.compress(chunk) for _ in range(100)) + compressor.flush()
    return base64.b64encode(data).decode()


@R.add(
    "53",
    "deflate-bomb",
    "base64(raw deflate(100 MB of 'A'))",
    codes=("malformed_response",),
    mode=BS,
)
def deflate_bomb(ctx: Context) -> FormValue:
    return FormValue(_deflate_bomb())


@R.add(
    "53",
    "deflated-valid-response",
    "A valid Response, raw-deflated (POST messages are never inflated)",
    codes=("malformed_response",),
    mode=BS,
)
def deflated_valid(ctx: Context) -> FormValue:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(ctx.golden_xml(BS)) + compressor.flush()
    return FormValue(base64.b64encode(data).decode())
