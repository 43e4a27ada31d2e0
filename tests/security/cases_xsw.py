"""Catalogue A.2: XML signature wrapping XSW1-XSW8 (SAML Raider's constructions), crewjam's
"Nine", duplicate IDs with the signed original first, ID pollution and DTD-declared IDs
(cases 23-33).

XSW1-2 target signed Responses and run against response-signed and both-signed goldens; XSW3-8
target signed Assertions and run against assertion-signed goldens and, with the Response
signature left in place (where it must fail too), against both-signed ones. XSW7-8 also run with
a properly namespaced wrapper (``samlp:Extensions``, ``ds:Object``) beside SAML Raider's
no-namespace one.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from tests.security.corpus import Build, Registry
from tests.security.forge import (
    XML_DECLARATION,
    Context,
    Mode,
    assertion_of,
    clone,
    insert_after_issuer,
    make_evil,
    one,
    q,
    serialize,
    sign_mode,
    signature_of,
    strip_signature,
)

R = Registry()
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS
EVIL_RESPONSE_ID = "_evil_response_ID"
EVIL_ASSERTION_ID = "_evil_assertion_ID"
Wrap = Callable[[etree._Element, etree._Element], None]


def _xsw1(response: etree._Element, wrapper_ns: bool) -> None:
    original = strip_signature(clone(response))
    response.set("ID", EVIL_RESPONSE_ID)
    make_evil(assertion_of(response))
    signature_of(response).append(original)


def _xsw2(response: etree._Element, wrapper_ns: bool) -> None:
    original = strip_signature(clone(response))
    response.set("ID", EVIL_RESPONSE_ID)
    make_evil(assertion_of(response))
    signature_of(response).addprevious(original)


def _evil_copy(assertion: etree._Element, new_id: str | None) -> etree._Element:
    evil = make_evil(strip_signature(clone(assertion)))
    if new_id is not None:
        evil.set("ID", new_id)
    return evil


def _xsw3(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    assertion.addprevious(_evil_copy(assertion, EVIL_ASSERTION_ID))


def _xsw4(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    evil = _evil_copy(assertion, EVIL_ASSERTION_ID)
    response.append(evil)
    evil.append(assertion)


def _xsw5(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    original = strip_signature(clone(assertion))
    assertion.set("ID", EVIL_ASSERTION_ID)
    make_evil(assertion)
    response.append(original)


def _xsw6(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    original = strip_signature(clone(assertion))
    assertion.set("ID", EVIL_ASSERTION_ID)
    make_evil(assertion)
    signature_of(assertion).append(original)


def _xsw7(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    wrapper = etree.Element(q("samlp", "Extensions") if wrapper_ns else "Extensions")
    wrapper.append(_evil_copy(assertion, None))
    assertion.addprevious(wrapper)


def _xsw8(response: etree._Element, wrapper_ns: bool) -> None:
    assertion = assertion_of(response)
    original = strip_signature(clone(assertion))
    make_evil(assertion)
    wrapper = etree.SubElement(
        signature_of(assertion), q("ds", "Object") if wrapper_ns else "Object"
    )
    wrapper.append(original)


def _nine(response: etree._Element, wrapper_ns: bool) -> None:
    """crewjam's ninth: the spoofed Assertion holds Sa, the original sits in a wrapper."""
    assertion = assertion_of(response)
    original = strip_signature(clone(assertion))
    assertion.set("ID", "spoofed_assertion_id")
    make_evil(assertion)
    etree.SubElement(response, "xsw_wrapper").append(original)


def _xsw(attack: Wrap, mode: Mode, wrapper_ns: bool = False) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(mode)
        attack(response, wrapper_ns)
        return serialize(response)

    return build


_VARIANTS: tuple[tuple[str, str, Wrap, tuple[Mode, ...], bool], ...] = (
    ("23", "xsw1", _xsw1, (RS, BS), False),
    ("24", "xsw2", _xsw2, (RS, BS), False),
    ("25", "xsw3", _xsw3, (AS, BS), False),
    ("26", "xsw4", _xsw4, (AS, BS), False),
    ("27", "xsw5", _xsw5, (AS, BS), False),
    ("28", "xsw6", _xsw6, (AS, BS), False),
    ("29", "xsw7", _xsw7, (AS, BS), True),
    ("30", "xsw8", _xsw8, (AS, BS), True),
    ("30", "xsw-nine", _nine, (AS,), False),
)
for _number, _name, _attack, _modes, _namespaced in _VARIANTS:
    for _mode in _modes:
        for _ns in (False, True) if _namespaced else (False,):
            suffix = ("-ns" if _ns else "-no-ns") if _namespaced else ""
            R.case(
                _number,
                f"{_name}-{_mode.slug}{suffix}",
                f"{_name.upper()} against a {_mode.value} golden"
                + (
                    " (namespaced wrapper)"
                    if _ns
                    else " (no-namespace wrapper)"
                    if _namespaced
                    else ""
                ),
                _xsw(_attack, _mode, _ns),
                codes=("schema_invalid", "assertion_count", "duplicate_id", "signature_structure"),
                mode=_mode,
            )


# ------------------------------------------------------------------------------------ 31
def _duplicate_id(where: str) -> Build:
    """The pristine signed Assertion hidden first; an evil one with the same ID (and a copy of
    its signature) where processors look."""

    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        assertion = assertion_of(response)
        pristine = clone(assertion)
        make_evil(assertion)
        if where == "extensions":
            holder = etree.Element(q("samlp", "Extensions"))
            insert_after_issuer(response, holder)
        elif where == "status-detail":
            holder = etree.SubElement(one(response, "samlp:Status"), q("samlp", "StatusDetail"))
        else:
            holder = etree.Element(q("saml2", "Advice"))
            one(assertion, "saml2:Conditions").addnext(holder)
        holder.append(pristine)
        return serialize(response)

    return build


for _where in ("extensions", "status-detail", "advice"):
    R.case(
        "31",
        f"duplicate-id-original-in-{_where}",
        f"Signed original first in {_where}, evil Assertion with the same ID as the direct child",
        _duplicate_id(_where),
        codes=("schema_invalid", "duplicate_id"),
        mode=AS,
    )


# ------------------------------------------------------------------------------------ 32
def _pollute(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        assertion = assertion_of(response)
        assertion_id = assertion.get("ID") or ""
        if kind in ("namespaced-id", "xml-id"):
            extensions = etree.Element(q("samlp", "Extensions"))
            insert_after_issuer(response, extensions)
            note = etree.SubElement(extensions, "{urn:x-attacker}Note")
            name = (
                "{urn:x-attacker}ID"
                if kind == "namespaced-id"
                else "{http://www.w3.org/XML/1998/namespace}id"
            )
            note.set(name, assertion_id)
            note.append(_evil_copy(assertion, EVIL_ASSERTION_ID))
            return serialize(response)
        strip_signature(response)
        strip_signature(assertion)
        if kind == "two-id-attributes":
            assertion.set("{urn:x-attacker}ID", EVIL_ASSERTION_ID)
        else:  # an ID-named attribute where the schema allows foreign attributes
            one(assertion, ".//saml2:SubjectConfirmationData").set(
                "{urn:x-attacker}ID", assertion_id
            )
        return serialize(sign_mode(response, AS, ctx.signer))

    return build


for _kind, _title, _codes in (
    (
        "namespaced-id",
        "a namespaced x:ID equal to the Assertion's ID on another element",
        ("duplicate_id",),
    ),
    ("xml-id", "xml:id equal to the Assertion's ID on another element", ("duplicate_id",)),
    (
        "two-id-attributes",
        "the signed Assertion carries ID and x:ID, re-signed",
        ("schema_invalid",),
    ),
    (
        "scd-namespaced-id",
        "x:ID equal to the Assertion's ID on SubjectConfirmationData, re-signed",
        ("duplicate_id",),
    ),
):
    R.case(
        "32",
        f"id-pollution-{_kind}",
        f"ID pollution: {_title}",
        _pollute(_kind),
        codes=_codes,
        mode=AS,
    )


# ------------------------------------------------------------------------------------ 33
def with_doctype(xml: bytes, doctype: bytes) -> bytes:
    assert xml.startswith(XML_DECLARATION)
    return XML_DECLARATION + doctype + xml[len(XML_DECLARATION) :]


@R.add(
    "33",
    "dtd-declared-id",
    "<!ATTLIST> declares ID on an earlier foreign element with the Assertion's ID",
    codes=("forbidden_xml",),
    mode=AS,
)
def dtd_declared_id(ctx: Context) -> bytes:
    response = ctx.golden(AS)
    assertion = assertion_of(response)
    extensions = etree.Element(q("samlp", "Extensions"))
    insert_after_issuer(response, extensions)
    foo = etree.SubElement(extensions, "{urn:x-attacker}Foo", ID=assertion.get("ID") or "")
    foo.append(_evil_copy(assertion, None))
    doctype = b"<!DOCTYPE saml2p:Response [<!ATTLIST x:Foo ID ID #IMPLIED>]>"
    return with_doctype(serialize(response), doctype)


@R.add(
    "33",
    "entity-built-id-cve-2025-23369",
    "IDs built from entities (&idViaEntity; / &BypassIDUniqueness;)",
    codes=("forbidden_xml",),
    mode=BS,
)
def entity_built_id(ctx: Context) -> bytes:
    response = ctx.golden(BS)
    response_id = response.get("ID") or ""
    assertion = assertion_of(response)
    assertion.addprevious(_evil_copy(assertion, "PLACEHOLDER"))
    xml = serialize(response)
    xml = xml.replace(f'ID="{response_id}"'.encode(), b'ID="&idViaEntity;"', 1)
    xml = xml.replace(
        b'ID="PLACEHOLDER"',
        b'ID="&BypassIDUniqueness;' + (assertion.get("ID") or "").encode()[1:] + b'"',
    )
    doctype = (
        b'<!DOCTYPE saml2p:Response [<!ENTITY idViaEntity "' + response_id.encode() + b'">'
        b'<!ENTITY BypassIDUniqueness "' + (assertion.get("ID") or "i")[:1].encode() + b'">]>'
    )
    return with_doctype(xml, doctype)
