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
import json
import time
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


def timed_serializer(secrets: Sequence[str], purpose: Purpose) -> TimedValues:
    """Signed values with a timestamp, refused once older than the reader's ``max_age``."""
    return TimedValues(secrets, purpose)


def signer(secrets: Sequence[str], purpose: Purpose) -> Signer:
    """A bare signature over a string (the sign-out form's token)."""
    return _KeysDerivedOnce(list(reversed(secrets)), salt=_salt(purpose, ""))


#: Compact payloads from this size on are deflated where that shortens them: a session of a few
#: groups (about 500 bytes) is sent as it is, which costs less CPU than zlib's set-up.
COMPACT_COMPRESS_FROM: Final = 1024
#: The most a compact payload inflates to (a session cookie holds at most 3,800 bytes).
COMPACT_MAX_BYTES: Final = 64 * 1024


class CompactSigner:
    """Signed bytes in a compact text form: ``s2.<base64url payload>.<base64url HMAC-SHA256>``,
    ``s2z.`` with the payload deflated when that makes it shorter, and for timed values (``t2``)
    the time of signing before the tag. The session cookie's format since it replaced
    itsdangerous's JSON serializer there, and the pending sign-in's (:class:`TimedValues`): one
    HMAC over the text as sent, keys derived once per secret and purpose, no layers of
    conversions (about a third of the CPU to make or read a value). The first secret signs,
    every one verifies (rotation); values of itsdangerous's formats never start with ``s2`` or
    ``t2`` (their JSON starts ``eyJ``, their compressed values ``.``)."""

    def __init__(
        self,
        secrets: Sequence[str],
        purpose: Purpose,
        bound_to: str = "",
        *,
        kind: Literal["s", "t"] = "s",
        compress_from: int = COMPACT_COMPRESS_FROM,
        tag_bytes: int = 32,
    ) -> None:
        salt = _salt(purpose, bound_to).encode()
        keys = [hmac.digest(secret.encode(), salt, "sha256") for secret in secrets]
        self._macs = [hmac.new(key, digestmod="sha256") for key in keys]
        """Each key's HMAC with the key already absorbed: a copy of it tags a value (a quarter
        fewer instructions than ``hmac.digest``, which sets OpenSSL's HMAC up each time)."""
        self.prefixes = (kind + "2.", kind + "2z.")
        self._compress_from = compress_from
        self._tag_bytes = tag_bytes

    def dumps(self, payload: bytes, stamp: int | None = None) -> str:
        """``payload`` signed; ``stamp``: the time of signing (whole seconds), signed with it."""
        head = self.prefixes[0]
        if len(payload) >= self._compress_from:
            deflater = zlib.compressobj(6, zlib.DEFLATED, -_WINDOW_BITS, _MEMORY_LEVEL)
            compressed = deflater.compress(payload) + deflater.flush()
            if len(compressed) < len(payload):
                head, payload = self.prefixes[1], compressed
        signed = head + _b64(payload)
        if stamp is not None:
            signed += "." + _b64(stamp.to_bytes(5, "big"))
        return signed + "." + self._tag(self._macs[0], signed)

    def loads(self, value: str, max_age: float | None = None) -> bytes | None:
        """The payload, or None unless ``value`` is one of ours, signed with one of the secrets
        for this purpose (and, with ``max_age``, signed at most that many seconds ago)."""
        signed, dot, tag = value.rpartition(".")
        if not dot or not signed.startswith(self.prefixes) or not signed.isascii():
            return None
        for mac in self._macs:  # the first secret, nearly always
            if hmac.compare_digest(tag, self._tag(mac, signed)):
                break
        else:
            return None
        head, body, *stamp = signed.split(".")
        try:
            if max_age is not None:
                (stamped,) = stamp
                age = time.time() - int.from_bytes(_unb64(stamped), "big")
                if not 0 <= age <= max_age:  # itsdangerous's rule: expired, or from the future
                    return None
            payload = _unb64(body)
            if head == self.prefixes[1][:-1]:
                inflater = zlib.decompressobj(-_WINDOW_BITS)
                payload = inflater.decompress(payload, COMPACT_MAX_BYTES)
        except (binascii.Error, ValueError, zlib.error):
            return None
        return payload

    def _tag(self, mac: hmac.HMAC, signed: str) -> str:
        mac = mac.copy()
        mac.update(signed.encode())
        return _b64(mac.digest()[: self._tag_bytes])


class TimedValues:
    """JSON values signed with their time in the compact form (``t2.``, a 160-bit tag: pending
    sign-in cookies add up in one header, see :mod:`saml_gate.session.relay`); values of the
    previous format (itsdangerous's timed serializer) are read until they expire."""

    def __init__(self, secrets: Sequence[str], purpose: Purpose) -> None:
        self._signer = CompactSigner(
            secrets, purpose, kind="t", compress_from=COMPRESS_FROM, tag_bytes=20
        )
        self._previous = _TimedSerializer(list(reversed(secrets)), salt=_salt(purpose, ""))

    def dumps(self, value: Any) -> str:
        payload = compact_json(value).encode()
        return self._signer.dumps(payload, stamp=int(time.time()))

    def loads(self, value: str, max_age: int) -> Any:
        """The value; raises :class:`BadSignature` (expired, forged, not ours) as itsdangerous."""
        if not value.startswith(self._signer.prefixes):
            return self._previous.loads(value, max_age=max_age)
        payload = self._signer.loads(value, max_age=max_age)
        try:
            return json_of(payload if payload is not None else b"!")
        except ValueError as exc:
            raise BadSignature("not a value of ours, or expired") from exc


compact_json: Final = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps(value, separators=(",", ":"))``, with its encoder built once (``dumps`` builds
one per call when given separators)."""


_decode: Final = json.JSONDecoder().decode


def json_of(payload: bytes) -> Any:
    """``json.loads(payload)`` for the UTF-8 JSON this module signs (:data:`compact_json`'s,
    ASCII), with its decoder built once (``loads`` looks it up through its checks and guesses
    the encoding of bytes). Raises ValueError as ``loads`` does."""
    return _decode(payload.decode("utf-8", "surrogatepass"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def _unb64(text: str) -> bytes:
    """``base64.urlsafe_b64decode`` of ``text`` with its padding restored, without that
    function's two Python layers (the same ``binascii`` call, not strict: what it does)."""
    padded = text + "=" * (-len(text) % 4)
    return binascii.a2b_base64(padded.encode("ascii").translate(_FROM_URLSAFE))


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
