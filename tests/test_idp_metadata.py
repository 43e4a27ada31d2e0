"""The gate reads IdP metadata itself (lxml) and takes from it what pysaml2's metadata store
took: the same IdP, endpoints, signing certificates and request signing, and a refusal of the
same setting where pysaml2's reading gave none. pysaml2's reading is the oracle here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from saml_gate.errors import ConfigError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo, choose_idp, der_b64_to_pem, parse_idp_metadata
from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.support import idp_metadata

FIXTURES = Path(__file__).parent / "fixtures" / "okta"


def pysaml2_reading(xml: str, entity_id: str | None = None) -> IdpInfo:
    """The gate's former reading, through pysaml2's InMemoryMetaData."""
    from saml2.attribute_converter import ac_factory
    from saml2.mdstore import InMemoryMetaData
    from saml2.s_utils import UnsupportedBinding

    store = InMemoryMetaData(ac_factory(), xml)
    store.load()
    idps = [eid for eid in store.keys() if store[eid].get("idpsso_descriptor")]  # noqa: SIM118
    chosen = choose_idp(idps, entity_id)  # the oracle stands in for the reading, not the choice

    def location(service: str) -> str | None:
        try:
            found = store.service(chosen, "idpsso_descriptor", service, X.BINDING_HTTP_REDIRECT)
        except UnsupportedBinding:
            return None
        return str(found[0]["location"]) if found else None

    sso = location("single_sign_on_service")
    if sso is None:
        raise ConfigError("idp_metadata", "no SSO")
    certs = tuple(
        dict.fromkeys(der_b64_to_pem(c[1]) for c in store.certs(chosen, "idpsso", "signing"))
    )
    if not certs:
        raise ConfigError("idp_metadata", "no certificate")
    descriptor: dict[str, Any] = store[chosen]["idpsso_descriptor"][0]
    wants = str(descriptor.get("want_authn_requests_signed", "false")).lower() in ("true", "1")
    return IdpInfo(chosen, sso, location("single_logout_service"), certs, wants, xml)


def outcome(read: Any, xml: str, entity_id: str | None) -> Any:
    try:
        return read(xml, entity_id)
    except ConfigError as exc:
        return ("refused", exc.setting)


@pytest.fixture(scope="module")
def second_key() -> KeyPair:
    return generate_keypair("second IdP key")


def _cert(keys: KeyPair) -> str:
    return "".join(line for line in keys.cert_pem.decode().splitlines() if "-----" not in line)


def _documents(first: KeyPair, second: KeyPair) -> dict[str, tuple[str, str | None]]:
    one = idp_metadata(first)
    body = one.split("?>", 1)[1]
    other = idp_metadata(second, "urn:other-idp").split("?>", 1)[1]
    cert = _cert(first)
    plus_key = (
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{X.NS_DS}"><ds:X509Data>'
        f"<ds:X509Certificate>{_cert(second)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>"
    )
    entities = f'<md:EntitiesDescriptor xmlns:md="{X.NS_MD}">{{}}</md:EntitiesDescriptor>'
    slo = (
        f'<md:SingleLogoutService Binding="{X.BINDING_HTTP_POST}" Location="https://p/slo"/>'
        f'<md:SingleLogoutService Binding="{X.BINDING_HTTP_REDIRECT}" Location="https://r/slo"/>'
    )
    docs: dict[str, tuple[str, str | None]] = {
        "dev IdP": (one, None),
        "no declaration": (body, None),
        "a comment": (one.replace("<md:NameIDFormat>", "<!-- c --><md:NameIDFormat>"), None),
        "second signing key": (
            one.replace("<md:NameIDFormat>", plus_key + "<md:NameIDFormat>"),
            None,
        ),
        "encryption key only": (one.replace('use="signing"', 'use="encryption"'), None),
        "key without use": (one.replace(' use="signing"', ""), None),
        "encryption key beside": (
            one.replace(
                "<md:NameIDFormat>",
                plus_key.replace('"signing"', '"encryption"') + "<md:NameIDFormat>",
            ),
            None,
        ),
        "two certificates in one X509Data": (
            one.replace(
                "</ds:X509Data>",
                f"<ds:X509Certificate>{_cert(second)}</ds:X509Certificate></ds:X509Data>",
            ),
            None,
        ),
        "requests signed": (
            one.replace('WantAuthnRequestsSigned="false"', 'WantAuthnRequestsSigned="true"'),
            None,
        ),
        "SLO": (one.replace("<md:NameIDFormat>", slo + "<md:NameIDFormat>"), None),
        "no redirect SSO": (one.replace(X.BINDING_HTTP_REDIRECT, X.BINDING_HTTP_POST), None),
        "SAML 1 only": (one.replace(X.NS_SAMLP, "urn:oasis:names:tc:SAML:1.1:protocol"), None),
        "SAML 1 and 2": (
            one.replace(X.NS_SAMLP, "urn:oasis:names:tc:SAML:1.1:protocol " + X.NS_SAMLP),
            None,
        ),
        "no IdP": (one.replace("IDPSSODescriptor", "SPSSODescriptor"), None),
        "entities, one": (entities.format(body), None),
        "entities, two": (entities.format(body + other), None),
        "entities, two, chosen": (entities.format(body + other), "urn:other-idp"),
        "entities, unknown chosen": (entities.format(body + other), "urn:nobody"),
        "entities, twice the same": (
            entities.format(body + body.replace(cert, _cert(second))),
            None,
        ),
        "entity expired": (
            entities.format(
                body.replace("entityID=", 'validUntil="2001-01-01T00:00:00Z" entityID=') + other
            ),
            None,
        ),
        "entity valid": (
            entities.format(
                body.replace("entityID=", 'validUntil="2999-01-01T00:00:00Z" entityID=')
            ),
            None,
        ),
        "not metadata": ("<a/>", None),
    }
    for path in sorted(FIXTURES.glob("*_idp_metadata.xml")):
        docs[path.name] = (path.read_text(), None)
    return docs


def test_the_gate_reads_metadata_as_pysaml2_did(idp_keys: KeyPair, second_key: KeyPair) -> None:
    for name, (xml, entity_id) in _documents(idp_keys, second_key).items():
        ours = outcome(parse_idp_metadata, xml, entity_id)
        theirs = outcome(pysaml2_reading, xml, entity_id)
        assert ours == theirs, name


@pytest.mark.parametrize(
    "xml",
    [
        "not xml",
        '<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>',
        f'<md:EntitiesDescriptor xmlns:md="{X.NS_MD}" validUntil="2001-01-01T00:00:00Z"/>',
    ],
)
def test_metadata_that_is_not_usable_is_refused_naming_the_setting(xml: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_idp_metadata(xml)
    assert caught.value.setting == "idp_metadata"


def test_a_signing_certificate_whose_key_cannot_be_read_is_refused(idp_keys: KeyPair) -> None:
    cert = _cert(idp_keys)
    broken = idp_metadata(idp_keys).replace(cert, "bm90IGEgY2VydGlmaWNhdGU=")  # valid base64
    with pytest.raises(ConfigError) as caught:
        parse_idp_metadata(broken)
    assert caught.value.setting == "idp_metadata"
