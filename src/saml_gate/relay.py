"""Pending sign-ins: which AuthnRequest this browser sent, and where to return afterwards.

Nothing is stored on the server. Each started sign-in sets one short-lived signed cookie,
named after a random key, holding the AuthnRequest ID and the return path; the RelayState sent
through the IdP is a signed, expiring token carrying that key (small, as the SAML bindings
limit RelayState to 80 bytes). At the ACS, the Response's InResponseTo must be one of the
request IDs held by this browser's cookies, so a Response obtained for someone else's request
is refused. The cookies are Path-scoped to the ACS and, on https, SameSite=None so that they
survive the IdP's cross-site POST.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from saml_gate.cookies import LAX_TWIN, cross_site_cookies
from saml_gate.settings import GateSettings

MAX_RETURN_PATH: Final = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_return_path(value: str | None, default: str = "/") -> str | None:
    """``value`` if it is a same-origin relative path, else None (an open-redirect attempt)."""
    if value is None or value == "":
        return default
    if len(value) > MAX_RETURN_PATH or _CONTROL.search(value) or "\\" in value:
        return None
    decoded = value
    for _ in range(3):  # look through nested percent-encoding
        decoded = unquote(decoded)
        if _CONTROL.search(decoded) or "\\" in decoded or decoded.startswith("//"):
            return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


@dataclass(frozen=True)
class PendingLogin:
    key: str
    request_id: str
    return_path: str


class RelayTracker:
    def __init__(self, settings: GateSettings) -> None:
        self._settings = settings
        self._relay = URLSafeTimedSerializer(
            list(reversed(settings.secret_key)), salt="saml-gate.relay"
        )
        self._pending = URLSafeTimedSerializer(
            list(reversed(settings.secret_key)), salt="saml-gate.pending"
        )
        self.cookie_prefix = settings.cookie_prefix + "_req_"
        self.cookie_path = settings.prefix + "/acs"

    def start(self) -> tuple[str, str]:
        """(key, RelayState token) for a new sign-in."""
        key = secrets.token_urlsafe(9)
        return key, str(self._relay.dumps(key))

    def pending_cookies(self, key: str, request_id: str, return_path: str) -> list[bytes]:
        """Set-Cookie values for a started sign-in (two on http loopback: see cookies.py)."""
        value = str(self._pending.dumps([request_id, return_path]))
        return self._cookies(key, value, int(self._settings.login_timeout))

    def pending_cookie(self, key: str, request_id: str, return_path: str) -> bytes:
        """The main Set-Cookie value of a started sign-in (what a browser that started it has)."""
        return self.pending_cookies(key, request_id, return_path)[0]

    def clear_cookies(self, key: str) -> list[bytes]:
        return self._cookies(key, "", 0)

    def _cookies(self, key: str, value: str, max_age: int) -> list[bytes]:
        return cross_site_cookies(
            self._settings, self.cookie_prefix + key, value, max_age=max_age, path=self.cookie_path
        )

    def relay_key(self, relay_state: str) -> str | None:
        """The key in a RelayState token we issued, or None (expired, forged or not ours)."""
        try:
            return str(self._relay.loads(relay_state, max_age=int(self._settings.login_timeout)))
        except (SignatureExpired, BadSignature):
            return None

    def pending(self, cookies: dict[str, str]) -> list[PendingLogin]:
        """Every valid pending sign-in this browser holds."""
        found: list[PendingLogin] = []
        for name, value in cookies.items():
            if not name.startswith(self.cookie_prefix):
                continue
            try:
                request_id, path = self._pending.loads(
                    value, max_age=int(self._settings.login_timeout)
                )
            except (SignatureExpired, BadSignature, ValueError, TypeError):
                continue
            safe = safe_return_path(str(path))
            key = name[len(self.cookie_prefix) :].removesuffix(LAX_TWIN)
            if safe is not None and all(p.key != key for p in found):
                found.append(PendingLogin(key, str(request_id), safe))
        return found
