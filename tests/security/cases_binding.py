"""Catalogue A.7 (case 68): RelayState and binding abuse at the ACS; and A.8's metadata note
(an encryption-only key must never verify a signature).

These run through the ACS only: the oracles have no RelayState or HTTP handling to compare.
"""

from __future__ import annotations

from urllib.parse import quote

from tests.security.corpus import Policy, Registry, Transport
from tests.security.forge import Context, Mode

R = Registry()
BS = Mode.BS
IDP_INITIATED = Policy(allow_idp_initiated=True)


def _unsolicited(ctx: Context) -> bytes:
    return ctx.golden_xml(BS, in_response_to=None)


def _solicited(ctx: Context) -> bytes:
    return ctx.golden_xml(BS)


for _slug, _relay in (
    ("absolute-url", "https://evil.example/"),
    ("scheme-relative", "//evil.example"),
    ("backslash", "/\\evil.example"),
    ("scheme-without-slashes", "https:evil.example"),
    ("javascript", "javascript:alert(1)"),
    ("data-url", "data:text/html,<script>alert(1)</script>"),
    ("percent-encoded", "%2F%2Fevil.example"),
    ("percent-encoded-after-slash", "/%2F%2Fevil.example"),
    ("double-encoded", "/%252F%252Fevil.example"),
    ("crlf", "/ok\r\nSet-Cookie: injected=1"),
):
    R.case(
        "68",
        f"relay-state-{_slug}",
        f"IdP-initiated sign-in with RelayState {_relay!r}",
        _unsolicited,
        codes=("bad_relay_state",),
        mode=BS,
        policy=IDP_INITIATED,
        transport=Transport(relay_state=_relay),
        unsolicited=True,
    )

R.case(
    "68",
    "relay-state-foreign-for-solicited",
    "A solicited Response with a RelayState the gate did not issue",
    _solicited,
    codes=("bad_relay_state",),
    mode=BS,
    transport=Transport(relay_state="https://evil.example/"),
)
R.case(
    "68",
    "binding-get",
    "SAMLResponse delivered by GET",
    _solicited,
    codes=("method_not_allowed",),
    mode=BS,
    transport=Transport(method="GET"),
)
R.case(
    "68",
    "binding-duplicate-field",
    "Two SAMLResponse fields in one form",
    _solicited,
    codes=("bad_request",),
    mode=BS,
    transport=Transport(
        raw_form=lambda v: f"SAMLResponse={quote(v, safe='')}&SAMLResponse={quote(v, safe='')}"
    ),
)
R.case(
    "68",
    "binding-percent-encoded-field-name",
    "%53AMLResponse beside SAMLResponse (a name smuggled by percent-encoding)",
    _solicited,
    codes=("bad_request",),
    mode=BS,
    transport=Transport(raw_form=lambda v: f"%53AMLResponse={quote(v, safe='')}&SAMLResponse=x"),
)
R.case(
    "68",
    "binding-multipart",
    "SAMLResponse in a multipart/form-data body",
    _solicited,
    codes=("bad_request",),
    mode=BS,
    transport=Transport(
        content_type="multipart/form-data; boundary=b",
        raw_form=lambda v: (
            f'--b\r\nContent-Disposition: form-data; name="SAMLResponse"\r\n\r\n{v}\r\n--b--\r\n'
        ),
    ),
)
R.case(
    "68",
    "binding-query-string",
    "SAMLResponse in the query string of a POST whose form lacks it",
    _solicited,
    codes=("missing_saml_response",),
    mode=BS,
    transport=Transport(in_query=True),
)


@R.add(
    "A8",
    "encryption-only-key-signs",
    "Signed with the IdP key the metadata lists for encryption only",
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=BS,
    policy=Policy(metadata="encryption-only"),
)
def encryption_only_key(ctx: Context) -> bytes:
    return ctx.golden_xml(BS)
