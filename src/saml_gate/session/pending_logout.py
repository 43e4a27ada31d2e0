"""The LogoutRequest this browser was sent to the IdP with, remembered in a cookie.

A LogoutResponse from the IdP is accepted only when its InResponseTo is that request: as the
sign-in's pending cookie does, a signed, expiring cookie remembers it (nothing on the server).
"""

from __future__ import annotations

from collections.abc import Mapping

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from saml_gate.config.settings import GateSettings
from saml_gate.session.cookies import cross_site_cookies, cross_site_value


class PendingLogout:
    """The LogoutRequest this browser was sent to the IdP with: a signed, expiring cookie,
    Path-scoped to the SLO URL and cross-site (Okta posts its answer from its own site)."""

    def __init__(self, settings: GateSettings) -> None:
        self._settings = settings
        self._serializer = URLSafeTimedSerializer(
            list(reversed(settings.secret_key)), salt="saml-gate.logout-pending"
        )
        self.name = settings.cookie_prefix + "_logout"
        self._path = settings.public_path("/slo")

    def cookies(self, request_id: str) -> list[bytes]:
        value = str(self._serializer.dumps(request_id))
        return self._headers(value, int(self._settings.login_timeout))

    def clear_cookies(self) -> list[bytes]:
        return self._headers("", 0)

    def _headers(self, value: str, max_age: int) -> list[bytes]:
        return cross_site_cookies(
            self._settings, self.name, value, max_age=max_age, path=self._path
        )

    def request_id(self, cookies: Mapping[str, str]) -> str | None:
        value = cross_site_value(cookies, self.name)
        if not value:
            return None
        try:
            return str(self._serializer.loads(value, max_age=int(self._settings.login_timeout)))
        except (BadSignature, SignatureExpired):
            return None
