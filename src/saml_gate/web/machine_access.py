"""Who a bearer token stands for: reading ``Authorization: Bearer`` (and refusing a token in
the query string), then a gate service token or an IdP access token as a service principal.

Only the ``Authorization`` header carries a token: never the query string (``access_token=``,
RFC 6750 §2.3: URLs end up in logs, browser history and Referer headers), refused with
``token_in_query``; never a cookie (a cookie named ``access_token`` is the app's business, not
a credential the gate reads). A request with a bearer token is decided on the token alone: a
session cookie beside it is not read, and a token that fails never falls back to the cookie.
Another scheme (``Basic``...) is not the gate's and is left to the app.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from saml_gate.errors import ErrorCode, GateError
from saml_gate.identity.access_tokens import AccessTokens
from saml_gate.identity.remote_jwt import JwtRefused
from saml_gate.session.gate_tokens import GateTokens, TokenRefused, is_gate_token
from saml_gate.user import SamlUser

_JWT_CODES: Final[dict[str, ErrorCode]] = {
    "invalid": "token_invalid",
    "issuer": "token_wrong_issuer",
    "audience": "token_wrong_audience",
    "expired": "token_expired",
    "keys_unavailable": "token_keys_unavailable",
}
_GATE_CODES: Final[dict[str, ErrorCode]] = {
    "invalid": "token_invalid",
    "expired": "token_expired",
    "revoked": "token_revoked",
}


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of ``Authorization`` (None: no header, or another scheme). Two
    ``Authorization`` headers, or a Bearer one without a token, are refused: which one a
    server or the app reads differs."""
    found: bytes | None = None
    for key, value in headers:
        if key == b"authorization":
            if found is not None:
                raise GateError("token_invalid", "more than one Authorization header")
            found = value
    if found is None:
        return None
    words = found.decode("latin-1").split()  # any whitespace, as apps split it
    if not words or words[0].lower() != "bearer":
        return None
    if len(words) != 2:
        raise GateError("token_invalid", "Authorization: Bearer without exactly one token")
    return words[1]


def token_in_query(query_string: bytes) -> bool:
    """Whether the query string carries ``access_token`` (RFC 6750's query form)."""
    if b"%" not in query_string and b"access_token" not in query_string.lower():
        return False  # the hot path: no parsing (a name may be percent-encoded: parsed)
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return any(name.lower() == "access_token" for name, _ in pairs)


class MachineAccess:
    """Resolves a bearer token to its service: a gate token (``sgt_...``) from the store, else
    an access token of ``access_token_issuer`` (None: not configured)."""

    def __init__(self, gate_tokens: GateTokens, access_tokens: AccessTokens | None) -> None:
        self._gate_tokens = gate_tokens
        self._access_tokens = access_tokens

    async def principal(self, token: str) -> SamlUser:
        """The service, or :class:`GateError` with a ``token_*`` code (the detail never holds
        the token). ``StoreUnavailable`` passes through."""
        if is_gate_token(token):
            try:
                return await self._gate_tokens.principal(token)
            except TokenRefused as refused:
                raise GateError(_GATE_CODES[refused.reason], refused.detail) from None
        if self._access_tokens is None:
            raise GateError("token_invalid", "not a gate token, and no access_token_issuer is set")
        try:
            return await self._access_tokens.principal(token)
        except JwtRefused as refused:
            raise GateError(_JWT_CODES[refused.reason], refused.detail) from None
