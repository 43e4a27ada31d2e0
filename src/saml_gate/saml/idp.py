"""IdP metadata: the few facts the gate takes from it (reading and fetching it is
:mod:`saml_gate.runtime.idp_source`'s).

Read with lxml (no DTD, no entities, no network), as pysaml2's metadata store read it; the gate
keeps only the entity ID, the SSO and SLO endpoints, whether requests must be signed, and the
signing certificates. Those certificates are the only keys the verifier ever trusts. Not pysaml2:
the app's process then never imports it (about 20 MB).
"""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from saml_gate.errors import ConfigError
from saml_gate.saml import xmlconst as X


@dataclass(frozen=True)
class IdpInfo:
    entity_id: str
    sso_url: str
    """SingleSignOnService location for the HTTP-Redirect binding."""
    slo_url: str | None
    signing_certs: tuple[bytes, ...]
    """PEM certificates, from KeyDescriptors with use="signing" or no use."""
    want_authn_requests_signed: bool
    metadata_xml: str
    signing_keys: tuple[bytes, ...] = field(init=False, compare=False, repr=False)
    """The public key of each of :attr:`signing_certs` (PEM SubjectPublicKeyInfo), read once
    here: a verification child hands them to libxmlsec without importing cryptography (about
    6 MB of private memory per child)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "signing_keys", tuple(map(public_key_pem, self.signing_certs)))


def der_b64_to_pem(b64: str) -> bytes:
    body = "".join(b64.split())
    try:
        base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise ConfigError("idp_metadata", "a signing certificate is not valid base64") from exc
    return (
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(textwrap.wrap(body, 64))
        + "\n-----END CERTIFICATE-----\n"
    ).encode()


def parse_idp_metadata(xml: str, entity_id: str | None = None) -> IdpInfo:
    """Extract the IdP facts; raise ConfigError naming ``idp_metadata`` when they are missing.

    What pysaml2's metadata store took (tests/test_idp_metadata.py compares the two): an
    EntityDescriptor, or the EntityDescriptors directly in an EntitiesDescriptor (the first of
    an entityID; one whose validUntil has passed is left out, a whole document whose validUntil
    has passed is refused); its IDPSSODescriptors that support SAML 2.0; in their order, the
    first HTTP-Redirect SingleSignOnService and SingleLogoutService; the X509Certificate of
    each KeyDescriptor with use="signing" or no use."""
    root = _metadata_root(xml)
    entities: dict[str, list[Any]] = {}
    if root.tag == _MD + "EntitiesDescriptor":
        if _expired(root):
            raise ConfigError(
                "idp_metadata", "is not valid SAML metadata: its validUntil has passed"
            )
        found = root.findall(_MD + "EntityDescriptor")
    else:
        found = [root] if root.tag == _MD + "EntityDescriptor" else []
    for entity in found:
        name = entity.get("entityID")
        if name is None or name in entities or _expired(entity):
            continue
        entities[name] = [
            descriptor
            for descriptor in entity.findall(_MD + "IDPSSODescriptor")
            if X.NS_SAMLP in descriptor.get("protocolSupportEnumeration", "").split(" ")
        ]
    chosen = choose_idp([name for name, descriptors in entities.items() if descriptors], entity_id)
    descriptors = entities[chosen]
    sso = _location(descriptors, "SingleSignOnService")
    if sso is None:
        raise ConfigError(
            "idp_metadata", "the IdP has no SingleSignOnService with the HTTP-Redirect binding"
        )
    certs = tuple(
        dict.fromkeys(der_b64_to_pem(text) for text in _signing_certificates(descriptors))
    )
    if not certs:
        raise ConfigError("idp_metadata", "the IdP publishes no signing certificate")
    for pem in certs:
        _check_certificate(pem)
    wants_signed = descriptors[0].get("WantAuthnRequestsSigned", "false").lower() in ("true", "1")
    return IdpInfo(
        entity_id=chosen,
        sso_url=sso,
        slo_url=_location(descriptors, "SingleLogoutService"),
        signing_certs=certs,
        want_authn_requests_signed=wants_signed,
        metadata_xml=xml,
    )


def choose_idp(idps: list[str], entity_id: str | None) -> str:
    """The IdP the gate trusts among the metadata's IdPs (entity IDs, in document order):
    ``idp_entity_id`` when set, else the only one; ConfigError naming the setting otherwise."""
    if entity_id is not None:
        if entity_id not in idps:
            raise ConfigError(
                "idp_entity_id", f"{entity_id!r} is not an IdP in the metadata (found: {idps})"
            )
        return entity_id
    if len(idps) == 1:
        return idps[0]
    if not idps:
        raise ConfigError("idp_metadata", "describes no IdP (no IDPSSODescriptor)")
    raise ConfigError("idp_entity_id", f"the metadata has several IdPs, choose one of {idps}")


_MD: Final = f"{{{X.NS_MD}}}"
_DS: Final = f"{{{X.NS_DS}}}"


def _metadata_root(xml: str) -> Any:
    """The document element, parsed with no DTD, no entities and no network (the document is
    read as UTF-8 whatever it declares: it came as text)."""
    from lxml import etree

    parser = etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ConfigError("idp_metadata", f"is not valid SAML metadata: {exc}") from exc
    info: Any = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise ConfigError("idp_metadata", "is not valid SAML metadata: it has a DOCTYPE")
    return root


def _check_certificate(pem: bytes) -> None:
    """Refuse a signing certificate whose public key cannot be read: the verifiers (built in
    the children, or on first use) would fail on it at every sign-in."""
    try:
        public_key_pem(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError("idp_metadata", f"a signing certificate cannot be read: {exc}") from exc


def public_key_pem(cert_pem: bytes) -> bytes:
    """A PEM certificate's public key as PEM SubjectPublicKeyInfo (ValueError or TypeError
    when it cannot be read)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _expired(element: Any) -> bool:
    """Whether the element's validUntil has passed."""
    text = element.get("validUntil")
    if text is None:
        return False
    try:
        until = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            "idp_metadata", f"is not valid SAML metadata: validUntil {text!r}"
        ) from exc
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until <= datetime.now(UTC)


def _location(descriptors: list[Any], service: str) -> str | None:
    """The Location of the first ``service`` with the HTTP-Redirect binding, or None."""
    for descriptor in descriptors:
        for endpoint in descriptor.iterfind(_MD + service):
            if endpoint.get("Binding") == X.BINDING_HTTP_REDIRECT:
                location = endpoint.get("Location")
                if location is None:
                    raise ConfigError("idp_metadata", f"a {service} has no Location")
                return str(location)
    return None


def _signing_certificates(descriptors: list[Any]) -> list[str]:
    """The base64 text of each signing certificate: one per X509Data (its last, as pysaml2)."""
    found = []
    for descriptor in descriptors:
        for key in descriptor.iterfind(_MD + "KeyDescriptor"):
            if key.get("use", "signing") != "signing":
                continue
            for data in key.iterfind(f"{_DS}KeyInfo/{_DS}X509Data"):
                certificates = data.findall(_DS + "X509Certificate")
                if certificates:
                    found.append(certificates[-1].text or "")
    return found
