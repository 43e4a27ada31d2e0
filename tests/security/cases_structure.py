"""Catalogue A.3: multiple assertions and structure (cases 34-40)."""

from __future__ import annotations

from lxml import etree

from tests.security.corpus import Build, Registry
from tests.security.forge import (
    VICTIM,
    Context,
    Mode,
    assertion_of,
    clone,
    make_evil,
    one,
    q,
    reparse,
    serialize,
    sign,
    sign_mode,
    strip_signature,
)

R = Registry()
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS


def _extra_assertion(first: bool) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.golden(AS)
        assertion = assertion_of(response)
        evil = make_evil(strip_signature(clone(assertion)))
        evil.set("ID", (assertion.get("ID") or "") + "_attack")
        if first:
            assertion.addprevious(evil)
        else:
            assertion.addnext(evil)
        return serialize(response)

    return build


R.case(
    "34",
    "unsigned-assertion-appended",
    "Signed Assertion plus an unsigned evil clone after it (CVE-2022-41912)",
    _extra_assertion(False),
    codes=("assertion_count",),
    mode=AS,
)
R.case(
    "34",
    "unsigned-assertion-prepended",
    "An unsigned evil clone before the signed Assertion",
    _extra_assertion(True),
    codes=("assertion_count",),
    mode=AS,
)


@R.add(
    "34",
    "two-assertions-response-resigned",
    "Two assertions in a Response re-signed with the real key",
    codes=("assertion_count",),
    mode=RS,
)
def two_assertions_signed(ctx: Context) -> bytes:
    response = ctx.tree()
    assertion = assertion_of(response)
    evil = make_evil(clone(assertion))
    evil.set("ID", (assertion.get("ID") or "") + "_attack")
    assertion.addnext(evil)
    return serialize(sign_mode(response, RS, ctx.signer))


def _mixed(plain: int) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.encrypted(AS)
        for n in range(plain):
            evil = make_evil(assertion_of(ctx.tree()))
            evil.set("ID", f"evil{n}")
            one(response, "saml2:EncryptedAssertion").addprevious(evil)
        return serialize(response)

    return build


R.case(
    "35",
    "plain-and-encrypted",
    "One plain (evil) Assertion and one EncryptedAssertion",
    _mixed(1),
    codes=("assertion_count",),
    mode=AS,
)
R.case(
    "35",
    "two-plain-and-encrypted",
    "Two plain Assertions and one EncryptedAssertion",
    _mixed(2),
    codes=("assertion_count",),
    mode=AS,
)


def _advice(count: int, signed_inner: bool) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        assertion = assertion_of(response)
        advice = etree.Element(q("saml2", "Advice"))
        one(assertion, "saml2:Conditions").addnext(advice)
        for n in range(count):
            inner = make_evil(assertion_of(ctx.tree()))
            inner.set("ID", f"advice{n}")
            if signed_inner:
                sign(inner, ctx.signer)
            advice.append(reparse(inner))
        return serialize(sign_mode(response, AS, ctx.signer))

    return build


R.case(
    "36",
    "advice-unsigned-assertion",
    "Signed outer Assertion, an unsigned victim Assertion in its Advice",
    _advice(1, False),
    codes=("assertion_count",),
    mode=AS,
)
R.case(
    "36",
    "advice-two-assertions",
    "Two victim Assertions in Advice",
    _advice(2, False),
    codes=("assertion_count",),
    mode=AS,
)
R.case(
    "36",
    "advice-signed-assertion",
    "A separately IdP-signed Assertion in Advice",
    _advice(1, True),
    codes=("assertion_count",),
    mode=AS,
)


@R.add(
    "37",
    "zero-assertions-success",
    "Signed Response, Status Success, no assertion",
    codes=("assertion_count",),
    mode=RS,
)
def zero_assertions(ctx: Context) -> bytes:
    return ctx.golden_xml(RS, include_assertion=False)


@R.add(
    "37",
    "responder-status-with-assertion",
    "Status Responder with a valid assertion, re-signed",
    codes=("idp_status",),
    mode=BS,
)
def responder_status(ctx: Context) -> bytes:
    return ctx.golden_xml(BS, status_code="urn:oasis:names:tc:SAML:2.0:status:Responder")


@R.add(
    "37",
    "request-denied-with-assertion",
    "Status Responder/RequestDenied with a valid assertion",
    codes=("idp_status", "idp_denied"),
    mode=BS,
)
def denied_status(ctx: Context) -> bytes:
    response = ctx.tree(status_code="urn:oasis:names:tc:SAML:2.0:status:Responder")
    code = one(response, "samlp:Status/samlp:StatusCode")
    etree.SubElement(
        code, q("samlp", "StatusCode"), Value="urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
    )
    return serialize(sign_mode(response, BS, ctx.signer))


def _subject(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        subject = one(response, "saml2:Assertion/saml2:Subject")
        name_id = one(subject, "saml2:NameID")
        if kind == "foreign-name-id-first":
            foreign = etree.Element("{urn:x-attacker}NameID")
            foreign.text = VICTIM
            name_id.addprevious(foreign)
        elif kind == "only-foreign-name-id":
            foreign = etree.Element("{urn:x-attacker}NameID")
            foreign.text = VICTIM
            name_id.addprevious(foreign)
            subject.remove(name_id)
        elif kind == "two-subjects":
            evil = clone(subject)
            one(evil, "saml2:NameID").text = VICTIM
            subject.addprevious(evil)
        elif kind == "two-name-ids":
            evil = clone(name_id)
            evil.text = VICTIM
            name_id.addnext(evil)
        else:  # no-namespace NameID
            bare = etree.Element("NameID")
            bare.text = VICTIM
            name_id.addprevious(bare)
            subject.remove(name_id)
        return serialize(sign_mode(response, BS, ctx.signer))

    return build


for _kind, _title in (
    ("foreign-name-id-first", "a foreign-namespace NameID before the real one"),
    ("only-foreign-name-id", "only a foreign-namespace NameID"),
    ("two-subjects", "two Subjects"),
    ("two-name-ids", "two NameIDs"),
    ("no-namespace-name-id", "a NameID in no namespace"),
):
    R.case(
        "38",
        _kind,
        f"Re-signed Assertion with {_title}",
        _subject(_kind),
        codes=("schema_invalid", "bad_subject"),
        mode=BS,
    )


def _attributes(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree()
        statement = one(response, "saml2:Assertion/saml2:AttributeStatement")
        groups = one(statement, "saml2:Attribute[@Name='groups']")
        evil = clone(groups)
        one(evil, "saml2:AttributeValue").text = "admins"
        if kind == "duplicated-attribute":
            groups.addnext(evil)
        else:
            second = etree.Element(q("saml2", "AttributeStatement"))
            second.append(evil)
            statement.addnext(second)
        return serialize(sign_mode(response, BS, ctx.signer))

    return build


R.case(
    "39",
    "duplicated-attribute",
    "The groups Attribute twice (signed by the IdP)",
    _attributes("duplicated-attribute"),
    codes=("duplicate_attribute",),
    mode=BS,
)
R.case(
    "39",
    "two-attribute-statements",
    "groups in two AttributeStatements (signed by the IdP)",
    _attributes("two-statements"),
    codes=("duplicate_attribute",),
    mode=BS,
)


def _trailing(extra: bytes, leading: bool = False) -> Build:
    def build(ctx: Context) -> bytes:
        xml = ctx.golden_xml(BS)
        if leading:
            declaration, rest = xml.split(b"?>", 1)
            return declaration + b"?>" + extra + rest
        return xml + extra

    return build


def _second_root(ctx: Context) -> bytes:
    evil = ctx.tree()
    make_evil(assertion_of(evil))
    return ctx.golden_xml(BS) + etree.tostring(evil)


R.case(
    "40",
    "trailing-second-root",
    "A second, evil root after </samlp:Response>",
    _second_root,
    codes=("malformed_response",),
    mode=BS,
)
R.case(
    "40",
    "trailing-comment",
    "A comment after the document element",
    _trailing(b"<!-- " + VICTIM.encode() + b" -->"),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "40",
    "trailing-pi",
    "A processing instruction after the document element",
    _trailing(b"<?evil " + VICTIM.encode() + b"?>"),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "40",
    "leading-comment",
    "A comment before the document element",
    _trailing(b"<!--x-->", leading=True),
    codes=("forbidden_xml",),
    mode=BS,
)
R.case(
    "40",
    "trailing-text",
    "Text after the document element",
    _trailing(b"garbage"),
    codes=("malformed_response",),
    mode=BS,
)
R.case(
    "40",
    "trailing-cdata",
    "A CDATA section after the document element",
    _trailing(b"<![CDATA[x]]>"),
    codes=("malformed_response",),
    mode=BS,
)
