"""IdP metadata: the few facts the gate takes from it (reading and fetching it is
:mod:`saml_gate.runtime.idp_source`'s).

pysaml2 parses the metadata (with defusedxml); the gate keeps only the entity ID, the SSO and SLO
endpoints, whether requests must be signed, and the signing certificates. Those certificates are
the only keys the verifier ever trusts.
"""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass
from typing import Any

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
    """Extract the IdP facts; raise ConfigError naming ``idp_metadata`` when they are missing."""
    from saml2 import SAMLError
    from saml2.attribute_converter import ac_factory
    from saml2.mdstore import InMemoryMetaData

    store = InMemoryMetaData(ac_factory(), xml)
    try:
        store.load()
    except (SAMLError, ValueError, TypeError) as exc:
        raise ConfigError("idp_metadata", f"is not valid SAML metadata: {exc}") from exc
    idps = [eid for eid in store.keys() if store[eid].get("idpsso_descriptor")]  # noqa: SIM118
    if entity_id is not None:
        if entity_id not in idps:
            raise ConfigError(
                "idp_entity_id", f"{entity_id!r} is not an IdP in the metadata (found: {idps})"
            )
        chosen = entity_id
    elif len(idps) == 1:
        chosen = idps[0]
    elif not idps:
        raise ConfigError("idp_metadata", "describes no IdP (no IDPSSODescriptor)")
    else:
        raise ConfigError("idp_entity_id", f"the metadata has several IdPs, choose one of {idps}")

    sso = _location(store, chosen, "single_sign_on_service", X.BINDING_HTTP_REDIRECT)
    if sso is None:
        raise ConfigError(
            "idp_metadata", "the IdP has no SingleSignOnService with the HTTP-Redirect binding"
        )
    slo = _location(store, chosen, "single_logout_service", X.BINDING_HTTP_REDIRECT)
    certs = tuple(
        dict.fromkeys(der_b64_to_pem(c[1]) for c in store.certs(chosen, "idpsso", "signing"))
    )
    if not certs:
        raise ConfigError("idp_metadata", "the IdP publishes no signing certificate")
    descriptor: dict[str, Any] = store[chosen]["idpsso_descriptor"][0]
    wants_signed = str(descriptor.get("want_authn_requests_signed", "false")).lower() in (
        "true",
        "1",
    )
    return IdpInfo(
        entity_id=chosen,
        sso_url=sso,
        slo_url=slo,
        signing_certs=certs,
        want_authn_requests_signed=wants_signed,
        metadata_xml=xml,
    )


def _location(store: Any, entity_id: str, service: str, binding: str) -> str | None:
    from saml2.s_utils import UnsupportedBinding

    try:
        found = store.service(entity_id, "idpsso_descriptor", service, binding)
    except UnsupportedBinding:
        return None
    return str(found[0]["location"]) if found else None
