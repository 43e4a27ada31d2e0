"""Okta-shaped SAML Responses: build the tree, then sign / encrypt / sign and serialize."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree

from saml_gate.devidp.signing import encrypt_assertion, sign_element
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair

#: Okta starts the validity window this long before the issue instant.
NOT_BEFORE_SKEW = timedelta(minutes=5)

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


@dataclass(frozen=True)
class ResponseSpec:
    """What a Response says. Defaults give a successful, Okta-like Response."""

    issuer: str
    destination: str
    """The SP's ACS URL; also the SubjectConfirmationData Recipient."""
    audience: str
    name_id: str
    name_id_format: str = X.NAMEID_EMAIL
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    in_response_to: str | None = None
    session_index: str | None = None
    """Random when None."""
    authn_context_class_ref: str = X.AC_PASSWORD_PROTECTED
    now: datetime | None = None
    """The issue instant (UTC); the current time when None."""
    assertion_lifetime: timedelta = timedelta(minutes=5)
    session_lifetime: timedelta | None = timedelta(hours=8)
    """SessionNotOnOrAfter = now + this; None omits the attribute."""
    authn_instant: datetime | None = None
    """Defaults to ``now``."""
    response_id: str | None = None
    assertion_id: str | None = None
    status_code: str = X.STATUS_SUCCESS
    status_detail: str | None = None
    """A second-level StatusCode (``NoPassive`` under ``Responder``)."""
    status_message: str | None = None
    include_assertion: bool = True
    """False for error responses (Okta sends none when e.g. the user is not assigned)."""


def new_id() -> str:
    """A random SAML ID (xs:ID must start with a letter, so no leading digit)."""
    return "id" + secrets.token_hex(16)


def saml_instant(moment: datetime) -> str:
    """``2020-03-03T19:40:54.699Z``: UTC with milliseconds, as Okta writes instants."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _saml(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, _q(X.NS_SAML, local))
    if text is not None:
        child.text = text
    return child


def build_response(spec: ResponseSpec) -> etree._Element:
    """The unsigned ``saml2p:Response`` tree, element and attribute order as Okta's."""
    now = spec.now if spec.now is not None else datetime.now(UTC)
    issue_instant = saml_instant(now)
    not_on_or_after = saml_instant(now + spec.assertion_lifetime)

    response = etree.Element(_q(X.NS_SAMLP, "Response"), nsmap={"saml2p": X.NS_SAMLP})
    response.set("Destination", spec.destination)
    response.set("ID", spec.response_id or new_id())
    if spec.in_response_to is not None:
        response.set("InResponseTo", spec.in_response_to)
    response.set("IssueInstant", issue_instant)
    response.set("Version", "2.0")

    issuer = etree.SubElement(response, _q(X.NS_SAML, "Issuer"), nsmap={"saml2": X.NS_SAML})
    issuer.set("Format", X.NAMEID_ENTITY)
    issuer.text = spec.issuer

    status = etree.SubElement(response, _q(X.NS_SAMLP, "Status"))
    code = etree.SubElement(status, _q(X.NS_SAMLP, "StatusCode"), Value=spec.status_code)
    if spec.status_detail is not None:
        etree.SubElement(code, _q(X.NS_SAMLP, "StatusCode"), Value=spec.status_detail)
    if spec.status_message is not None:
        etree.SubElement(status, _q(X.NS_SAMLP, "StatusMessage")).text = spec.status_message

    if not spec.include_assertion:
        return response

    assertion = etree.SubElement(response, _q(X.NS_SAML, "Assertion"), nsmap={"saml2": X.NS_SAML})
    assertion.set("ID", spec.assertion_id or new_id())
    assertion.set("IssueInstant", issue_instant)
    assertion.set("Version", "2.0")
    a_issuer = _saml(assertion, "Issuer", spec.issuer)
    a_issuer.set("Format", X.NAMEID_ENTITY)

    subject = _saml(assertion, "Subject")
    _saml(subject, "NameID", spec.name_id).set("Format", spec.name_id_format)
    confirmation = _saml(subject, "SubjectConfirmation")
    confirmation.set("Method", X.CM_BEARER)
    data = _saml(confirmation, "SubjectConfirmationData")
    if spec.in_response_to is not None:
        data.set("InResponseTo", spec.in_response_to)
    data.set("NotOnOrAfter", not_on_or_after)
    data.set("Recipient", spec.destination)

    conditions = _saml(assertion, "Conditions")
    conditions.set("NotBefore", saml_instant(now - NOT_BEFORE_SKEW))
    conditions.set("NotOnOrAfter", not_on_or_after)
    _saml(_saml(conditions, "AudienceRestriction"), "Audience", spec.audience)

    authn = _saml(assertion, "AuthnStatement")
    authn.set("AuthnInstant", saml_instant(spec.authn_instant or now))
    authn.set("SessionIndex", spec.session_index or new_id())
    if spec.session_lifetime is not None:
        authn.set("SessionNotOnOrAfter", saml_instant(now + spec.session_lifetime))
    context = _saml(authn, "AuthnContext")
    _saml(context, "AuthnContextClassRef", spec.authn_context_class_ref)

    if spec.attributes:
        statement = _saml(assertion, "AttributeStatement")
        for name, values in spec.attributes.items():
            if isinstance(values, str):
                raise TypeError(f"attribute {name!r}: give a sequence of strings, not a string")
            attribute = _saml(statement, "Attribute")
            attribute.set("Name", name)
            attribute.set("NameFormat", X.ATTRNAME_UNSPECIFIED)
            for value in values:
                av = etree.SubElement(
                    attribute,
                    _q(X.NS_SAML, "AttributeValue"),
                    nsmap={"xs": X.NS_XS, "xsi": X.NS_XSI},
                )
                av.set(_q(X.NS_XSI, "type"), "xs:string")
                av.text = value
    return response


def issue_response(
    spec: ResponseSpec,
    keypair: KeyPair,
    *,
    sign_response: bool = True,
    sign_assertion: bool = True,
    encrypt_to: bytes | None = None,
    data_algorithm: str = X.AES256_CBC,
    okta_retrieval_method: bool = False,
    signature_algorithm: str = X.RSA_SHA256,
    digest_algorithm: str = X.DIGEST_SHA256,
) -> bytes:
    """The Response as UTF-8 XML with a declaration, signed and encrypted as asked.

    Order matters and is Okta's: sign the Assertion, encrypt it to ``encrypt_to`` (a PEM
    certificate), then sign the Response over the EncryptedAssertion.
    """
    response = build_response(spec)
    assertion = response.find(_q(X.NS_SAML, "Assertion"))
    if assertion is not None:
        if sign_assertion:
            sign_element(
                assertion,
                keypair,
                signature_algorithm=signature_algorithm,
                digest_algorithm=digest_algorithm,
                # Okta's: xsi:type="xs:string" uses "xs" only in a value, which exclusive
                # c14n would otherwise not see.
                inclusive_prefixes=("xs",),
            )
        if encrypt_to is not None:
            encrypt_assertion(
                response,
                encrypt_to,
                data_algorithm=data_algorithm,
                okta_retrieval_method=okta_retrieval_method,
            )
    if sign_response:
        sign_element(
            response,
            keypair,
            signature_algorithm=signature_algorithm,
            digest_algorithm=digest_algorithm,
        )
    body: bytes = etree.tostring(response, encoding="UTF-8", xml_declaration=False)
    return _XML_DECLARATION + body
