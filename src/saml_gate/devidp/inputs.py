"""What the browser sends the development IdP, read within size limits and checked: form posts,
RelayState, and the SP's AuthnRequest (HTTP-Redirect or HTTP-POST binding)."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl

from lxml import etree
from starlette.requests import Request

from saml_gate.devidp.problems import CONTROL_RE, Problem, bad_request, short
from saml_gate.saml import xmlconst as X

MAX_BODY_BYTES: Final = 256 * 1024
MAX_SAML_REQUEST_CHARS: Final = 128 * 1024
MAX_AUTHN_REQUEST_BYTES: Final = 256 * 1024
MAX_RELAY_STATE_CHARS: Final = 2048

ID_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,255}")
"""A usable SAML ID (an xs:ID, bounded)."""


@dataclass(frozen=True)
class AuthnRequest:
    id: str
    force_authn: bool
    is_passive: bool = False
    """Answer without showing anything: for the person of the IdP session, or NoPassive."""


def checked_relay_state(value: str | None) -> str | None:
    """The RelayState to send back: None when absent or empty; refused when too long."""
    if value is None or value == "":
        return None
    if len(value) > MAX_RELAY_STATE_CHARS:
        raise bad_request(f"RelayState is longer than {MAX_RELAY_STATE_CHARS} characters.")
    if CONTROL_RE.search(value):
        raise bad_request("RelayState contains control characters.")
    return value


def decode_saml_request(value: str, *, deflated: bool) -> bytes:
    """Base64 (+ raw DEFLATE for HTTP-Redirect) to XML bytes, with size limits."""
    if len(value) > MAX_SAML_REQUEST_CHARS:
        raise bad_request("The SAMLRequest is too large.")
    # A "+" left unescaped in a query string arrives as a space.
    text = "".join(value.replace(" ", "+").split())
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("The SAMLRequest is not valid base64.") from None
    if not deflated:
        return raw
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(raw, MAX_AUTHN_REQUEST_BYTES)
    except zlib.error:
        raise bad_request(
            "The SAMLRequest is not DEFLATE-compressed as the HTTP-Redirect binding requires."
        ) from None
    if inflater.unconsumed_tail:
        raise bad_request("The SAMLRequest is too large once decompressed.")
    return xml


def parse_authn_request(xml: bytes, *, sp_entity_id: str, sp_acs_url: str) -> AuthnRequest:
    """The AuthnRequest's ID and ForceAuthn, once it is known to come from the trusted SP."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        raise bad_request("The SAMLRequest is not well-formed XML.") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise bad_request("The SAMLRequest contains a DOCTYPE, which is never allowed.")
    if root.tag != f"{{{X.NS_SAMLP}}}AuthnRequest":
        raise bad_request("The SAMLRequest is not a SAML 2.0 AuthnRequest.")
    request_id = root.get("ID") or ""
    if not ID_RE.fullmatch(request_id):
        raise bad_request("The AuthnRequest has no usable ID attribute.")
    issuer_el = root.find(f"{{{X.NS_SAML}}}Issuer")
    issuer = (issuer_el.text or "").strip() if issuer_el is not None else ""
    if issuer != sp_entity_id:
        raise bad_request(
            f"The AuthnRequest comes from {short(issuer) or 'no Issuer'!r}, but this "
            f"development IdP is set up for the SP {sp_entity_id!r}."
        )
    acs_url = root.get("AssertionConsumerServiceURL")
    if acs_url is not None and acs_url != sp_acs_url:
        raise bad_request(
            f"The AuthnRequest asks for the response at {short(acs_url)!r}, but the SP's "
            f"assertion consumer service is {sp_acs_url!r}."
        )
    binding = root.get("ProtocolBinding")
    if binding is not None and binding != X.BINDING_HTTP_POST:
        raise bad_request(
            f"The AuthnRequest asks for the {short(binding)!r} binding; the development "
            "IdP only answers with HTTP-POST."
        )
    force = (root.get("ForceAuthn") or "").strip() in ("true", "1")
    passive = (root.get("IsPassive") or "").strip() in ("true", "1")
    return AuthnRequest(id=request_id, force_authn=force, is_passive=passive)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict (first value of each name), at most MAX_BODY_BYTES."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        raise bad_request("Expected a form post (application/x-www-form-urlencoded).")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, "Request too large", "The form is too large.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=64
        )
    except (UnicodeDecodeError, ValueError):
        raise bad_request("The form could not be read.") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form
