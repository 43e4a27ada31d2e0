"""Everything the gate signs with ``secret_key``, made in one place.

Each use has a purpose (the itsdangerous salt), so a value signed for one purpose never verifies
for another: a RelayState token is no session, a pending-logout cookie no pending sign-in.
itsdangerous signs with the last key it is given and accepts all of them, so the secrets go in
reversed: the first secret of ``secret_key`` signs, every one verifies (rotation).

:class:`ExpiringCookie` is the one kind of short-lived signed cookie the gate sets for the IdP's
round trips: a pending sign-in (one per slot, see :mod:`saml_gate.session.relay`) and a pending
logout (:mod:`saml_gate.session.pending_logout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer

from saml_gate.config.groups import CookieSettings
from saml_gate.session.cookies import LAX_TWIN, cross_site_cookies

Purpose = Literal["session", "relay", "pending", "logout-pending", "logout"]


def _salt(purpose: Purpose, bound_to: str) -> str:
    return f"saml-gate.{purpose}" + (f"|{bound_to}" if bound_to else "")


def serializer(secrets: Sequence[str], purpose: Purpose, bound_to: str = "") -> URLSafeSerializer:
    """Signed values that do not expire by themselves (the session cookie carries its own
    times). ``bound_to`` ties them to one deployment (the SP entity ID)."""
    return URLSafeSerializer(list(reversed(secrets)), salt=_salt(purpose, bound_to))


def timed_serializer(secrets: Sequence[str], purpose: Purpose) -> URLSafeTimedSerializer:
    """Signed values with a timestamp, refused once older than the reader's ``max_age``."""
    return URLSafeTimedSerializer(list(reversed(secrets)), salt=_salt(purpose, ""))


def signer(secrets: Sequence[str], purpose: Purpose) -> Signer:
    """A bare signature over a string (the sign-out form's token)."""
    return Signer(list(reversed(secrets)), salt=_salt(purpose, ""))


class ExpiringCookie:
    """A signed value in a cookie that must come back with the IdP's cross-site request,
    readable for ``lifetime`` seconds, Path-scoped to the endpoint that reads it (two cookies on
    http loopback: the value and its ``.lax`` twin, see :mod:`saml_gate.session.cookies`)."""

    def __init__(
        self,
        settings: CookieSettings,
        secrets: Sequence[str],
        purpose: Purpose,
        *,
        lifetime: int,
        path: str,
    ) -> None:
        self._settings = settings
        self._serializer = timed_serializer(secrets, purpose)
        self.lifetime = lifetime
        self.path = path

    def set(self, name: str, value: Any) -> list[bytes]:
        """Set-Cookie values holding ``value`` (JSON-serialisable) under ``name``."""
        signed = str(self._serializer.dumps(value))
        return cross_site_cookies(
            self._settings, name, signed, max_age=self.lifetime, path=self.path
        )

    def clear(self, name: str) -> list[bytes]:
        return cross_site_cookies(self._settings, name, "", max_age=0, path=self.path)

    def read(self, cookies: Mapping[str, str], name: str) -> list[Any]:
        """The valid values under ``name`` and its twin (each at most once), newest cookie
        first; forged, expired and foreign values are left out."""
        found: list[Any] = []
        for raw in (cookies.get(name), cookies.get(name + LAX_TWIN)):
            if not raw:
                continue
            try:
                value = self._serializer.loads(raw, max_age=self.lifetime)
            except (BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
                continue
            if value not in found:
                found.append(value)
        return found
