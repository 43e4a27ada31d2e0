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

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from itsdangerous import (
    BadSignature,
    Signer,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
    want_bytes,
)
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer
from itsdangerous.url_safe import URLSafeSerializerMixin

from saml_gate.config.settings import GateSettings
from saml_gate.session.cookies import LAX_TWIN, cross_site_cookies

Purpose = Literal["session", "relay", "pending", "logout-pending", "logout"]


def _salt(purpose: Purpose, bound_to: str) -> str:
    return f"saml-gate.{purpose}" + (f"|{bound_to}" if bound_to else "")


#: Payloads (JSON) shorter than this are not worth compressing: zlib's set-up costs more than
#: the few bytes it could save (itsdangerous tries on every value, a RelayState token included).
COMPRESS_FROM: Final = 200
#: zlib's window and memory level for what fits a cookie: 4 KiB (zlib.compress's 32 KiB window
#: and 128 KiB of hash tables cost 45 us of set-up per value, 7.5 us with these, for the same
#: output on a session cookie). Any zlib inflater reads it.
_WINDOW_BITS: Final = 12
_MEMORY_LEVEL: Final = 3


class _KeysDerivedOnce(Signer):
    """itsdangerous derives the HMAC key from the secret and salt on every signature made or
    checked; these signers derive each key once. They name SHA-1 (itsdangerous's default) as
    ``hashlib.sha1`` itself, which lets :mod:`hmac` use OpenSSL's HMAC rather than its pure
    Python one: the same signatures."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("digest_method", hashlib.sha1)
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        key = self._derived.get(secret)
        if key is None:
            key = self._derived[secret] = super().derive_key(secret)
        return key


class _TimestampKeysDerivedOnce(_KeysDerivedOnce, TimestampSigner):
    pass


class _Signers(URLSafeSerializerMixin):
    """One signer per salt, made once (itsdangerous makes a new one for each value), and the
    same values as itsdangerous's URL-safe serializers (readable by them, and theirs by these),
    compressed only when the payload is large enough to gain from it."""

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        made: dict[str | bytes | None, Signer] = self.__dict__.setdefault("_made", {})
        found = made.get(salt)
        if found is None:
            found = made[salt] = super().make_signer(salt)
        return found

    def dump_payload(self, obj: Any) -> bytes:
        json = Serializer.dump_payload(self, obj)  # the JSON, before the mixin's compression
        if len(json) >= COMPRESS_FROM:
            deflater = zlib.compressobj(6, zlib.DEFLATED, _WINDOW_BITS, _MEMORY_LEVEL)
            compressed = deflater.compress(json) + deflater.flush()
            if len(compressed) < len(json) - 1:
                return b"." + base64_encode(compressed)
        return base64_encode(json)


class _Serializer(_Signers, URLSafeSerializer):
    default_signer = _KeysDerivedOnce


class _TimedSerializer(_Signers, URLSafeTimedSerializer):
    default_signer = _TimestampKeysDerivedOnce


def serializer(secrets: Sequence[str], purpose: Purpose, bound_to: str = "") -> URLSafeSerializer:
    """Signed values that do not expire by themselves (the session cookie carries its own
    times). ``bound_to`` ties them to one deployment (the SP entity ID)."""
    return _Serializer(list(reversed(secrets)), salt=_salt(purpose, bound_to))


def timed_serializer(secrets: Sequence[str], purpose: Purpose) -> URLSafeTimedSerializer:
    """Signed values with a timestamp, refused once older than the reader's ``max_age``."""
    return _TimedSerializer(list(reversed(secrets)), salt=_salt(purpose, ""))


def signer(secrets: Sequence[str], purpose: Purpose) -> Signer:
    """A bare signature over a string (the sign-out form's token)."""
    return _KeysDerivedOnce(list(reversed(secrets)), salt=_salt(purpose, ""))


class CompactSigner:
    """Signed bytes in a compact text form: ``s2.<base64url payload>.<base64url HMAC-SHA256>``,
    or ``s2z.`` with the payload deflated when that makes it shorter. The session cookie's
    format since it replaced itsdangerous's JSON serializer there: one HMAC over the text as
    sent, with keys derived once per secret and purpose, and no JSON object of named fields
    (about a third of the CPU to make or read a session cookie). The first secret signs, every
    one verifies (rotation); values of itsdangerous's format never start with ``s2``."""

    PREFIXES: Final = ("s2.", "s2z.")

    def __init__(self, secrets: Sequence[str], purpose: Purpose, bound_to: str = "") -> None:
        salt = _salt(purpose, bound_to).encode()
        self._keys = [hmac.digest(secret.encode(), salt, "sha256") for secret in secrets]

    def dumps(self, payload: bytes) -> str:
        head = "s2."
        if len(payload) >= COMPACT_COMPRESS_FROM:
            deflater = zlib.compressobj(6, zlib.DEFLATED, -_WINDOW_BITS, _MEMORY_LEVEL)
            compressed = deflater.compress(payload) + deflater.flush()
            if len(compressed) < len(payload):
                head, payload = "s2z.", compressed
        signed = head + _b64(payload)
        return signed + "." + _b64(hmac.digest(self._keys[0], signed.encode(), "sha256"))

    def loads(self, value: str) -> bytes | None:
        """The payload, or None unless ``value`` is one of ours, signed with one of the secrets
        for this purpose."""
        signed, dot, tag = value.rpartition(".")
        if not dot or not signed.startswith(self.PREFIXES) or not signed.isascii():
            return None
        expected = [_b64(hmac.digest(key, signed.encode(), "sha256")) for key in self._keys]
        if not any(hmac.compare_digest(tag, each) for each in expected):
            return None
        head, _, body = signed.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if head == "s2z":
                inflater = zlib.decompressobj(-_WINDOW_BITS)
                payload = inflater.decompress(payload, COMPACT_MAX_BYTES)
        except (binascii.Error, ValueError, zlib.error):
            return None
        return payload


#: Compact payloads from this size on are deflated where that shortens them: a session of a few
#: groups (about 500 bytes) is sent as it is, which costs less CPU than zlib's set-up.
COMPACT_COMPRESS_FROM: Final = 1024
#: The most a compact payload inflates to (a session cookie holds at most 3,800 bytes).
COMPACT_MAX_BYTES: Final = 64 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ExpiringCookie:
    """A signed value in a cookie that must come back with the IdP's cross-site request,
    readable for ``lifetime`` seconds, Path-scoped to the endpoint that reads it (two cookies on
    http loopback: the value and its ``.lax`` twin, see :mod:`saml_gate.session.cookies`)."""

    def __init__(
        self,
        settings: GateSettings,
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
