"""The session cookie: what it holds, how it is signed, when it expires and is refreshed.

The cookie is an itsdangerous-signed compact JSON document. Secrets rotate: the first secret in
``secret_key`` signs, all of them verify, so adding a new secret in front logs nobody out.
Decoded cookies are cached by their exact value, so the hot path pays one HMAC per cookie
value, not per request.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from itsdangerous import BadSignature, URLSafeSerializer

from saml_gate.settings import GateSettings
from saml_gate.user import SamlUser
from saml_gate.verify import VerifiedLogin

log = logging.getLogger("saml_gate")

MAX_COOKIE_BYTES: Final = 3800
_CACHE_SIZE: Final = 4096


@dataclass(frozen=True)
class Session:
    user: SamlUser
    last_seen: float

    @property
    def expires_at(self) -> float:
        return self.user.expires_at


class SessionCodec:
    def __init__(self, settings: GateSettings) -> None:
        self._settings = settings
        # itsdangerous signs with the last key and accepts all.
        self._serializer = URLSafeSerializer(
            list(reversed(settings.secret_key)), salt="saml-gate.session"
        )
        self._cache: dict[str, Session] = {}
        self.refresh_after = min(60.0, settings.inactivity_timeout / 10)

    @property
    def name(self) -> str:
        return self._settings.cookie_prefix + "_session"

    def new_session(self, login: VerifiedLogin, now: float) -> Session:
        s = self._settings
        expires = now + s.maximum_duration
        if login.session_not_on_or_after is not None:
            expires = min(expires, login.session_not_on_or_after.timestamp())

        def first(name: str) -> str | None:
            values = login.attributes.get(name, ())
            return values[0] if values else None

        email = first(s.email_attribute)
        if email is None and "@" in login.name_id:
            email = login.name_id
        user = SamlUser(
            name_id=login.name_id,
            email=email,
            name=first(s.name_attribute),
            groups=tuple(dict.fromkeys(login.attributes.get(s.groups_attribute, ()))),
            attributes=login.attributes,
            name_id_format=login.name_id_format,
            session_index=login.session_index,
            issuer=login.issuer,
            authenticated_at=login.authn_instant.timestamp(),
            expires_at=expires,
            session_id=secrets.token_urlsafe(12),
        )
        return Session(user=user, last_seen=now)

    # ------------------------------------------------------------------ codec
    def encode(self, session: Session) -> str:
        u = session.user
        payload: dict[str, Any] = {
            "n": u.name_id,
            "f": u.name_id_format,
            "e": u.email,
            "d": u.name,
            "g": list(u.groups),
            "a": {k: list(v) for k, v in u.attributes.items()},
            "x": u.session_index,
            "i": u.issuer,
            "t": round(u.authenticated_at),
            "z": round(u.expires_at),
            "s": u.session_id,
            "l": round(session.last_seen),
        }
        value = self._serializer.dumps(payload)
        if len(value) > MAX_COOKIE_BYTES:
            payload["a"] = {}
            value = self._serializer.dumps(payload)
            log.warning(
                "saml-gate session for %s: attributes dropped from the cookie (too large);"
                " groups and identity kept",
                u.name_id,
            )
        return str(value)

    def decode(self, value: str) -> Session | None:
        """The session in a cookie value, or None when it is not one of ours."""
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        try:
            p = self._serializer.loads(value)
            user = SamlUser(
                name_id=str(p["n"]),
                name_id_format=p["f"],
                email=p["e"],
                name=p["d"],
                groups=tuple(p["g"]),
                attributes=MappingProxyType({k: tuple(v) for k, v in p["a"].items()}),
                session_index=p["x"],
                issuer=str(p["i"]),
                authenticated_at=float(p["t"]),
                expires_at=float(p["z"]),
                session_id=str(p["s"]),
            )
            session = Session(user=user, last_seen=float(p["l"]))
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            return None
        if len(self._cache) >= _CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[value] = session
        return session

    # ------------------------------------------------------------------ lifetime
    def state(self, session: Session, now: float) -> str:
        """'valid', 'expired' (absolute lifetime over) or 'idle' (inactivity timeout)."""
        if now >= session.expires_at:
            return "expired"
        if now - session.last_seen >= self._settings.inactivity_timeout:
            return "idle"
        return "valid"

    def needs_refresh(self, session: Session, now: float) -> bool:
        return now - session.last_seen >= self.refresh_after

    @staticmethod
    def touched(session: Session, now: float) -> Session:
        return replace(session, last_seen=now)
