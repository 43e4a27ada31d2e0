"""What the test IdP signs: a person's Response (or a deliberately wrong one) and LogoutRequests.

Responses are the development IdP's (:func:`saml_gate.devidp.response.issue_response`): shaped
like Okta's, the Assertion signed. The gate checks them as it checks any IdP's; nothing here
knows how the gate verifies.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from lxml import etree

from saml_gate.devidp.response import ResponseSpec, issue_response, new_id, saml_instant
from saml_gate.devidp.signing import sign_element
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair

DEFAULT_EMAIL = "user@example.com"

AUTHN_CONTEXTS: Mapping[str, str] = {
    "password": X.AC_PASSWORD_PROTECTED,
    "mfa": "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
}
"""Short names ``authn_context`` accepts besides a full AuthnContextClassRef URI."""


class PersonFields(TypedDict, total=False):
    """Who signs in: the keywords of ``sign_in`` and its siblings (all optional)."""

    email: str
    """Default ``user@example.com``; the NameID too unless ``name_id`` is given."""
    groups: Sequence[str]
    """The groups attribute's values (default: none)."""
    attributes: Mapping[str, Sequence[str]]
    """More attributes (``{"displayName": ["Ann"]}``); they win over ``email`` and ``groups``."""
    name_id: str | None
    authn_context: str | None
    """An AuthnContextClassRef URI, or ``"password"`` (the default) or ``"mfa"``."""
    authn_age: float
    """How many seconds before now the person authenticated at the IdP (default 0)."""


class ResponseFields(PersonFields, total=False):
    """``post_response``'s keywords: the person, and what to get wrong on purpose."""

    expired: bool
    """Issued an hour ago: its validity window has passed."""
    audience: str | None
    """An Audience other than this SP's entity ID."""
    tampered: bool
    """Signed, then altered (the NameID): no signature holds."""
    unsigned: bool
    """Neither the Response nor the Assertion is signed."""
    issuer: str | None
    """An Issuer other than the test IdP's entity ID."""


@dataclass(frozen=True)
class Mistakes:
    """What a Response gets wrong on purpose (none by default)."""

    expired: bool = False
    audience: str | None = None
    tampered: bool = False
    unsigned: bool = False
    issuer: str | None = None

    @classmethod
    def asked_by(cls, fields: ResponseFields) -> Mistakes:
        """The mistakes ``post_response``'s keywords ask for."""
        return cls(
            expired=fields.get("expired", False),
            audience=fields.get("audience"),
            tampered=fields.get("tampered", False),
            unsigned=fields.get("unsigned", False),
            issuer=fields.get("issuer"),
        )


@dataclass(frozen=True)
class AttributeNames:
    """Which attributes carry the email and the groups (the gate's settings of those names)."""

    email: str = "email"
    groups: str = "groups"


@dataclass(frozen=True)
class Signing:
    """What the test IdP signs. The Assertion always (Okta's default); the Response as well
    only when the gate asks for it (``want_response_signed``): each RSA signature costs about
    1.5 ms, the kit's largest share of a sign-in."""

    response: bool = False


@dataclass(frozen=True)
class Recipient:
    """Where a Response goes and for whom: the ACS URL, the SP's entity ID, the request ID."""

    acs_url: str
    audience: str
    in_response_to: str | None = None


@dataclass(frozen=True)
class SignedResponse:
    """A Response ready to post (base64) and the SessionIndex it gave the person's session."""

    saml_response: str
    session_index: str
    name_id: str


@dataclass
class ResponseSigner:
    """Signs Responses and LogoutRequests as the test IdP ``entity_id`` with ``keys``."""

    entity_id: str
    keys: KeyPair
    names: AttributeNames = field(default_factory=AttributeNames)
    signing: Signing = field(default_factory=Signing)

    def response(
        self, to: Recipient, fields: PersonFields, now: float, wrong: Mistakes | None = None
    ) -> SignedResponse:
        """The base64 Response for the person ``fields`` describe, at ``now`` (epoch seconds),
        with the ``wrong`` parts."""
        wrong = wrong or Mistakes()
        email = fields.get("email", DEFAULT_EMAIL)
        name_id = fields.get("name_id") or email
        issued = _utc(now)
        if wrong.expired:
            issued -= timedelta(hours=1)
        session_index = new_id()
        spec = ResponseSpec(
            issuer=wrong.issuer or self.entity_id,
            destination=to.acs_url,
            audience=wrong.audience or to.audience,
            name_id=name_id,
            attributes=self._attributes(email, fields),
            in_response_to=to.in_response_to,
            session_index=session_index,
            authn_context_class_ref=_authn_context(fields.get("authn_context")),
            now=issued,
            authn_instant=issued - timedelta(seconds=fields.get("authn_age", 0)),
        )
        signed = not wrong.unsigned
        xml = issue_response(
            spec, self.keys, sign_response=signed and self.signing.response, sign_assertion=signed
        )
        if wrong.tampered:
            xml = _tamper(xml, name_id)
        return SignedResponse(base64.b64encode(xml).decode("ascii"), session_index, name_id)

    def no_passive(self, to: Recipient, now: float) -> str:
        """The base64 Response of an IdP asked to answer without a prompt (``IsPassive``) that
        has no session for the person: status Responder / NoPassive, no assertion, signed."""
        spec = ResponseSpec(
            issuer=self.entity_id,
            destination=to.acs_url,
            audience=to.audience,
            name_id="",
            in_response_to=to.in_response_to,
            now=_utc(now),
            status_code=X.STATUS_RESPONDER,
            status_detail=X.STATUS_NO_PASSIVE,
            include_assertion=False,
        )
        xml = issue_response(spec, self.keys, sign_response=True, sign_assertion=False)
        return base64.b64encode(xml).decode("ascii")

    def _attributes(self, email: str, fields: PersonFields) -> dict[str, Sequence[str]]:
        attributes: dict[str, Sequence[str]] = {self.names.email: [email]}
        groups = fields.get("groups", ())
        if isinstance(groups, str):
            raise TypeError("groups: give a list of group names, not a string")
        if groups:
            attributes[self.names.groups] = list(groups)
        attributes.update(fields.get("attributes", {}))
        return attributes

    def logout_request(
        self, destination: str, name_id: str, session_indexes: Sequence[str], now: float
    ) -> str:
        """A signed LogoutRequest for the HTTP-POST binding (base64): end these sessions of
        ``name_id`` (every session of the person when ``session_indexes`` is empty)."""
        root = self._logout_message("LogoutRequest", destination, now)
        root.set("NotOnOrAfter", saml_instant(_utc(now) + timedelta(minutes=5)))
        subject = etree.SubElement(root, _q(X.NS_SAML, "NameID"), Format=X.NAMEID_EMAIL)
        subject.text = name_id
        for index in session_indexes:
            etree.SubElement(root, _q(X.NS_SAMLP, "SessionIndex")).text = index
        return self._signed_base64(root)

    def logout_response(self, destination: str, in_response_to: str, now: float) -> str:
        """A signed, successful LogoutResponse for the HTTP-POST binding (base64)."""
        root = self._logout_message("LogoutResponse", destination, now)
        root.set("InResponseTo", in_response_to)
        status = etree.SubElement(root, _q(X.NS_SAMLP, "Status"))
        etree.SubElement(status, _q(X.NS_SAMLP, "StatusCode"), Value=X.STATUS_SUCCESS)
        return self._signed_base64(root)

    def _logout_message(self, kind: str, destination: str, now: float) -> etree._Element:
        root = etree.Element(_q(X.NS_SAMLP, kind), nsmap={"saml2p": X.NS_SAMLP})
        root.set("Destination", destination)
        root.set("ID", new_id())
        root.set("IssueInstant", saml_instant(_utc(now)))
        root.set("Version", "2.0")
        issuer = etree.SubElement(root, _q(X.NS_SAML, "Issuer"), nsmap={"saml2": X.NS_SAML})
        issuer.text = self.entity_id
        return root

    def _signed_base64(self, root: etree._Element) -> str:
        sign_element(root, self.keys)
        return base64.b64encode(etree.tostring(root)).decode("ascii")


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _authn_context(given: str | None) -> str:
    if not given:
        return X.AC_PASSWORD_PROTECTED
    return AUTHN_CONTEXTS.get(given, given)


def _tamper(xml: bytes, name_id: str) -> bytes:
    """The signed XML with the NameID changed, as an attacker editing a captured Response."""
    root = etree.fromstring(xml)
    for subject in root.iter(_q(X.NS_SAML, "NameID")):
        subject.text = f"x{secrets.token_hex(2)}-{name_id}"
    altered: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return altered


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"
