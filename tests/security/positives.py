"""Positive controls: messages the gate must accept, run beside the corpus so that a suite that
refuses everything fails. The three golden signing modes, Okta's encrypted layouts, legal but
unusual serialisations (catalogue case 50) and the edges of every time window (case 59).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from saml_gate.saml import xmlconst as X
from tests.security.cases_semantics import AUTHN, CONDITIONS, SCD, SKEW, at, resigned, shifted
from tests.security.corpus import Build, Registry
from tests.security.forge import (
    ATTACKER,
    XML_DECLARATION,
    Context,
    Mode,
    serialize,
    sign_mode,
)

R = Registry()
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS


def _accept(number: str, slug: str, title: str, build: Build, mode: Mode) -> None:
    R.case(number, slug, title, build, mode=mode, outcome="accept", name_id=ATTACKER)


for _mode in (AS, RS, BS):
    _accept(
        "golden",
        _mode.slug,
        f"Golden Okta-shaped Response, {_mode.value}",
        lambda ctx, m=_mode: ctx.golden_xml(m),
        _mode,
    )
    _accept(
        "golden",
        f"encrypted-{_mode.slug}",
        f"Okta layout: EncryptedAssertion, aes256-cbc, rsa-oaep-mgf1p, {_mode.value}",
        lambda ctx, m=_mode: serialize(ctx.encrypted(m)),
        _mode,
    )
_accept(
    "golden",
    "encrypted-aes128-gcm-bs",
    "EncryptedAssertion with aes128-gcm",
    lambda ctx: serialize(ctx.encrypted(BS, data_algorithm=X.AES128_GCM)),
    BS,
)


def _bytes_edit(edit: Callable[[bytes], bytes], mode: Mode = BS) -> Build:
    def build(ctx: Context) -> bytes:
        edited = edit(ctx.golden_xml(mode))
        return edited

    return build


def _crlf(ctx: Context) -> bytes:
    """Pretty-printed before signing, then sent with CRLF line ends (parsers normalise them)."""
    response = ctx.tree()
    etree.indent(response)
    return serialize(sign_mode(response, BS, ctx.signer)).replace(b"\n", b"\r\n")


def _single_quotes(xml: bytes) -> bytes:
    head, body = xml.split(b"?>", 1)
    return head + b"?>" + re.sub(rb'(\s[\w:]+)="([^"\']*)"', rb"\1='\2'", body)


def _reorder_attributes(xml: bytes) -> bytes:
    match = re.search(rb"<saml2:SubjectConfirmationData ([^>]*?)/>", xml)
    assert match is not None
    attributes = re.findall(rb'[\w:]+="[^"]*"', match.group(1))
    return xml.replace(match.group(1), b" ".join(reversed(attributes)), 1)


for _slug, _title, _build in (
    ("crlf-line-ends", "pretty-printed and sent with CRLF line ends", _crlf),
    ("single-quoted-attributes", "every attribute single-quoted", _bytes_edit(_single_quotes)),
    (
        "standalone-declaration",
        'XML declaration with standalone="yes"',
        _bytes_edit(
            lambda x: x.replace(b'encoding="UTF-8"?>', b'encoding="UTF-8" standalone="yes"?>', 1)
        ),
    ),
    ("no-declaration", "no XML declaration", _bytes_edit(lambda x: x[len(XML_DECLARATION) :])),
    ("utf-8-bom", "a UTF-8 byte order mark", _bytes_edit(lambda x: b"\xef\xbb\xbf" + x)),
    (
        "redundant-namespace-declaration",
        "a redundant xmlns:saml2 on the NameID",
        _bytes_edit(
            lambda x: x.replace(
                b"<saml2:NameID ", b'<saml2:NameID xmlns:saml2="' + X.NS_SAML.encode() + b'" ', 1
            )
        ),
    ),
    (
        "attribute-order",
        "SubjectConfirmationData attributes in reverse order",
        _bytes_edit(_reorder_attributes),
    ),
    (
        "numeric-character-reference",
        "the NameID's first letter as &#97;",
        _bytes_edit(
            lambda x: x.replace(
                b">alice@example.com</saml2:NameID>", b">&#97;lice@example.com</saml2:NameID>", 1
            )
        ),
    ),
):
    _accept("50", _slug, f"Legal serialisation variant: {_title}", _build, BS)

for _slug, _title, _edit in (
    (
        "not-on-or-after-skew-minus-1s",
        "Conditions NotOnOrAfter = now - clock_skew + 1 s",
        at(CONDITIONS, "NotOnOrAfter", shifted(-SKEW + 1)),
    ),
    (
        "not-before-at-skew",
        "Conditions NotBefore = now + clock_skew",
        at(CONDITIONS, "NotBefore", shifted(SKEW)),
    ),
    (
        "session-not-on-or-after-plus-1s",
        "SessionNotOnOrAfter = now + 1 s",
        at(AUTHN, "SessionNotOnOrAfter", shifted(1)),
    ),
    (
        "confirmation-not-on-or-after-skew-minus-1s",
        "SubjectConfirmationData NotOnOrAfter = now - clock_skew + 1 s",
        at(SCD, "NotOnOrAfter", shifted(-SKEW + 1)),
    ),
    (
        "issue-instant-skew-ahead",
        "Assertion IssueInstant = now + clock_skew",
        at(".//saml2:Assertion", "IssueInstant", shifted(SKEW)),
    ),
    (
        "instants-without-milliseconds",
        "instants without milliseconds",
        at(CONDITIONS, "NotOnOrAfter", lambda ctx: ctx.instant(300).replace(".000Z", "Z")),
    ),
):
    _accept("59", f"boundary-{_slug}", f"Time window edge: {_title}", resigned(_edit), BS)
