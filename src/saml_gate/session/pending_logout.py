"""The LogoutRequest this browser was sent to the IdP with, remembered in a cookie.

A LogoutResponse from the IdP is accepted only when its InResponseTo is that request: as the
sign-in's pending cookie does, a signed, expiring cookie remembers it (nothing on the server),
Path-scoped to the SLO URL and cross-site (Okta posts its answer from its own site).
"""

from __future__ import annotations

from collections.abc import Mapping

from saml_gate.config.settings import GateSettings
from saml_gate.session.signing import ExpiringCookie


class PendingLogout:
    def __init__(self, settings: GateSettings) -> None:
        self.name = settings.cookie_prefix + "_logout"
        self._cookie = ExpiringCookie(
            settings,
            settings.secret_key,
            "logout-pending",
            lifetime=int(settings.login_timeout),
            path=settings.public_path("/slo"),
        )

    def cookies(self, request_id: str) -> list[bytes]:
        return self._cookie.set(self.name, request_id)

    def clear_cookies(self) -> list[bytes]:
        return self._cookie.clear(self.name)

    def request_id(self, cookies: Mapping[str, str]) -> str | None:
        found = self._cookie.read(cookies, self.name)
        return str(found[0]) if found else None
