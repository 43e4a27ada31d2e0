"""How a SAML message arrives: the bytes of an HTTP-POST or HTTP-Redirect binding's value,
decoded with a bound on their size before any XML is parsed.

An HTTP-POST value arrives form-encoded: :func:`decode_form_value` undoes that in the
verification child (see :mod:`saml_gate.web.forms` for why the web layer leaves it encoded).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import unquote_plus, unquote_to_bytes

from saml_gate.errors import GateError


def decode_form_value(encoded: str) -> str:
    """One name or value of a form: '+' is a space, %XX escapes are decoded (as parse_qs).

    An ASCII value (a SAMLResponse always is) skips unquote's regular-expression split into
    ASCII runs, which costs about a third of a millisecond for a 10 KB value: for ASCII text
    ``unquote`` is exactly ``unquote_to_bytes`` decoded as UTF-8 with replacement."""
    if "%" not in encoded:
        return encoded.replace("+", " ") if "+" in encoded else encoded
    if encoded.isascii():
        return unquote_to_bytes(encoded.replace("+", " ")).decode("utf-8", "replace")
    return unquote_plus(encoded)


def decode_post_value(value: str, max_bytes: int) -> bytes:
    """Base64-decode an HTTP-POST SAMLResponse, refusing anything over ``max_bytes``."""
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise GateError("response_too_large", f"{len(value)} encoded bytes")
    try:
        data = _b64decode_post(value)
    except (binascii.Error, ValueError) as exc:
        raise GateError("malformed_response", "SAMLResponse is not valid base64") from exc
    if len(data) > max_bytes:
        raise GateError("response_too_large", f"{len(data)} bytes")
    if not data.strip():
        raise GateError("malformed_response", "SAMLResponse is empty")
    return data


def _b64decode_post(value: str) -> bytes:
    """Base64 with whitespace (any, anywhere) removed, the alphabet only, padding only at the
    end. The common value (one line, no whitespace) is decoded in one pass by strict mode,
    which accepts nothing the general path refuses and decodes it to the same bytes."""
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return base64.b64decode("".join(value.split()), validate=True)


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
