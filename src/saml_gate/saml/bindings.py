"""How a SAML message arrives: the bytes of an HTTP-POST or HTTP-Redirect binding's value,
decoded with a bound on their size before any XML is parsed."""

from __future__ import annotations

import base64
import binascii
import zlib

from saml_gate.errors import GateError


def decode_post_value(value: str, max_bytes: int) -> bytes:
    """Base64-decode an HTTP-POST SAMLResponse, refusing anything over ``max_bytes``."""
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise GateError("response_too_large", f"{len(value)} encoded bytes")
    compact = "".join(value.split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GateError("malformed_response", "SAMLResponse is not valid base64") from exc
    if len(data) > max_bytes:
        raise GateError("response_too_large", f"{len(data)} bytes")
    if not data.strip():
        raise GateError("malformed_response", "SAMLResponse is empty")
    return data


def inflate_redirect_value(value: str, max_bytes: int) -> bytes:
    """Base64-decode and inflate a Redirect-binding message, never beyond ``max_bytes``."""
    try:
        compressed = base64.b64decode(value, validate=True)
        inflater = zlib.decompressobj(-15)
        data = inflater.decompress(compressed, max_bytes)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise GateError("slo_invalid", "the message is not deflated base64") from exc
    if inflater.unconsumed_tail:
        raise GateError("response_too_large", f"the logout message inflates past {max_bytes} B")
    return data
