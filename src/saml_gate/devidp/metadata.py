"""IdP metadata for the development IdP, shaped like the metadata Okta publishes for an app."""

from __future__ import annotations

from lxml import etree

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair, cert_base64


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def idp_metadata_xml(
    *, entity_id: str, sso_url: str, slo_url: str | None, keypair: KeyPair
) -> bytes:
    """``md:EntityDescriptor`` with one IDPSSODescriptor (children in schema order)."""
    root = etree.Element(_q(X.NS_MD, "EntityDescriptor"), nsmap={"md": X.NS_MD})
    root.set("entityID", entity_id)
    idp = etree.SubElement(root, _q(X.NS_MD, "IDPSSODescriptor"))
    idp.set("WantAuthnRequestsSigned", "false")
    idp.set("protocolSupportEnumeration", X.NS_SAMLP)

    key_descriptor = etree.SubElement(idp, _q(X.NS_MD, "KeyDescriptor"), use="signing")
    key_info = etree.SubElement(key_descriptor, _q(X.NS_DS, "KeyInfo"), nsmap={"ds": X.NS_DS})
    x509_data = etree.SubElement(key_info, _q(X.NS_DS, "X509Data"))
    etree.SubElement(x509_data, _q(X.NS_DS, "X509Certificate")).text = cert_base64(keypair.cert_pem)

    if slo_url is not None:
        etree.SubElement(
            idp,
            _q(X.NS_MD, "SingleLogoutService"),
            Binding=X.BINDING_HTTP_REDIRECT,
            Location=slo_url,
        )
    etree.SubElement(idp, _q(X.NS_MD, "NameIDFormat")).text = X.NAMEID_EMAIL
    for binding in (X.BINDING_HTTP_POST, X.BINDING_HTTP_REDIRECT):
        etree.SubElement(idp, _q(X.NS_MD, "SingleSignOnService"), Binding=binding, Location=sso_url)
    xml: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
    return xml
