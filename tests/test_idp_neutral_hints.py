"""Any IdP, not just Okta: every hint names the SAML field as any IdP knows it first and Okta's
place second, in parentheses; a 403 from an access rule names that rule's groups (and never
``authorized_groups`` when it is not set), through the real endpoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ERRORS
from saml_gate.ops.setup_sheet import SetupSheet

pytestmark = pytest.mark.anyio

SRC = Path(__file__).resolve().parent.parent / "src" / "saml_gate"


def outside_parentheses(text: str) -> str:
    """``text`` without its parenthesised parts (which may nest)."""
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", "", text)
    return text


def okta_asides(text: str) -> list[str]:
    return re.findall(r"\((?:[^()]|\([^()]*\))*\)", text)


def test_every_hint_names_okta_only_in_an_aside_after_the_neutral_field() -> None:
    settings = GateSettings.load(
        environ={}, base_url="https://app.example", idp_metadata="x.xml", secret_key="s" * 40
    )
    texts = {code: info.hint for code, info in ERRORS.items()}
    texts |= {f"public value {k}": v for k, v in settings.public_values.items()}
    mentions = 0
    for name, text in texts.items():
        assert "Okta" not in outside_parentheses(text), name
        assert not text.startswith("(") and "In Okta" not in text, name
        for aside in okta_asides(text):
            if "Okta" in aside:
                mentions += 1
                assert aside.startswith("(Okta: "), (name, aside)
    assert mentions >= 12  # the IdP fields still say where they are in Okta


def test_no_source_leads_with_okta() -> None:
    """The old "In Okta (General → ...) set ..." style is gone from every message."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"[\"']In Okta\b", path.read_text())
    ]
    assert offenders == []


def test_the_setup_sheet_names_the_saml_field_and_okta_separately() -> None:
    settings = GateSettings.load(
        environ={}, base_url="https://app.example", idp_metadata="x.xml", secret_key="s" * 40
    )
    sheet = SetupSheet.build(settings, b"-----BEGIN CERTIFICATE-----\n")
    fields = [row.field for row in sheet.rows]
    assert fields[:2] == ["Assertion Consumer Service (ACS) URL", "SP entity ID (Audience)"]
    assert not any("Okta" in row.field or "Okta" in row.note for row in sheet.rows)
    text = sheet.as_text()
    acs = text.index("Assertion Consumer Service (ACS) URL")
    assert acs < text.index("Okta: Single sign-on URL", acs)


async def refused(make_harness: Any, path: str, groups: list[str], **options: Any) -> Any:
    h = make_harness(**options)
    attributes = {"email": ["bob@example.com"], "groups": groups, "department": ["sales"]}
    assert (await h.login(path, attributes=attributes)).status_code == 303
    page = await h.client.get(path, headers={"accept": "text/html"})
    api = await h.client.get(path, headers={"accept": "application/json"})
    assert page.status_code == api.status_code == 403
    return page.text, api.json()


async def test_a_rule_refusal_names_the_rules_groups(make_harness: Any) -> None:
    page, body = await refused(
        make_harness, "/admin/x", ["users"], access_rules=["/admin/ groups=admins|ops"]
    )
    assert body["error"] == "forbidden"
    assert body["hint"].startswith("This page is for members of 'admins' or 'ops'.")
    assert "authorized_groups" not in body["hint"] and "authorized_groups" not in page
    assert "This page is for members of &#x27;admins&#x27; or &#x27;ops&#x27;." in page
    assert "<code>users</code>" in page  # and the person's own groups


async def test_authorized_groups_is_named_when_it_refuses(make_harness: Any) -> None:
    _, body = await refused(
        make_harness,
        "/admin/x",
        ["users"],
        authorized_groups=["staff"],
        access_rules=["/admin/ groups=admins"],
    )
    assert body["hint"].startswith("This application is for members of 'staff'")
    assert "(authorized_groups)" in body["hint"]
    # Past the floor, the rule's own groups decide, and are the ones named.
    _, body = await refused(
        make_harness,
        "/admin/x",
        ["staff"],
        authorized_groups=["staff"],
        access_rules=["/admin/ groups=admins"],
    )
    assert body["hint"].startswith("This page is for members of 'admins'.")


async def test_an_attribute_rule_names_the_attribute_not_its_values(make_harness: Any) -> None:
    _, body = await refused(
        make_harness,
        "/books/1",
        ["users"],
        access_rules=["/books/ attribute.department=finance|legal"],
    )
    assert body["hint"].startswith("This page needs a value of your 'department' attribute")
    assert "finance" not in body["hint"]
