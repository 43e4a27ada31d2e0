"""The Okta setup sheet: every value an Okta admin types or pastes, computed from the settings.

Shown by ``saml-gate setup`` and served at ``{prefix}/setup``. Every value here is public (it is
in the SP metadata anyway); no secret is ever part of the sheet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from saml_gate.config.settings import GateSettings
from saml_gate.saml import xmlconst as X
from saml_gate.saml.sp import signs_authn_requests

_NAME_ID_FORMATS = {
    X.NAMEID_EMAIL: "EmailAddress",
    X.NAMEID_UNSPECIFIED: "Unspecified",
    X.NAMEID_PERSISTENT: "Persistent",
    X.NAMEID_TRANSIENT: "Transient",
}


@dataclass(frozen=True)
class SheetRow:
    field: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class SetupSheet:
    rows: tuple[SheetRow, ...]
    certificate_pem: str
    metadata_url: str

    @classmethod
    def build(
        cls, settings: GateSettings, sp_cert_pem: bytes, sign_requests: bool | None = None
    ) -> SetupSheet:
        """``sign_requests``: whether AuthnRequests are signed (None: as the settings say,
        before any IdP metadata is known)."""
        s = settings
        if sign_requests is None:
            sign_requests = signs_authn_requests(s, idp_wants_signed=False)
        rows = (
            SheetRow(
                "Single sign-on URL",
                s.acs_url,
                "Tick 'Use this for Recipient URL and Destination URL'.",
            ),
            SheetRow("Audience URI (SP Entity ID)", s.entity_id),
            SheetRow(
                "Default RelayState",
                "/" if s.allow_idp_initiated else "(leave empty)",
                "Where Okta dashboard tiles land (allow_idp_initiated is "
                + ("on)." if s.allow_idp_initiated else "off: tiles are refused)."),
            ),
            SheetRow("Name ID format", _NAME_ID_FORMATS.get(s.name_id_format, s.name_id_format)),
            SheetRow("Application username", "Email"),
            SheetRow(
                "Attribute statements",
                f"{s.email_attribute} → user.email; {s.name_attribute} → user.displayName",
                "Name format: Unspecified.",
            ),
            SheetRow(
                "Group attribute statement",
                f"Name '{s.groups_attribute}', filter: Matches regex .*",
                "Narrow the filter to the groups that matter"
                + (
                    f" (authorized_groups: {', '.join(s.authorized_groups)})."
                    if s.authorized_groups
                    else "."
                ),
            ),
            SheetRow(
                "Response / Assertion Signature",
                "Signed / Signed",
                "Show Advanced Settings; Signature Algorithm RSA-SHA256, Digest SHA256.",
            ),
            SheetRow(
                "Signed Requests",
                "Ticked: AuthnRequests are signed (RSA-SHA256)"
                if sign_requests
                else "Unticked: AuthnRequests are not signed",
                "Show Advanced Settings; upload the certificate below as the Signature Certificate."
                if sign_requests
                else "An IdP that has the SP certificate may demand signed requests: set sp_key"
                " (saml-gate keygen) or sign_authn_requests to sign them.",
            ),
            SheetRow(
                "Assertion Encryption",
                "Optional: Encrypted, AES256-GCM, RSA-OAEP",
                "Upload the certificate below as the Encryption Certificate.",
            ),
            SheetRow(
                "Enable Single Logout",
                s.slo_url,
                "Single Logout URL; SP Issuer = the Audience URI above. Okta only accepts signed"
                " logout requests: upload the certificate below as the Signature Certificate.",
            ),
            SheetRow("SP metadata", s.metadata_url),
            SheetRow(
                "Then",
                "Sign On tab → Identity Provider metadata",
                "Give its URL (or the saved file) to saml-gate as idp_metadata"
                " (--idp-metadata / SAML_GATE_IDP_METADATA), and assign people or groups to"
                " the app (Assignments tab).",
            ),
        )
        return cls(rows=rows, certificate_pem=sp_cert_pem.decode(), metadata_url=s.metadata_url)

    def as_text(self) -> str:
        width = max(len(r.field) for r in self.rows)
        lines = ["Okta setup for this gate (General → SAML Settings → Edit):", ""]
        for row in self.rows:
            lines.append(f"  {row.field.ljust(width)}  {row.value}")
            if row.note:
                lines.append(f"  {' ' * width}  ({row.note})")
        lines += [
            "",
            "SP certificate (encryption and Single Logout signature):",
            "",
            self.certificate_pem.strip(),
            "",
        ]
        return "\n".join(lines)

    def as_html(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(r.field)}</th><td><code>{html.escape(r.value)}</code>"
            + (f"<div class=muted>{html.escape(r.note)}</div>" if r.note else "")
            + "</td></tr>"
            for r in self.rows
        )
        return (
            "<h1>Okta setup</h1><p>In Okta: Applications → your SAML app → General → SAML"
            " Settings → Edit. Enter these values:</p>"
            f"<table class=sheet>{rows}</table>"
            "<h2>SP certificate</h2><p>For assertion encryption and signed Single Logout:</p>"
            f"<pre>{html.escape(self.certificate_pem.strip())}</pre>"
        )
