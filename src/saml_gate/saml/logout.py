"""Single Logout messages from the IdP: decoded, signature-checked and read like Responses.

Our own LogoutRequests and LogoutResponses are built by pysaml2 (:mod:`saml_gate.saml.sp`). What the
IdP sends to ``/saml/slo`` is read here, not by pysaml2: as an SP, pysaml2 checks the Redirect
signature of a LogoutRequest only when told to, and never checks a LogoutResponse's. Both
bindings are accepted, because IdPs differ (Okta posts its LogoutResponse):

* HTTP-Redirect: the signature is over the query string *as received* (``SAMLRequest=…&
  RelayState=…&SigAlg=…``, still percent-encoded), checked with the IdP metadata's certificates.
* HTTP-POST: an enveloped XML signature on the message element, checked by the same code as a
  Response's (:class:`~saml_gate.saml.response.ResponseVerifier`), with the same shape rules.

Unsigned messages are refused. Then: schema, issuer, Destination (this SP's SLO URL), a recent
IssueInstant; for a LogoutRequest the NameID and SessionIndexes, for a LogoutResponse its status
and InResponseTo, which must be the LogoutRequest this browser sent: :class:`PendingLogout`
remembers it in a signed cookie, as the sign-in's pending cookie does (nothing on the server).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.response import (
    T_ISSUER,
    T_NAMEID,
    T_STATUS,
    T_STATUS_CODE,
    ResponseVerifier,
    children,
    decode_post_value,
    parse_instant,
)
from saml_gate.session.cookies import cross_site_cookies, cross_site_value

T_LOGOUT_REQUEST: Final = f"{{{X.NS_SAMLP}}}LogoutRequest"
T_LOGOUT_RESPONSE: Final = f"{{{X.NS_SAMLP}}}LogoutResponse"
T_SESSION_INDEX: Final = f"{{{X.NS_SAMLP}}}SessionIndex"
T_ENCRYPTED_ID: Final = f"{{{X.NS_SAML}}}EncryptedID"
T_BASE_ID: Final = f"{{{X.NS_SAML}}}BaseID"
STATUS_PARTIAL_LOGOUT: Final = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"

_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    X.RSA_SHA1: hashes.SHA1(),  # noqa: S303 - only when allow_sha1 puts it in the accepted list
    X.RSA_SHA256: hashes.SHA256(),
    X.RSA_SHA384: hashes.SHA384(),
    X.RSA_SHA512: hashes.SHA512(),
    X.ECDSA_SHA256: hashes.SHA256(),
    X.ECDSA_SHA384: hashes.SHA384(),
    X.ECDSA_SHA512: hashes.SHA512(),
}
_MESSAGE_KINDS: Final = ("SAMLRequest", "SAMLResponse")


@dataclass(frozen=True)
class IdpLogoutRequest:
    """A verified LogoutRequest: end these sessions, then answer ``id``."""

    id: str
    issuer: str
    name_id: str
    session_indexes: tuple[str, ...]
    relay_state: str | None
    valid_until: float
    """Epoch seconds after which this request would be refused anyway (for the replay cache)."""


@dataclass(frozen=True)
class IdpLogoutResponse:
    """A verified LogoutResponse to the LogoutRequest ``in_response_to``."""

    in_response_to: str | None
    status: str
    """The top-level status code's last segment: Success, Requester, Responder…"""
    partial: bool
    relay_state: str | None

    @property
    def success(self) -> bool:
        return self.status == "Success" and not self.partial


IdpLogoutMessage = IdpLogoutRequest | IdpLogoutResponse


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


class LogoutVerifier(ResponseVerifier):
    """Reads the IdP's logout messages with the Response verifier's keys and signature rules."""

    def __init__(self, settings: GateSettings, idp: IdpInfo, sp_key_pem: bytes) -> None:
        super().__init__(settings, idp, sp_key_pem)
        self._public_keys = tuple(
            x509.load_pem_x509_certificate(pem).public_key() for pem in idp.signing_certs
        )

    # ------------------------------------------------------------------ bindings
    def read_redirect(self, raw_query: str, *, now: float) -> IdpLogoutMessage:
        """A message sent with the HTTP-Redirect binding; ``raw_query`` exactly as received."""
        raw: dict[str, str] = {}
        for pair in raw_query.split("&"):
            name, _, value = pair.partition("=")
            key = unquote_plus(name)
            if key in raw:
                raise GateError("slo_invalid", f"the query repeats {key}")
            raw[key] = value
        kind = _message_kind(raw)
        if "SigAlg" not in raw or "Signature" not in raw:
            raise GateError("slo_signature", "the logout message is not signed (no Signature)")
        signed = "&".join(f"{k}={raw[k]}" for k in (kind, "RelayState", "SigAlg") if k in raw)
        self._check_query_signature(
            signed.encode("latin-1"), unquote_plus(raw["SigAlg"]), unquote_plus(raw["Signature"])
        )
        root = self._parse(_inflate(unquote_plus(raw[kind]), self._settings.max_response_bytes))
        self._check_shape(root, kind)
        relay_state = unquote_plus(raw["RelayState"]) if "RelayState" in raw else None
        return self._read(root, kind, relay_state, now)

    def read_post(self, form: Mapping[str, str], *, now: float) -> IdpLogoutMessage:
        """A message sent with the HTTP-POST binding (an enveloped XML signature)."""
        kind = _message_kind(form)
        root = self._parse(decode_post_value(form[kind], self._settings.max_response_bytes))
        self._check_shape(root, kind)
        try:
            self._check_signature_placement(root, root)
            signed = self._verify_signature(root)
        except GateError as error:
            raise GateError("slo_signature", f"{error.code}: {error.detail}") from error
        if not signed:
            raise GateError("slo_signature", "the logout message is not signed")
        return self._read(root, kind, form.get("RelayState"), now)

    def _check_query_signature(self, signed: bytes, algorithm: str, signature_b64: str) -> None:
        if algorithm not in self._sig_algs:
            raise GateError("slo_signature", f"signature algorithm {algorithm!r} is not accepted")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise GateError("slo_signature", "the Signature is not base64") from exc
        digest = _HASHES[algorithm]
        for key in self._public_keys:
            try:
                if isinstance(key, rsa.RSAPublicKey) and "rsa-" in algorithm:
                    key.verify(signature, signed, padding.PKCS1v15(), digest)
                    return
                if isinstance(key, ec.EllipticCurvePublicKey) and "ecdsa-" in algorithm:
                    key.verify(_ecdsa_der(signature, key), signed, ec.ECDSA(digest))
                    return
            except (InvalidSignature, ValueError):
                continue
        raise GateError(
            "slo_signature",
            f"the query signature does not verify with any of the {len(self._public_keys)}"
            " certificate(s) in the IdP metadata",
        )

    # ------------------------------------------------------------------ content
    def _check_shape(self, root: etree._Element, kind: str) -> None:
        expected = T_LOGOUT_REQUEST if kind == "SAMLRequest" else T_LOGOUT_RESPONSE
        if root.tag != expected:
            raise GateError(
                "slo_invalid", f"{kind} holds a {etree.QName(root).localname}, not a logout message"
            )
        try:
            self._check_schema(root)
            self._check_unique_ids(root)
        except GateError as error:
            raise GateError("slo_invalid", f"{error.code}: {error.detail}") from error

    def _read(
        self, root: etree._Element, kind: str, relay_state: str | None, now: float
    ) -> IdpLogoutMessage:
        s = self._settings
        if root.get("Version") != "2.0":
            raise GateError("slo_invalid", "Version is not 2.0")
        issuers = children(root, T_ISSUER)
        issuer = (issuers[0].text or "").strip() if len(issuers) == 1 else None
        if issuer != self._idp.entity_id:
            raise GateError(
                "slo_invalid", f"Issuer is {issuer!r}, not the IdP's {self._idp.entity_id!r}"
            )
        if root.get("Destination") != s.slo_url:
            raise GateError(
                "slo_invalid",
                f"Destination is {root.get('Destination')!r} but this SLO URL is {s.slo_url!r}",
            )
        issued = parse_instant(root.get("IssueInstant"), "IssueInstant").timestamp()
        if not now - s.login_timeout - s.clock_skew <= issued <= now + s.clock_skew:
            raise GateError(
                "slo_invalid",
                f"IssueInstant is {now - issued:.0f} s ago (accepted: up to {s.login_timeout:.0f}"
                f" s, with clock_skew {s.clock_skew:.0f} s)",
            )
        if kind == "SAMLResponse":
            return _response(root, relay_state)
        return self._request(root, issuer, relay_state, issued, now)

    def _request(
        self,
        root: etree._Element,
        issuer: str,
        relay_state: str | None,
        issued: float,
        now: float,
    ) -> IdpLogoutRequest:
        s = self._settings
        valid_until = issued + s.login_timeout + s.clock_skew
        not_on_or_after = root.get("NotOnOrAfter")
        if not_on_or_after is not None:
            until = parse_instant(not_on_or_after, "NotOnOrAfter").timestamp()
            if now - s.clock_skew >= until:
                raise GateError("slo_invalid", "the LogoutRequest has expired (NotOnOrAfter)")
            valid_until = min(valid_until, until + s.clock_skew)
        if children(root, T_ENCRYPTED_ID) or children(root, T_BASE_ID):
            raise GateError("slo_invalid", "only a plain NameID is supported, not EncryptedID")
        name_ids = children(root, T_NAMEID)
        # verbatim, as at sign-in: a LogoutRequest for "alice " must not end alice's sessions
        name_id = (name_ids[0].text or "") if len(name_ids) == 1 else ""
        if not name_id:
            raise GateError("slo_invalid", "the LogoutRequest names no subject (NameID)")
        return IdpLogoutRequest(
            id=root.get("ID") or "",
            issuer=issuer,
            name_id=name_id,
            session_indexes=tuple(e.text or "" for e in children(root, T_SESSION_INDEX)),
            relay_state=relay_state,
            valid_until=valid_until,
        )


def _response(root: etree._Element, relay_state: str | None) -> IdpLogoutResponse:
    statuses = children(root, T_STATUS)
    codes = children(statuses[0], T_STATUS_CODE) if len(statuses) == 1 else []
    if len(codes) != 1:
        raise GateError("slo_invalid", "the LogoutResponse has no StatusCode")
    top = codes[0].get("Value") or ""
    partial = any(c.get("Value") == STATUS_PARTIAL_LOGOUT for c in codes[0].iter(T_STATUS_CODE))
    return IdpLogoutResponse(
        in_response_to=root.get("InResponseTo"),
        status=top.rsplit(":", 1)[-1],
        partial=partial,
        relay_state=relay_state,
    )


def _message_kind(params: Mapping[str, str]) -> str:
    kinds = [k for k in _MESSAGE_KINDS if k in params]
    if len(kinds) != 1:
        raise GateError("slo_invalid", "expected exactly one of SAMLRequest and SAMLResponse")
    return kinds[0]


def _inflate(value: str, max_bytes: int) -> bytes:
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


def _ecdsa_der(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """XML-DSig ECDSA signatures are r‖s; cryptography verifies DER."""
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return signature
    return encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
