"""Single Logout messages from the IdP: decoded, signature-checked and read like Responses.

Our own LogoutRequests and LogoutResponses are built by pysaml2 (:mod:`saml_gate.saml.sp`). What the
IdP sends to ``/saml/slo`` is read here, not by pysaml2: as an SP, pysaml2 checks the Redirect
signature of a LogoutRequest only when told to, and never checks a LogoutResponse's. Both
bindings are accepted, because IdPs differ (Okta posts its LogoutResponse):

* HTTP-Redirect: the signature is over the query string *as received* (``SAMLRequest=…&
  RelayState=…&SigAlg=…``, still percent-encoded), checked with the IdP metadata's certificates.
* HTTP-POST: an enveloped XML signature on the message element, checked by the same code as a
  Response's (:class:`~saml_gate.saml.dsig.SignatureChecker`), with the same shape rules.

Unsigned messages are refused. Then: schema, issuer, Destination (this SP's SLO URL), a recent
IssueInstant; for a LogoutRequest the NameID and SessionIndexes, for a LogoutResponse its status
and InResponseTo, which must be the LogoutRequest this browser sent (the caller compares it with
the one its PendingLogout cookie remembers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote_plus

from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.bindings import decode_post_value, inflate_redirect_value
from saml_gate.saml.dsig import SignatureChecker, check_signature_placement
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.schema import saml_schema
from saml_gate.saml.xml import check_unique_ids, children, parse_instant, parse_limited

if TYPE_CHECKING:
    from saml_gate.saml.query_signature import QuerySignatureChecker

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


class LogoutVerifier:
    """Reads the IdP's logout messages with the keys and signature rules of the Response's check."""

    def __init__(self, settings: GateSettings, idp: IdpInfo) -> None:
        self._settings = settings
        self._idp = idp
        self._signatures = SignatureChecker(settings, idp)
        self._schema = saml_schema()

    @cached_property
    def _query_signatures(self) -> QuerySignatureChecker:
        """Built on the first HTTP-Redirect message: it loads cryptography (about 6 MB), which
        a verification child that never sees one does without."""
        from saml_gate.saml.query_signature import QuerySignatureChecker

        return QuerySignatureChecker(self._settings, self._idp)

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
        self._query_signatures.verify(
            signed.encode("latin-1"), unquote_plus(raw["SigAlg"]), unquote_plus(raw["Signature"])
        )
        encoded = unquote_plus(raw[kind])
        root = parse_limited(
            inflate_redirect_value(encoded, self._settings.max_response_bytes), self._settings
        )
        self._check_shape(root, kind)
        relay_state = unquote_plus(raw["RelayState"]) if "RelayState" in raw else None
        return self._read(root, kind, relay_state, now)

    def read_post(self, form: Mapping[str, str], *, now: float) -> IdpLogoutMessage:
        """A message sent with the HTTP-POST binding (an enveloped XML signature)."""
        kind = _message_kind(form)
        root = parse_limited(
            decode_post_value(form[kind], self._settings.max_response_bytes), self._settings
        )
        self._check_shape(root, kind)
        try:
            check_signature_placement(root, root)
            signed = self._signatures.verify(root)
        except GateError as error:
            raise GateError("slo_signature", f"{error.code}: {error.detail}") from error
        if not signed:
            raise GateError("slo_signature", "the logout message is not signed")
        return self._read(root, kind, form.get("RelayState"), now)

    # ------------------------------------------------------------------ content
    def _check_shape(self, root: etree._Element, kind: str) -> None:
        expected = X.T_LOGOUT_REQUEST if kind == "SAMLRequest" else X.T_LOGOUT_RESPONSE
        if root.tag != expected:
            raise GateError(
                "slo_invalid", f"{kind} holds a {etree.QName(root).localname}, not a logout message"
            )
        try:
            self._schema.check(root)
            check_unique_ids(root)
        except GateError as error:
            raise GateError("slo_invalid", f"{error.code}: {error.detail}") from error

    def _read(
        self, root: etree._Element, kind: str, relay_state: str | None, now: float
    ) -> IdpLogoutMessage:
        s = self._settings
        if root.get("Version") != "2.0":
            raise GateError("slo_invalid", "Version is not 2.0")
        issuers = children(root, X.T_ISSUER)
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
        if children(root, X.T_ENCRYPTED_ID) or children(root, X.T_BASE_ID):
            raise GateError("slo_invalid", "only a plain NameID is supported, not EncryptedID")
        name_ids = children(root, X.T_NAMEID)
        # verbatim, as at sign-in: a LogoutRequest for "alice " must not end alice's sessions
        name_id = (name_ids[0].text or "") if len(name_ids) == 1 else ""
        if not name_id:
            raise GateError("slo_invalid", "the LogoutRequest names no subject (NameID)")
        return IdpLogoutRequest(
            id=root.get("ID") or "",
            issuer=issuer,
            name_id=name_id,
            session_indexes=tuple(e.text or "" for e in children(root, X.T_SESSION_INDEX)),
            relay_state=relay_state,
            valid_until=valid_until,
        )


def _response(root: etree._Element, relay_state: str | None) -> IdpLogoutResponse:
    statuses = children(root, X.T_STATUS)
    codes = children(statuses[0], X.T_STATUS_CODE) if len(statuses) == 1 else []
    if len(codes) != 1:
        raise GateError("slo_invalid", "the LogoutResponse has no StatusCode")
    top = codes[0].get("Value") or ""
    partial = any(c.get("Value") == X.STATUS_PARTIAL_LOGOUT for c in codes[0].iter(X.T_STATUS_CODE))
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
