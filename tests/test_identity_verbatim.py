"""A signed identity is read verbatim: never trimmed, folded or normalised, and refused when it
could pass for another one (issue 14, finding 10).

The verifier used to trim the NameID and every attribute value, so the IdP account
``admin@example.com `` signed in as ``admin@example.com`` and the group `` admins`` became
``admins``. Now the NameID and the values of the groups, email and name attributes are refused
(``identity_not_verbatim``) when they have leading or trailing whitespace (any Unicode
whitespace) or a control (Cc) or format (Cf) character anywhere; other attributes are data,
kept exactly as signed. Every test goes through the real ACS.
"""

from __future__ import annotations

import html
from typing import Any

import pytest

from saml_gate.errors import ERRORS
from tests.support import Harness
from tests.test_acs_refusals import refused_login

pytestmark = pytest.mark.anyio

#: (label, value): a look-alike of ``admins`` / ``admin@example.com`` for each kind of character.
WHITESPACE_AT_ENDS = [
    ("leading-space", " {}"),
    ("trailing-space", "{} "),
    ("trailing-tab", "{}\t"),
    ("leading-newline", "\n{}"),
    ("trailing-cr", "{}\r"),  # serialised as &#13;, so the parser keeps it
    ("trailing-nbsp", "{}\u00a0"),
    ("leading-ideographic-space", "\u3000{}"),
    ("trailing-line-separator", "{}\u2028"),
    ("trailing-nel", "{}\u0085"),
    ("leading-en-quad", "\u2000{}"),
]
CONTROL_OR_FORMAT_INSIDE = [
    ("tab-inside", "ad\tmin{}"),
    ("del-inside", "ad\x7fmin{}"),
    ("c1-control-inside", "ad\x9bmin{}"),
    ("zero-width-space", "ad\u200bmin{}"),
    ("zero-width-non-joiner", "ad\u200cmin{}"),
    ("zero-width-joiner", "ad\u200dmin{}"),
    ("word-joiner", "ad\u2060min{}"),
    ("bom-leading", "\ufeff{}"),
    ("right-to-left-override", "{}\u202etxt.exe"),
    ("left-to-right-isolate", "\u2066{}\u2069"),
    ("arabic-letter-mark", "ad\u061cmin{}"),
    ("soft-hyphen", "ad\u00admin{}"),
    ("tag-character", "{}\U000e0041"),
]
BAD_VALUES = WHITESPACE_AT_ENDS + CONTROL_OR_FORMAT_INSIDE
ATTRIBUTES = {
    "email": ["alice@example.com"],
    "displayName": ["Alice Admin"],
    "groups": ["admins", "users"],
}


def bad(template: str, base: str) -> str:
    return template.format(base)


@pytest.mark.parametrize(("label", "template"), BAD_VALUES, ids=[v[0] for v in BAD_VALUES])
async def test_name_id_with_hidden_characters_is_refused(
    harness: Harness, label: str, template: str
) -> None:
    await refused_login(harness, "identity_not_verbatim", name_id=bad(template, "@example.com"))


@pytest.mark.parametrize(("label", "template"), BAD_VALUES, ids=[v[0] for v in BAD_VALUES])
async def test_group_with_hidden_characters_is_refused(
    harness: Harness, label: str, template: str
) -> None:
    groups = ["users", bad(template, "s")]
    await refused_login(
        harness, "identity_not_verbatim", attributes={**ATTRIBUTES, "groups": groups}
    )


@pytest.mark.parametrize(
    ("label", "template"),
    [WHITESPACE_AT_ENDS[1], WHITESPACE_AT_ENDS[5], CONTROL_OR_FORMAT_INSIDE[3]],
    ids=["trailing-space", "trailing-nbsp", "zero-width-space"],
)
@pytest.mark.parametrize("attribute", ["email", "displayName"])
async def test_email_and_name_with_hidden_characters_are_refused(
    harness: Harness, label: str, template: str, attribute: str
) -> None:
    value = bad(template, "@example.com")
    await refused_login(
        harness, "identity_not_verbatim", attributes={**ATTRIBUTES, attribute: [value]}
    )


async def test_configured_attribute_names_are_the_ones_checked(make_harness: Any) -> None:
    """groups_attribute / email_attribute / name_attribute name the identity attributes."""
    h = make_harness(groups_attribute="memberOf", email_attribute="mail", name_attribute="cn")
    for name in ("memberOf", "mail", "cn"):
        await refused_login(h, "identity_not_verbatim", attributes={name: ["x "]})
    # Under these settings, the default names are ordinary data: kept verbatim, not refused.
    r = await h.login(attributes={"groups": [" admins"], "email": ["a@example.com "]})
    assert r.status_code == 303, r.text
    me = (await h.client.get("/saml/session")).json()
    assert me["groups"] == []
    assert me["attributes"]["groups"] == [" admins"]
    assert me["attributes"]["email"] == ["a@example.com "]


async def test_refusal_page_names_the_code_and_the_fix(harness: Harness) -> None:
    request_id, relay = await harness.start_login()
    spec = harness.spec(in_response_to=request_id, name_id="admin@example.com ")
    r = await harness.post_acs(harness.response_b64(spec), relay)
    assert r.status_code == 400
    assert "<code>identity_not_verbatim</code>" in r.text
    assert html.escape(ERRORS["identity_not_verbatim"].hint) in r.text


async def test_inner_spaces_and_non_ascii_letters_pass_verbatim(harness: Harness) -> None:
    attributes = {
        "email": ["zoë@example.com"],
        "displayName": ["Zoë Ångström-Łukasiewicz"],
        "groups": ["Finance EMEA", "Zoë's team", "管理者", "Finance\u00a0EMEA"],
    }
    r = await harness.login(name_id="zoë.ångström@example.com", attributes=attributes)
    assert r.status_code == 303, r.text
    me = (await harness.client.get("/saml/session")).json()
    assert me["name_id"] == "zoë.ångström@example.com"
    assert me["email"] == "zoë@example.com"
    assert me["name"] == "Zoë Ångström-Łukasiewicz"
    # Two groups that differ only in the kind of space stay two groups.
    assert me["groups"] == ["Finance EMEA", "Zoë's team", "管理者", "Finance\u00a0EMEA"]


async def test_a_look_alike_group_grants_nothing(make_harness: Any) -> None:
    """Nothing folds ``Finance\u00a0EMEA`` (no-break space) into the allowed ``Finance EMEA``."""
    h = make_harness(authorized_groups=["Finance EMEA"])
    r = await h.login(attributes={**ATTRIBUTES, "groups": ["Finance\u00a0EMEA"]})
    assert r.status_code == 303, r.text
    page = await h.client.get("/private/page", headers={"accept": "application/json"})
    assert page.status_code == 403
    assert page.json()["error"] == "forbidden"


async def test_other_attributes_are_kept_verbatim(harness: Harness) -> None:
    """Attributes the gate does not read as identity are data: neither refused nor trimmed."""
    department = ["  Sales  ", "R&D\nLab", "\u200bmarker", "\ttabbed"]
    r = await harness.login(attributes={**ATTRIBUTES, "department": department})
    assert r.status_code == 303, r.text
    me = (await harness.client.get("/saml/session")).json()
    assert me["attributes"]["department"] == department


async def test_encrypted_assertion_is_checked_the_same(harness: Harness) -> None:
    encrypted = {"encrypt_to": harness.sp_keys.cert_pem}
    await refused_login(
        harness, "identity_not_verbatim", issue=encrypted, name_id="admin@example.com\u200b"
    )
    request_id, relay = await harness.start_login()
    spec = harness.spec(in_response_to=request_id, name_id="zoë@example.com")
    r = await harness.post_acs(harness.response_b64(spec, **encrypted), relay)
    assert r.status_code == 303, r.text
    assert (await harness.client.get("/saml/session")).json()["name_id"] == "zoë@example.com"


async def test_blank_name_id_is_refused(harness: Harness) -> None:
    await refused_login(harness, "identity_not_verbatim", name_id="   ")
    await refused_login(harness, "bad_subject", name_id="")
