"""The AuthnRequest the gate sends (HTTP-Redirect binding), built without pysaml2.

Every sign-in start builds one, in the verification child by default: pysaml2's message classes,
ElementTree serialisation and client object cost that child about 0.5 ms per request and 21 MB of
memory, for a message of five fixed attributes, an Issuer and a NameIDPolicy. Here it is built
with lxml (the values are settings, escaped as XML), deflated, and signed over the query string
as the HTTP-Redirect binding says (SAML Bindings 3.4.4.1: ``SAMLRequest=...&RelayState=...&
SigAlg=...``, each URL-encoded). The logout messages of Single Logout, rare, are still pysaml2's
(:mod:`saml_gate.saml.sp`).
"""

from __future__ import annotations

import base64
import secrets
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote_plus, urlencode

from lxml import etree

from saml_gate.saml import xmlconst as X
from saml_gate.saml.xml_libraries import xmlsec

if TYPE_CHECKING:
    from saml_gate.config.saml_settings import SpFields
    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.idp import IdpInfo

_SAMLP = f"{{{X.NS_SAMLP}}}"
_SAML = f"{{{X.NS_SAML}}}"


def signs_authn_requests(settings: SpFields, idp_wants_signed: bool) -> bool:
    """Whether AuthnRequests are signed: as ``sign_authn_requests`` says; when it is not set,
    whenever an SP key is configured (an IdP that has its certificate, uploaded for Single
    Logout, may refuse unsigned requests: SimpleSAMLphp does, Okta with "Signed Requests") or
    the IdP metadata asks (WantAuthnRequestsSigned). The development key pair alone does not
    sign: no IdP knows its certificate."""
    if settings.sign_authn_requests is not None:
        return settings.sign_authn_requests
    return bool(settings.sp_key) or idp_wants_signed


def new_request_id() -> str:
    """An xs:ID (an NCName: a letter first, then letters, digits, ``-``, ``_``) with 96 random
    bits; as long as pysaml2's, so the pending-sign-in cookies that carry it keep their size."""
    return "id-" + secrets.token_urlsafe(12)


class AuthnRequests:
    """Builds this gate's AuthnRequests for one IdP; signs them when :func:`signs_authn_requests`
    says so, with the SP key (RSA-SHA256, the only algorithm the SP key is used with)."""

    def __init__(self, settings: GateSettings, idp: IdpInfo, sp_key_pem: bytes) -> None:
        self._settings = settings
        self._idp = idp
        self.signed = signs_authn_requests(settings, idp.want_authn_requests_signed)
        self._key: xmlsec.Key | None = _rsa_key(sp_key_pem) if self.signed else None

    def url(
        self, relay_state: str, *, force_authn: bool = False, is_passive: bool = False
    ) -> tuple[str, str]:
        """(request ID, the IdP URL carrying the AuthnRequest). ``is_passive``: the IdP must
        answer without interacting with the person (re-assertion), so never together with
        ForceAuthn, which asks for the opposite."""
        request_id = new_request_id()
        xml = self._xml(request_id, force_authn=force_authn, is_passive=is_passive)
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        encoded = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode("ascii")
        fields = [("SAMLRequest", encoded)]
        if relay_state:
            fields.append(("RelayState", relay_state))
        if self._key is not None:
            fields.append(("SigAlg", X.RSA_SHA256))
        query = urlencode(fields, quote_via=quote_plus)
        if self._key is not None:
            query += "&Signature=" + quote_plus(base64.b64encode(self._sign(query)).decode())
        location = self._idp.sso_url
        return request_id, location + ("&" if "?" in location else "?") + query

    def _xml(self, request_id: str, *, force_authn: bool, is_passive: bool) -> bytes:
        settings = self._settings
        attributes = {
            "ID": request_id,
            "Version": "2.0",
            "IssueInstant": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Destination": self._idp.sso_url,
            "ProtocolBinding": X.BINDING_HTTP_POST,
            "AssertionConsumerServiceURL": settings.acs_url,
        }
        if is_passive:
            attributes["IsPassive"] = "true"
        elif force_authn or settings.force_authn:
            attributes["ForceAuthn"] = "true"
        nsmap = {"samlp": X.NS_SAMLP, "saml": X.NS_SAML}
        request = etree.Element(_SAMLP + "AuthnRequest", attributes, nsmap=nsmap)
        issuer = etree.SubElement(request, _SAML + "Issuer", Format=X.NAMEID_ENTITY)
        issuer.text = settings.entity_id
        etree.SubElement(
            request, _SAMLP + "NameIDPolicy", Format=settings.name_id_format, AllowCreate="true"
        )
        xml: bytes = etree.tostring(request)
        return xml

    def _sign(self, signed: str) -> bytes:
        """RSA-SHA256 (PKCS#1 v1.5) by libxmlsec: a verification child signs without
        importing cryptography. A signature context serves one signature."""
        assert self._key is not None
        context = xmlsec.SignatureContext()
        context.key = self._key
        signature: bytes = context.sign_binary(
            signed.encode("ascii"), xmlsec.constants.TransformRsaSha256
        )
        return signature


def _rsa_key(key_pem: bytes) -> xmlsec.Key:
    """The SP key, for RSA-SHA256; TypeError when it cannot sign so (not an RSA key)."""
    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    context = xmlsec.SignatureContext()
    context.key = key
    try:
        context.sign_binary(b"probe", xmlsec.constants.TransformRsaSha256)
    except xmlsec.Error as exc:
        raise TypeError("the SP key must be an RSA key to sign AuthnRequests (RSA-SHA256)") from exc
    return key
