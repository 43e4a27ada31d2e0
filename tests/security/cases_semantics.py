"""Catalogue A.5: protocol and semantic validation (cases 54-65). The signatures are valid (the
messages are re-signed with the real IdP key); only the semantic checks can refuse them.

Time cases run under the frozen clock with the gate's default ``clock_skew`` of 90 s and
Okta's 5-minute validity windows; each moves one instant and leaves the others valid.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from saml_gate.saml import xmlconst as X
from tests.security.corpus import Build, Policy, Registry, Transport
from tests.security.forge import (
    ATTACKER,
    ATTRIBUTES,
    VICTIM,
    Context,
    Mode,
    assertion_of,
    one,
    q,
    serialize,
    sign_mode,
    xp,
)

R = Registry()
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS
SKEW = 90
YEAR = 365 * 86400
OTHER_ACS = "https://other-app.example/saml/acs"
Edit = Callable[[etree._Element, Context], None]


def resigned(edit: Edit, mode: Mode = BS, **spec: object) -> Build:
    """Build the golden tree, edit it, sign it with the real IdP key."""

    def build(ctx: Context) -> bytes:
        response = ctx.tree(**spec)
        edit(response, ctx)
        return serialize(sign_mode(response, mode, ctx.signer))

    return build


def at(path: str, attribute: str, value: str | Callable[[Context], str] | None) -> Edit:
    """Set (or with None remove) an attribute on every element the path finds."""

    def edit(response: etree._Element, ctx: Context) -> None:
        nodes = xp(response, path)
        assert nodes, path
        for node in nodes:
            if value is None:
                node.attrib.pop(attribute, None)
            else:
                node.set(attribute, value(ctx) if callable(value) else value)

    return edit


def shifted(seconds: float) -> Callable[[Context], str]:
    return lambda ctx: ctx.instant(seconds)


def both(*edits: Edit) -> Edit:
    def edit(response: etree._Element, ctx: Context) -> None:
        for each in edits:
            each(response, ctx)

    return edit


SCD = ".//saml2:SubjectConfirmationData"
CONDITIONS = ".//saml2:Conditions"
AUTHN = ".//saml2:AuthnStatement"
NAME_ID = ".//saml2:NameID"

# ------------------------------------------------------------------------------------ 54-56
R.case(
    "54",
    "replay-same-browser",
    "The same valid Response posted twice by the browser that signed in",
    lambda ctx: ctx.golden_xml(BS),
    codes=("unknown_request", "replayed"),
    mode=BS,
    transport=Transport(post_twice=True),
)
R.case(
    "54",
    "replay-pending-kept",
    "Posted twice by a browser that still holds the pending sign-in",
    lambda ctx: ctx.golden_xml(BS),
    codes=("replayed",),
    mode=BS,
    transport=Transport(post_twice=True, keep_pending=True),
)
R.case(
    "54",
    "replay-idp-initiated",
    "An IdP-initiated Response posted twice (allow_idp_initiated)",
    lambda ctx: ctx.golden_xml(BS, in_response_to=None),
    codes=("replayed",),
    mode=BS,
    policy=Policy(allow_idp_initiated=True),
    transport=Transport(post_twice=True),
    unsolicited=True,
)
R.case(
    "55",
    "unsolicited",
    "No InResponseTo anywhere (IdP-initiated) while allow_idp_initiated is off",
    lambda ctx: ctx.golden_xml(BS, in_response_to=None),
    codes=("unsolicited",),
    mode=BS,
)
R.case(
    "56",
    "unknown-request-id",
    "InResponseTo names a request nobody sent, re-signed",
    lambda ctx: ctx.golden_xml(BS, in_response_to="id-never-sent-0000"),
    codes=("unknown_request",),
    mode=BS,
)
R.case(
    "56",
    "request-of-another-browser",
    "A Response for a sign-in another browser started",
    lambda ctx: ctx.golden_xml(BS),
    codes=("unknown_request",),
    mode=BS,
    transport=Transport(other_browser=True),
)
R.case(
    "56",
    "subject-confirmation-irt-differs",
    "Response InResponseTo right, SubjectConfirmationData's different",
    resigned(at(SCD, "InResponseTo", "id-never-sent-0000")),
    codes=("unknown_request",),
    mode=BS,
)
R.case(
    "56",
    "only-response-irt",
    "InResponseTo on the Response only (SubjectConfirmationData lacks it)",
    resigned(at(SCD, "InResponseTo", None)),
    codes=("unknown_request",),
    mode=BS,
)
R.case(
    "56",
    "only-subject-confirmation-irt",
    "InResponseTo on SubjectConfirmationData only",
    resigned(at(".", "InResponseTo", None)),
    codes=("unknown_request",),
    mode=BS,
)
R.case(
    "56",
    "only-subject-confirmation-irt-as",
    "Assertion-signed: the unsigned Response's InResponseTo removed",
    resigned(at(".", "InResponseTo", None), AS),
    codes=("unknown_request",),
    mode=AS,
)

# ------------------------------------------------------------------------------------ 57-59
AUDIENCE = ".//saml2:Audience"
for _slug, _title, _value in (
    ("wrong", "another SP's entity ID", "https://other-app.example/saml/metadata"),
    ("empty", "empty", ""),
    ("case-differs", "this SP's entity ID in upper case", "HTTP://127.0.0.1:8000/SAML/METADATA"),
    (
        "trailing-slash",
        "this SP's entity ID plus a trailing slash",
        "http://127.0.0.1:8000/saml/metadata/",
    ),
):
    R.case(
        "57",
        f"audience-{_slug}",
        f"Audience {_title}, re-signed",
        resigned(lambda r, c, v=_value: setattr(one(r, AUDIENCE), "text", v)),
        codes=("wrong_audience",),
        mode=BS,
    )


def _drop_restriction(response: etree._Element, ctx: Context) -> None:
    conditions = one(response, CONDITIONS)
    conditions.remove(one(conditions, "saml2:AudienceRestriction"))


def _second_restriction(response: etree._Element, ctx: Context) -> None:
    conditions = one(response, CONDITIONS)
    other = etree.SubElement(conditions, q("saml2", "AudienceRestriction"))
    etree.SubElement(other, q("saml2", "Audience")).text = "https://other-app.example/saml/metadata"


def _drop_conditions(response: etree._Element, ctx: Context) -> None:
    assertion = assertion_of(response)
    assertion.remove(one(assertion, "saml2:Conditions"))


R.case(
    "57",
    "audience-restriction-removed",
    "Conditions without AudienceRestriction, re-signed",
    resigned(_drop_restriction),
    codes=("bad_conditions",),
    mode=BS,
)
R.case(
    "57",
    "two-audience-restrictions",
    "Two AudienceRestrictions, only one naming this SP (errata E46)",
    resigned(_second_restriction),
    codes=("wrong_audience",),
    mode=BS,
)
R.case(
    "58",
    "conditions-removed",
    "No Conditions at all, re-signed",
    resigned(_drop_conditions),
    codes=("bad_conditions",),
    mode=BS,
)

for _slug, _title, _edit, _codes in (
    (
        "not-on-or-after-at-skew",
        "Conditions NotOnOrAfter = now - clock_skew (the boundary itself)",
        at(CONDITIONS, "NotOnOrAfter", shifted(-SKEW)),
        ("expired",),
    ),
    (
        "not-on-or-after-skew-plus-1s",
        "Conditions NotOnOrAfter = now - clock_skew - 1 s",
        at(CONDITIONS, "NotOnOrAfter", shifted(-SKEW - 1)),
        ("expired",),
    ),
    (
        "not-before-skew-plus-1s",
        "Conditions NotBefore = now + clock_skew + 1 s",
        at(CONDITIONS, "NotBefore", shifted(SKEW + 1)),
        ("not_yet_valid",),
    ),
    (
        "not-before-after-not-on-or-after",
        "NotBefore later than NotOnOrAfter, both within clock_skew of now",
        both(at(CONDITIONS, "NotBefore", shifted(60)), at(CONDITIONS, "NotOnOrAfter", shifted(30))),
        ("bad_conditions",),
    ),
    (
        "issue-instant-year-ago",
        "Response and Assertion IssueInstant a year ago (windows still open)",
        both(
            at(".", "IssueInstant", shifted(-YEAR)),
            at(".//saml2:Assertion", "IssueInstant", shifted(-YEAR)),
        ),
        ("expired",),
    ),
    (
        "issue-instant-year-ahead",
        "Response and Assertion IssueInstant a year ahead",
        both(
            at(".", "IssueInstant", shifted(YEAR)),
            at(".//saml2:Assertion", "IssueInstant", shifted(YEAR)),
        ),
        ("not_yet_valid",),
    ),
    (
        "session-not-on-or-after-now",
        "SessionNotOnOrAfter = now (no clock_skew: a session must not start ended)",
        at(AUTHN, "SessionNotOnOrAfter", shifted(0)),
        ("expired",),
    ),
    (
        "confirmation-not-on-or-after-at-skew",
        "SubjectConfirmationData NotOnOrAfter = now - clock_skew",
        at(SCD, "NotOnOrAfter", shifted(-SKEW)),
        ("expired",),
    ),
    (
        "instant-out-of-range",
        "AuthnInstant 9999-12-31T23:59:59-14:00 (out of datetime range)",
        at(AUTHN, "AuthnInstant", "9999-12-31T23:59:59-14:00"),
        ("schema_invalid",),
    ),
    (
        "instant-year-one-offset",
        "Assertion IssueInstant 0001-01-01T00:00:00+01:00 (out of datetime range in UTC)",
        at(".//saml2:Assertion", "IssueInstant", "0001-01-01T00:00:00+01:00"),
        ("schema_invalid",),
    ),
    (
        "instant-utc-offset",
        "Conditions NotOnOrAfter written with +00:00 instead of Z",
        at(CONDITIONS, "NotOnOrAfter", lambda ctx: ctx.instant(300).replace("Z", "+00:00")),
        ("schema_invalid",),
    ),
    (
        "instant-without-zone",
        "Conditions NotOnOrAfter without a time zone (local time)",
        at(CONDITIONS, "NotOnOrAfter", lambda ctx: ctx.instant(300).replace("Z", "")),
        ("schema_invalid",),
    ),
):
    R.case("59", _slug, f"{_title}, re-signed", resigned(_edit), codes=_codes, mode=BS)

# ------------------------------------------------------------------------------------ 60-62
for _slug, _title, _edit, _codes in (
    (
        "expired-hour-ago",
        "NotOnOrAfter an hour ago",
        at(SCD, "NotOnOrAfter", shifted(-3600)),
        ("expired",),
    ),
    (
        "no-not-on-or-after",
        "no NotOnOrAfter on the bearer confirmation",
        at(SCD, "NotOnOrAfter", None),
        ("bad_subject",),
    ),
    (
        "not-before-present",
        "a NotBefore (forbidden for bearer by the Web SSO profile)",
        at(SCD, "NotBefore", shifted(-10)),
        ("bad_subject",),
    ),
    (
        "not-before-future",
        "a NotBefore five minutes ahead",
        at(SCD, "NotBefore", shifted(300)),
        ("bad_subject", "not_yet_valid"),
    ),
):
    R.case(
        "60",
        f"confirmation-{_slug}",
        f"SubjectConfirmationData with {_title}, re-signed",
        resigned(_edit),
        codes=_codes,
        mode=BS,
    )


def _drop_confirmation_data(response: etree._Element, ctx: Context) -> None:
    confirmation = one(response, ".//saml2:SubjectConfirmation")
    confirmation.remove(one(confirmation, "saml2:SubjectConfirmationData"))


R.case(
    "60",
    "confirmation-without-data",
    "A bearer SubjectConfirmation without data, re-signed",
    resigned(_drop_confirmation_data),
    codes=("bad_subject",),
    mode=BS,
)

for _slug, _value in (
    ("another-path", "http://127.0.0.1:8000/saml/acs2"),
    ("another-sp", OTHER_ACS),
    ("https-instead-of-http", "https://127.0.0.1:8000/saml/acs"),
    ("path-case-differs", "http://127.0.0.1:8000/SAML/acs"),
    ("extra-query", "http://127.0.0.1:8000/saml/acs?x=1"),
):
    R.case(
        "61",
        f"recipient-{_slug}",
        f"Recipient {_value}, re-signed",
        resigned(at(SCD, "Recipient", _value)),
        codes=("wrong_recipient",),
        mode=BS,
    )
R.case(
    "61",
    "recipient-missing",
    "No Recipient on the bearer confirmation, re-signed",
    resigned(at(SCD, "Recipient", None)),
    codes=("wrong_recipient",),
    mode=BS,
)

R.case(
    "62",
    "destination-another-sp",
    "Destination another SP's ACS, re-signed",
    resigned(at(".", "Destination", OTHER_ACS)),
    codes=("wrong_destination",),
    mode=BS,
)
R.case(
    "62",
    "destination-removed",
    "Destination removed from a signed Response",
    resigned(at(".", "Destination", None)),
    codes=("wrong_destination",),
    mode=BS,
)
R.case(
    "62",
    "destination-empty",
    "Destination empty, re-signed",
    resigned(at(".", "Destination", "")),
    codes=("wrong_destination",),
    mode=BS,
)

# ------------------------------------------------------------------------------------ 63-65
_OTHER_APP = dict(destination=OTHER_ACS, audience="https://other-app.example/saml/metadata")
R.case(
    "63",
    "response-for-another-app",
    "A genuine Response issued for another app of the same IdP",
    lambda ctx: ctx.golden_xml(BS, **_OTHER_APP),
    codes=("wrong_destination",),
    mode=BS,
)
R.case(
    "63",
    "assertion-for-another-app",
    "A genuine assertion-signed Response for another app, Destination removed",
    resigned(at(".", "Destination", None), AS, **_OTHER_APP),
    codes=("wrong_recipient",),
    mode=AS,
)

_METHOD = ".//saml2:SubjectConfirmation"


def _holder_of_key(response: etree._Element, ctx: Context) -> None:
    one(response, _METHOD).set("Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
    data = one(response, SCD)
    data.set("{http://www.w3.org/2001/XMLSchema-instance}type", "saml2:KeyInfoConfirmationDataType")
    key_info = etree.SubElement(data, q("ds", "KeyInfo"))
    etree.SubElement(key_info, q("ds", "KeyName")).text = "attacker"


for _slug, _title, _edit, _codes in (
    (
        "sender-vouches",
        "sender-vouches",
        at(_METHOD, "Method", "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"),
        ("bad_subject",),
    ),
    (
        "holder-of-key",
        "holder-of-key with a KeyInfo and no proof of possession",
        _holder_of_key,
        ("bad_subject",),
    ),
    (
        "unknown-method",
        "an unknown method URI",
        at(_METHOD, "Method", "urn:x-attacker:cm:trust-me"),
        ("bad_subject",),
    ),
    ("no-method", "no Method", at(_METHOD, "Method", None), ("schema_invalid",)),
):
    R.case(
        "64",
        f"confirmation-method-{_slug}",
        f"SubjectConfirmation Method: {_title}, re-signed",
        resigned(_edit),
        codes=_codes,
        mode=BS,
    )

for _slug, _title, _edit, _codes in (
    (
        "empty-name-id",
        "an empty NameID",
        lambda r, c: setattr(one(r, NAME_ID), "text", None),
        ("bad_subject",),
    ),
    (
        "blank-name-id",
        "a NameID of blanks",
        lambda r, c: setattr(one(r, NAME_ID), "text", "   "),
        ("identity_not_verbatim",),
    ),
    (
        "transient-name-id",
        "a transient NameID while emailAddress is configured",
        at(NAME_ID, "Format", X.NAMEID_TRANSIENT),
        ("name_id_format",),
    ),
    (
        "sp-name-qualifier-other-sp",
        "SPNameQualifier naming another SP",
        at(NAME_ID, "SPNameQualifier", "https://other-app.example/saml/metadata"),
        ("bad_subject",),
    ),
    (
        "response-version-1-1",
        'Response Version="1.1"',
        at(".", "Version", "1.1"),
        ("schema_invalid",),
    ),
    (
        "assertion-version-3-0",
        'Assertion Version="3.0"',
        at(".//saml2:Assertion", "Version", "3.0"),
        ("schema_invalid",),
    ),
):
    R.case("65", _slug, f"Identity: {_title}, re-signed", resigned(_edit), codes=_codes, mode=BS)

for _slug, _title, _signed, _read in (
    (
        "name-id-case-differs",
        "the victim's address in another case",
        VICTIM.upper(),
        VICTIM.upper(),
    ),
    (
        "name-id-homoglyph",
        "a Cyrillic homoglyph",
        "\u0430dmin@example.com",
        "\u0430dmin@example.com",
    ),
):
    R.case(
        "65",
        _slug,
        f"Identity: {_title} is read verbatim, never folded into another account",
        lambda ctx, n=_signed: ctx.golden_xml(BS, name_id=n),
        mode=BS,
        outcome="verbatim_name_id",
        name_id=_read,
    )

# A signed identity that could pass for another is refused, never trimmed or normalised: the
# gate used to trim the NameID, so the IdP account "victim " signed in as "victim".
for _slug, _title, _name_id, _attributes in (
    ("name-id-trailing-space", "a trailing space", VICTIM + " ", {}),
    ("name-id-leading-newline", "a leading newline", "\n" + VICTIM, {}),
    ("name-id-zero-width", "a zero-width space inside", "admin\u200b@example.com", {}),
    ("name-id-bidi-override", "a right-to-left override", VICTIM + "\u202emoc.live", {}),
    ("name-id-nbsp-trailing", "a trailing no-break space", VICTIM + "\u00a0", {}),
    ("group-leading-space", "a group ' admins'", ATTACKER, {"groups": [" admins"]}),
    ("group-bom", "a group 'admins' behind a BOM", ATTACKER, {"groups": ["\ufeffadmins"]}),
    ("group-tab-inside", "a group with a tab inside", ATTACKER, {"groups": ["ad\tmins"]}),
    (
        "email-trailing-nel",
        "an email attribute ending in NEL (U+0085)",
        ATTACKER,
        {"email": [VICTIM + "\x85"]},
    ),
    (
        "name-zero-width-joiner",
        "a displayName with a zero-width joiner",
        ATTACKER,
        {"displayName": ["Ad\u200dmin"]},
    ),
):
    R.case(
        "65",
        _slug,
        f"Identity: {_title}, signed by the IdP, is refused rather than trimmed or read",
        lambda ctx, n=_name_id, a=_attributes: ctx.golden_xml(
            BS, name_id=n, attributes={**ATTRIBUTES, **a}
        ),
        codes=("identity_not_verbatim",),
        mode=BS,
    )
