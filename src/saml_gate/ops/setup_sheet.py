"""The IdP setup sheet: every value an IdP admin types or pastes, computed from the settings.

Each row names the SAML field as any IdP knows it first, then where Okta has it. Shown by
``saml-gate setup`` and served at ``{prefix}/setup``. Every value here is public (it is in the SP
metadata anyway); no secret is ever part of the sheet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from saml_gate.config.settings import GateSettings
from saml_gate.saml import xmlconst as X
from saml_gate.saml.outgoing import signs_authn_requests

_NAME_ID_FORMATS = {
    X.NAMEID_EMAIL: "EmailAddress",
    X.NAMEID_UNSPECIFIED: "Unspecified",
    X.NAMEID_PERSISTENT: "Persistent",
    X.NAMEID_TRANSIENT: "Transient",
}


@dataclass(frozen=True)
class SheetRow:
    """One value: the field as SAML (any IdP) calls it, the value, a note, Okta's field."""

    field: str
    value: str
    note: str = ""
    okta: str = ""


#: Where Okta's fields are, said once at the top of the sheet.
OKTA_PLACE = "Okta: Applications → your SAML app → General → SAML Settings → Edit"


#: Where Okta keeps an app's Universal Logout settings (Identity Threat Protection).
ULO_PLACE = "the app's Authentication tab → Logout → Edit → Global Token Revocation"


def universal_logout_rows(s: GateSettings) -> tuple[SheetRow, ...]:
    """What to enter in Okta's Universal Logout settings (on or off: the rows say which)."""
    on = s.universal_logout_issuer is not None
    state = (
        f"On: signed by {s.universal_logout_issuer}'s keys ({s.universal_logout_keys_shown})."
        if on
        else "Off: set universal_logout_issuer to the IdP organisation's URL"
        " (https://acme.okta.com) to turn it on; until then this URL answers 404."
    )
    return (
        SheetRow(
            "Universal Logout endpoint",
            s.universal_logout_url,
            "The IdP's server POSTs here to end every session of a person at once (deactivated,"
            " sessions cleared, a risk detected). " + state,
            f"{ULO_PLACE}: 'Okta system or admin initiates logout'; Logout endpoint URL"
            " (Integration Wizard: Global token revocation endpoint)",
        ),
        SheetRow(
            "Universal Logout authentication",
            "Signed JWT",
            "Checked against the org's published keys: issuer, this endpoint as audience, a"
            " 5-minute lifetime, each token once"
            + (f", the app {s.universal_logout_app_id}." if s.universal_logout_app_id else "."),
            f"{ULO_PLACE}: Endpoint authentication type Signed JWT (SIGNED_JWT)",
        ),
        SheetRow(
            "Universal Logout subject format",
            "Email Identifier, or Issuer and Subject Identifier",
            f"Email: the person's email ({s.email_attribute}, or an email-shaped NameID),"
            " matched case-insensitively. Issuer and Subject: the IdP's entity ID and the"
            " NameID, exactly.",
            f"{ULO_PLACE}: Subject format type",
        ),
    )


@dataclass(frozen=True)
class SetupSheet:
    rows: tuple[SheetRow, ...]
    certificate_pem: str
    metadata_url: str
    warnings: tuple[str, ...] = ()
    """What looks wrong in the settings the values derive from (fix it before entering them)."""

    @classmethod
    def build(
        cls, settings: GateSettings, sp_cert_pem: bytes, sign_requests: bool | None = None
    ) -> SetupSheet:
        """``sign_requests``: whether AuthnRequests are signed (None: as the settings say,
        before any IdP metadata is known)."""
        s = settings
        if sign_requests is None:
            sign_requests = signs_authn_requests(s, idp_wants_signed=False)
        allowed = ", ".join(s.authorized_groups)
        groups_note = "Narrow it to the groups that matter" + (
            f" (authorized_groups: {allowed})." if allowed else "."
        )
        rows = (
            SheetRow(
                "Assertion Consumer Service (ACS) URL",
                s.acs_url,
                "Where the IdP posts its Response (HTTP-POST); also the Recipient and Destination.",
                "Single sign-on URL; tick 'Use this for Recipient URL and Destination URL'",
            ),
            SheetRow(
                "SP entity ID (Audience)",
                s.entity_id,
                okta="Audience URI (SP Entity ID)",
            ),
            SheetRow(
                "Default RelayState (IdP-initiated sign-in)",
                "/" if s.allow_idp_initiated else "(leave empty)",
                "Where a sign-in started at the IdP (a dashboard tile) lands: allow_idp_initiated"
                " is " + ("on." if s.allow_idp_initiated else "off, so such sign-ins are refused."),
                "Default RelayState",
            ),
            SheetRow(
                "NameID format",
                _NAME_ID_FORMATS.get(s.name_id_format, s.name_id_format),
                "The NameID is the person's email address.",
                "Name ID format; Application username: Email",
            ),
            SheetRow(
                "Attributes",
                f"{s.email_attribute} = the email address; {s.name_attribute} = the display name",
                "Name format: Unspecified.",
                f"Attribute statements: {s.email_attribute} → user.email,"
                f" {s.name_attribute} → user.displayName",
            ),
            SheetRow(
                "Group attribute",
                f"{s.groups_attribute} = the person's groups, one value each",
                groups_note,
                f"Group attribute statements: name '{s.groups_attribute}', filter Matches regex .*",
            ),
            SheetRow(
                "Signatures",
                "Response and Assertion signed, RSA-SHA256 / SHA-256",
                okta="Show Advanced Settings: Response Signed, Assertion Signature Signed",
            ),
            SheetRow(
                "Signed AuthnRequests",
                "Yes: AuthnRequests are signed (RSA-SHA256)"
                if sign_requests
                else "No: AuthnRequests are not signed",
                "Give the IdP the certificate below as the SP's signing certificate."
                if sign_requests
                else "An IdP that has the SP certificate may demand signed requests: set sp_key"
                " (saml-gate keygen) or sign_authn_requests to sign them.",
                "Show Advanced Settings: Signed Requests "
                + (
                    "ticked, the certificate below as Signature Certificate"
                    if sign_requests
                    else "unticked"
                ),
            ),
            SheetRow(
                "Assertion encryption",
                "Optional: AES-256-GCM, RSA-OAEP",
                "With the certificate below as the SP's encryption certificate.",
                "Show Advanced Settings: Assertion Encryption Encrypted, Encryption Certificate",
            ),
            SheetRow(
                "Single Logout URL",
                s.slo_url,
                "Logout messages to the SP; its issuer is the SP entity ID above. Signed with"
                " the certificate below.",
                "Show Advanced Settings: Enable Single Logout; SP Issuer = the Audience URI;"
                " the certificate below as Signature Certificate",
            ),
            *universal_logout_rows(s),
            SheetRow(
                "SP metadata",
                s.metadata_url,
                "An IdP that imports SP metadata (a URL or a file) reads the values above from it.",
            ),
            SheetRow(
                "Then",
                "The IdP's metadata URL (or a saved copy) → idp_metadata",
                "Give it to saml-gate (--idp-metadata / SAML_GATE_IDP_METADATA), and let the"
                " people or groups who should get in use the application at the IdP.",
                "Sign On tab → 'Metadata URL'; Assignments tab",
            ),
        )
        return cls(
            rows=rows,
            certificate_pem=sp_cert_pem.decode(),
            metadata_url=s.metadata_url,
            warnings=tuple(message for _, message in s.base_url_warnings()),
        )

    def as_text(self) -> str:
        width = max(len(r.field) for r in self.rows)
        pad = " " * width
        lines = [f"WARNING: {w}" for w in self.warnings]
        lines += [
            *([""] if self.warnings else []),
            "IdP setup for this gate: enter these values in the IdP's SAML application",
            f"({OKTA_PLACE}; each value's Okta field is below it).",
            "",
        ]
        for row in self.rows:
            lines.append(f"  {row.field.ljust(width)}  {row.value}")
            if row.note:
                lines.append(f"  {pad}  {row.note}")
            if row.okta:
                lines.append(f"  {pad}  Okta: {row.okta}")
        lines += [
            "",
            "SP certificate (signed requests, encryption and Single Logout):",
            "",
            self.certificate_pem.strip(),
            "",
        ]
        return "\n".join(lines)

    def as_html(self) -> str:
        warnings = "".join(f"<p class=detail>{html.escape(w)}</p>" for w in self.warnings)
        rows = "".join(
            f"<tr><th>{html.escape(r.field)}</th><td><code>{html.escape(r.value)}</code>"
            + (f"<div class=muted>{html.escape(r.note)}</div>" if r.note else "")
            + (f"<div class=muted>Okta: {html.escape(r.okta)}</div>" if r.okta else "")
            + "</td></tr>"
            for r in self.rows
        )
        return (
            f"<h1>IdP setup</h1>{warnings}<p>Enter these values in the IdP's SAML application"
            f" ({html.escape(OKTA_PLACE)}; each value's Okta field is below it).</p>"
            f"<table class=sheet>{rows}</table>"
            "<h2>SP certificate</h2><p>For signed requests, assertion encryption and signed"
            " Single Logout:</p>"
            f"<pre>{html.escape(self.certificate_pem.strip())}</pre>"
        )
