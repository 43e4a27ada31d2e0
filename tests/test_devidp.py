"""The development IdP: Okta-shaped responses, signatures, encryption, metadata and routes."""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import re
import stat
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlsec
from lxml import etree

from saml_gate.devidp import (
    DEFAULT_ENTITY_ID,
    DEFAULT_USERS,
    DevIdP,
    DevUser,
    KeyPair,
    ResponseSpec,
    build_response,
    encrypt_assertion,
    generate_keypair,
    idp_metadata_xml,
    issue_response,
    load_or_create_keypair,
    sign_element,
)
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import cert_base64

NS = {"saml2p": X.NS_SAMLP, "saml2": X.NS_SAML, "ds": X.NS_DS, "xenc": X.NS_XENC, "md": X.NS_MD}
BASE = "http://127.0.0.1:8000"
MOUNT = "/saml/devidp"
PUBLIC_URL = BASE + MOUNT
SP_ENTITY_ID = BASE + "/saml/metadata"
ACS_URL = BASE + "/saml/acs"
FIXTURES = Path(__file__).parent / "fixtures" / "okta"


def make_spec(**overrides: Any) -> ResponseSpec:
    values: dict[str, Any] = {
        "issuer": DEFAULT_ENTITY_ID,
        "destination": ACS_URL,
        "audience": SP_ENTITY_ID,
        "name_id": "alice@example.com",
        "attributes": {
            "email": ["alice@example.com"],
            "displayName": ["Alice Admin"],
            "groups": ["admins", "users"],
        },
        "in_response_to": "id-4f1c2e0a9b",
        "now": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    }
    values.update(overrides)
    return ResponseSpec(**values)


# ---------------------------------------------------------------------- XSD validation
class _LocalSchemas(etree.Resolver):
    """Every schemaLocation (relative name or w3.org URL) -> pysaml2's bundled copy."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        candidate = self.folder / (system_url or "").rsplit("/", 1)[-1]
        if candidate.is_file():
            return self.resolve_filename(str(candidate), context)
        raise LookupError(f"no offline copy of {system_url!r}")


def _schema(name: str) -> etree.XMLSchema:
    folder = Path(str(resources.files("saml2") / "data" / "schemas"))
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalSchemas(folder))
    return etree.XMLSchema(etree.parse(str(folder / name), parser))


@pytest.fixture(scope="module")
def protocol_schema() -> etree.XMLSchema:
    return _schema("saml-schema-protocol-2.0.xsd")


@pytest.fixture(scope="module")
def metadata_schema() -> etree.XMLSchema:
    return _schema("saml-schema-metadata-2.0.xsd")


def assert_valid(schema: etree.XMLSchema, root: etree._Element) -> None:
    assert schema.validate(root), schema.error_log


# ---------------------------------------------------------------------- xmlsec helpers
def verify(element: etree._Element, cert_pem: bytes) -> None:
    """Verify the enveloped signature that is a direct child of ``element``, key from cert."""
    signature = element.find("ds:Signature", NS)
    assert signature is not None, "no signature"
    ctx = xmlsec.SignatureContext()
    ctx.register_id(element, "ID")
    ctx.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify(signature)


def decrypt(response: etree._Element, sp_key_pem: bytes) -> etree._Element:
    """Decrypt the EncryptedAssertion in place; returns the Assertion."""
    enc_data = response.find("saml2:EncryptedAssertion/xenc:EncryptedData", NS)
    assert enc_data is not None
    # Okta's layout: the KeyInfo's RetrievalMethod points at the EncryptedKey's "Id".
    for enc_key in response.iterfind("saml2:EncryptedAssertion/xenc:EncryptedKey", NS):
        xmlsec.tree.add_ids(enc_key, ["Id"])
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_key_pem, xmlsec.constants.KeyDataFormatPem))
    ctx = xmlsec.EncryptionContext(manager)
    assertion: etree._Element = ctx.decrypt(enc_data)
    return assertion


def parse(xml: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root: etree._Element = etree.fromstring(xml, parser)
    return root


# ---------------------------------------------------------------------- keys
def test_generate_keypair_is_rsa2048_self_signed_sha256() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    idp_keys = generate_keypair("saml-gate development IdP")
    cert = x509.load_pem_x509_certificate(idp_keys.cert_pem)
    key = serialization.load_pem_private_key(idp_keys.key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key() == cert.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.subject == cert.issuer
    assert "saml-gate development IdP" in cert.subject.rfc4514_string()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > timedelta(days=3600)
    der = base64.b64decode(cert_base64(idp_keys.cert_pem))
    assert der == cert.public_bytes(serialization.Encoding.DER)


def test_load_or_create_keypair(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    pair, created = load_or_create_keypair(directory, "idp", "dev IdP")
    assert created
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "idp.key.pem").stat().st_mode) == 0o600
    assert (directory / "idp.cert.pem").read_bytes() == pair.cert_pem
    assert sorted(p.name for p in directory.iterdir()) == ["idp.cert.pem", "idp.key.pem"]
    again, created_again = load_or_create_keypair(directory, "idp", "dev IdP")
    assert not created_again and again == pair
    other, _ = load_or_create_keypair(directory, "sp", "dev SP")
    assert other != pair
    (directory / "sp.cert.pem").unlink()
    with pytest.raises(FileNotFoundError, match=r"sp\.cert\.pem"):
        load_or_create_keypair(directory, "sp", "dev SP")


# ---------------------------------------------------------------------- response shape
def test_build_response_is_okta_shaped(protocol_schema: etree.XMLSchema) -> None:
    response = build_response(make_spec(session_index="sess-1"))
    assert_valid(protocol_schema, response)
    assert response.prefix == "saml2p"
    assert response.get("Destination") == ACS_URL
    assert response.get("InResponseTo") == "id-4f1c2e0a9b"
    assert response.get("IssueInstant") == "2024-05-06T07:08:09.123Z"
    assert re.fullmatch(r"id[0-9a-f]{32}", response.get("ID") or "")
    issuer = response.find("saml2:Issuer", NS)
    assert issuer is not None and issuer.text == DEFAULT_ENTITY_ID
    assert issuer.get("Format") == X.NAMEID_ENTITY
    assert response.find("saml2p:Status/saml2p:StatusCode", NS).get("Value") == X.STATUS_SUCCESS
    assertion = response.find("saml2:Assertion", NS)
    assert assertion is not None and assertion.prefix == "saml2"
    assert assertion.get("ID") != response.get("ID")
    assert [etree.QName(c).localname for c in assertion] == [
        "Issuer",
        "Subject",
        "Conditions",
        "AuthnStatement",
        "AttributeStatement",
    ]
    name_id = assertion.find("saml2:Subject/saml2:NameID", NS)
    assert name_id.text == "alice@example.com" and name_id.get("Format") == X.NAMEID_EMAIL
    confirmation = assertion.find("saml2:Subject/saml2:SubjectConfirmation", NS)
    assert confirmation.get("Method") == X.CM_BEARER
    data = confirmation.find("saml2:SubjectConfirmationData", NS)
    assert data.attrib == {
        "InResponseTo": "id-4f1c2e0a9b",
        "NotOnOrAfter": "2024-05-06T07:13:09.123Z",
        "Recipient": ACS_URL,
    }
    conditions = assertion.find("saml2:Conditions", NS)
    assert conditions.get("NotBefore") == "2024-05-06T07:03:09.123Z"
    assert conditions.get("NotOnOrAfter") == "2024-05-06T07:13:09.123Z"
    assert conditions.findtext("saml2:AudienceRestriction/saml2:Audience", namespaces=NS) == (
        SP_ENTITY_ID
    )
    authn = assertion.find("saml2:AuthnStatement", NS)
    assert authn.attrib == {
        "AuthnInstant": "2024-05-06T07:08:09.123Z",
        "SessionIndex": "sess-1",
        "SessionNotOnOrAfter": "2024-05-06T15:08:09.123Z",
    }
    assert (
        authn.findtext("saml2:AuthnContext/saml2:AuthnContextClassRef", namespaces=NS)
        == X.AC_PASSWORD_PROTECTED
    )
    attributes = {
        a.get("Name"): [v.text for v in a] for a in assertion.iterfind(".//saml2:Attribute", NS)
    }
    assert attributes == {
        "email": ["alice@example.com"],
        "displayName": ["Alice Admin"],
        "groups": ["admins", "users"],
    }
    for attribute in assertion.iterfind(".//saml2:Attribute", NS):
        assert attribute.get("NameFormat") == X.ATTRNAME_UNSPECIFIED
    value = assertion.find(".//saml2:AttributeValue", NS)
    assert value.get(f"{{{X.NS_XSI}}}type") == "xs:string"
    assert value.nsmap["xs"] == X.NS_XS and value.nsmap["xsi"] == X.NS_XSI
    assert b'xmlns:xs="http://www.w3.org/2001/XMLSchema"' in etree.tostring(value)


def test_build_response_variants(protocol_schema: etree.XMLSchema) -> None:
    unsolicited = build_response(
        make_spec(in_response_to=None, attributes={}, session_lifetime=None)
    )
    assert_valid(protocol_schema, unsolicited)
    assert "InResponseTo" not in unsolicited.attrib
    assert unsolicited.find(".//saml2:SubjectConfirmationData", NS).get("InResponseTo") is None
    assert unsolicited.find(".//saml2:AttributeStatement", NS) is None
    assert unsolicited.find(".//saml2:AuthnStatement", NS).get("SessionNotOnOrAfter") is None
    session_index = unsolicited.find(".//saml2:AuthnStatement", NS).get("SessionIndex")
    assert re.fullmatch(r"id[0-9a-f]{32}", session_index or "")

    error = build_response(
        make_spec(
            include_assertion=False,
            status_code="urn:oasis:names:tc:SAML:2.0:status:Responder",
            status_message="User is not assigned to this application",
        )
    )
    assert_valid(protocol_schema, error)
    assert error.find("saml2:Assertion", NS) is None
    assert error.findtext("saml2p:Status/saml2p:StatusMessage", namespaces=NS) == (
        "User is not assigned to this application"
    )

    fixed = build_response(make_spec(response_id="idR", assertion_id="idA"))
    assert fixed.get("ID") == "idR" and fixed.find("saml2:Assertion", NS).get("ID") == "idA"


# ---------------------------------------------------------------------- signatures
def test_issue_response_signed_like_okta(
    idp_keys: KeyPair, protocol_schema: etree.XMLSchema
) -> None:
    xml = issue_response(make_spec(), idp_keys)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?><saml2p:Response ')
    response = parse(xml)
    assert_valid(protocol_schema, response)
    assertion = response.find("saml2:Assertion", NS)
    for element in (response, assertion):
        # Enveloped signature right after Issuer, one reference to the element's ID.
        assert [etree.QName(c).localname for c in element][:2] == ["Issuer", "Signature"]
        signature = element[1]
        assert signature.prefix == "ds"
        signed_info = signature.find("ds:SignedInfo", NS)
        assert signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == X.C14N_EXCL
        assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == X.RSA_SHA256
        refs = signed_info.findall("ds:Reference", NS)
        assert len(refs) == 1 and refs[0].get("URI") == "#" + element.get("ID")
        transforms = [t.get("Algorithm") for t in refs[0].iterfind("ds:Transforms/*", NS)]
        assert transforms == [X.TRANSFORM_ENVELOPED, X.C14N_EXCL]
        assert refs[0].find("ds:DigestMethod", NS).get("Algorithm") == X.DIGEST_SHA256
        cert_text = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
        assert "".join(cert_text.split()) == cert_base64(idp_keys.cert_pem)
        assert "\n" not in signature.findtext("ds:SignatureValue", namespaces=NS)
        verify(element, idp_keys.cert_pem)
    # Okta lists "xs" as an inclusive namespace for the assertion's exclusive c14n.
    inclusive = assertion.find(".//{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces")
    assert inclusive is not None and inclusive.get("PrefixList") == "xs"


def test_signatures_break_when_name_id_is_tampered(idp_keys: KeyPair) -> None:
    xml = issue_response(make_spec(), idp_keys)
    tampered = xml.replace(
        b">alice@example.com</saml2:NameID>", b">alicf@example.com</saml2:NameID>"
    )
    assert tampered != xml and len(tampered) == len(xml)
    response = parse(tampered)
    with pytest.raises(xmlsec.Error):
        verify(response, idp_keys.cert_pem)
    with pytest.raises(xmlsec.Error):
        verify(response.find("saml2:Assertion", NS), idp_keys.cert_pem)


def test_signature_needs_the_right_certificate(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    response = parse(issue_response(make_spec(), idp_keys))
    with pytest.raises(xmlsec.Error):
        verify(response, sp_keys.cert_pem)


def test_sign_only_one_of_them(idp_keys: KeyPair, protocol_schema: etree.XMLSchema) -> None:
    only_assertion = parse(issue_response(make_spec(), idp_keys, sign_response=False))
    assert_valid(protocol_schema, only_assertion)
    assert only_assertion.find("ds:Signature", NS) is None
    verify(only_assertion.find("saml2:Assertion", NS), idp_keys.cert_pem)

    only_response = parse(issue_response(make_spec(), idp_keys, sign_assertion=False))
    assert_valid(protocol_schema, only_response)
    assert only_response.find("saml2:Assertion/ds:Signature", NS) is None
    verify(only_response, idp_keys.cert_pem)

    unsigned = parse(
        issue_response(make_spec(), idp_keys, sign_response=False, sign_assertion=False)
    )
    assert unsigned.find(".//ds:Signature", NS) is None
    assert_valid(protocol_schema, unsigned)


def test_error_response_is_signed(idp_keys: KeyPair, protocol_schema: etree.XMLSchema) -> None:
    spec = make_spec(
        include_assertion=False,
        status_code="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_message="User is not assigned to this application",
    )
    response = parse(issue_response(spec, idp_keys, encrypt_to=generate_keypair("x").cert_pem))
    assert_valid(protocol_schema, response)
    assert response.find("saml2:EncryptedAssertion", NS) is None
    verify(response, idp_keys.cert_pem)


@pytest.mark.parametrize(
    ("signature_algorithm", "digest_algorithm"),
    [(X.RSA_SHA1, X.DIGEST_SHA1), (X.RSA_SHA512, X.DIGEST_SHA512), (X.RSA_SHA384, X.DIGEST_SHA384)],
)
def test_other_signature_algorithms(
    idp_keys: KeyPair, signature_algorithm: str, digest_algorithm: str
) -> None:
    response = parse(
        issue_response(
            make_spec(),
            idp_keys,
            signature_algorithm=signature_algorithm,
            digest_algorithm=digest_algorithm,
        )
    )
    method = response.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
    assert method.get("Algorithm") == signature_algorithm
    digest = response.find(".//ds:DigestMethod", NS)
    assert digest.get("Algorithm") == digest_algorithm
    verify(response, idp_keys.cert_pem)
    verify(response.find("saml2:Assertion", NS), idp_keys.cert_pem)


def test_sign_element_without_issuer_and_unknown_algorithm(idp_keys: KeyPair) -> None:
    root = parse(b'<r xmlns="urn:example" ID="idX"><child/></r>')
    sign_element(root, idp_keys)
    assert etree.QName(root[0]).localname == "Signature"
    verify(root, idp_keys.cert_pem)
    with pytest.raises(ValueError, match="unsupported signature algorithm"):
        sign_element(parse(b'<r ID="idY"/>'), idp_keys, signature_algorithm="urn:nope")
    with pytest.raises(ValueError, match="no ID"):
        sign_element(parse(b"<r/>"), idp_keys)


# ---------------------------------------------------------------------- encryption
@pytest.mark.parametrize(
    ("data_algorithm", "okta_layout"),
    [
        (X.AES256_CBC, False),
        (X.AES128_CBC, False),
        (X.AES128_GCM, False),
        (X.AES256_GCM, False),
        (X.AES256_CBC, True),
        (X.AES256_GCM, True),
    ],
)
def test_encrypted_assertion_decrypts_and_verifies(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    protocol_schema: etree.XMLSchema,
    data_algorithm: str,
    okta_layout: bool,
) -> None:
    xml = issue_response(
        make_spec(),
        idp_keys,
        encrypt_to=sp_keys.cert_pem,
        data_algorithm=data_algorithm,
        okta_retrieval_method=okta_layout,
    )
    assert b"alice@example.com" not in xml
    response = parse(xml)
    assert_valid(protocol_schema, response)
    assert response.find("saml2:Assertion", NS) is None
    verify(response, idp_keys.cert_pem)  # the Response signature covers the ciphertext

    wrapper = response.find("saml2:EncryptedAssertion", NS)
    enc_data = wrapper.find("xenc:EncryptedData", NS)
    assert enc_data.get("Type") == X.ENC_TYPE_ELEMENT
    assert enc_data.find("xenc:EncryptionMethod", NS).get("Algorithm") == data_algorithm
    if okta_layout:
        assert [etree.QName(c).localname for c in wrapper] == ["EncryptedData", "EncryptedKey"]
        retrieval = enc_data.find("ds:KeyInfo/ds:RetrievalMethod", NS)
        enc_key = wrapper.find("xenc:EncryptedKey", NS)
        assert retrieval.get("Type") == X.ENC_TYPE_ENCRYPTED_KEY
        assert retrieval.get("URI") == "#" + enc_key.get("Id")
        assert enc_key.find("xenc:ReferenceList/xenc:DataReference", NS).get("URI") == (
            "#" + enc_data.get("Id")
        )
    else:
        assert len(wrapper) == 1
        enc_key = enc_data.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    method = enc_key.find("xenc:EncryptionMethod", NS)
    assert method.get("Algorithm") == X.RSA_OAEP_MGF1P
    assert method.find("ds:DigestMethod", NS).get("Algorithm") == X.DIGEST_SHA1
    cert_text = enc_key.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    assert "".join(cert_text.split()) == cert_base64(sp_keys.cert_pem)

    assertion = decrypt(response, sp_keys.key_pem)
    assert etree.QName(assertion).localname == "Assertion"
    assert assertion.findtext("saml2:Subject/saml2:NameID", namespaces=NS) == "alice@example.com"
    verify(assertion, idp_keys.cert_pem)
    # Also after a round trip through bytes, as a verifier would see it.
    verify(parse(etree.tostring(assertion)), idp_keys.cert_pem)


def test_okta_layout_needs_the_encrypted_key_id_registered(
    idp_keys: KeyPair, sp_keys: KeyPair
) -> None:
    """python-xmlsec resolves RetrievalMethod only once the EncryptedKey's Id is an ID."""
    response = parse(
        issue_response(
            make_spec(), idp_keys, encrypt_to=sp_keys.cert_pem, okta_retrieval_method=True
        )
    )
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_keys.key_pem, xmlsec.constants.KeyDataFormatPem))
    ctx = xmlsec.EncryptionContext(manager)
    with pytest.raises(xmlsec.Error):
        ctx.decrypt(response.find(".//xenc:EncryptedData", NS))


def test_real_okta_fixture_decrypts_with_the_same_helper() -> None:
    """The decrypt() helper handles Okta's real layout too, so the dev IdP mirrors it."""
    xml = base64.b64decode(
        (FIXTURES / "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned_response.b64")
        .read_bytes()
        .strip()
    )
    response = parse(xml)
    assertion = decrypt(response, (FIXTURES / "sp_key.pem").read_bytes())
    assert assertion.findtext(".//saml2:NameID", namespaces=NS) == "testuser@testrsc.com"


@pytest.mark.parametrize(
    ("data_algorithm", "key_transport"),
    [(X.TRIPLEDES_CBC, X.RSA_OAEP_MGF1P), (X.AES256_CBC, X.RSA_1_5)],
)
def test_weak_encryption_for_negative_tests(
    sp_keys: KeyPair, data_algorithm: str, key_transport: str
) -> None:
    response = build_response(make_spec())
    encrypt_assertion(
        response, sp_keys.cert_pem, data_algorithm=data_algorithm, key_transport=key_transport
    )
    reparsed = parse(etree.tostring(response))
    assert (
        reparsed.find(".//xenc:EncryptedData/xenc:EncryptionMethod", NS).get("Algorithm")
        == data_algorithm
    )
    assert (
        reparsed.find(".//xenc:EncryptedKey/xenc:EncryptionMethod", NS).get("Algorithm")
        == key_transport
    )


def test_encrypt_assertion_errors(sp_keys: KeyPair) -> None:
    with pytest.raises(ValueError, match="unsupported data encryption"):
        encrypt_assertion(build_response(make_spec()), sp_keys.cert_pem, data_algorithm="urn:x")
    with pytest.raises(ValueError, match="no saml2:Assertion"):
        encrypt_assertion(build_response(make_spec(include_assertion=False)), sp_keys.cert_pem)


# ---------------------------------------------------------------------- metadata
def test_metadata_loads_in_pysaml2(idp_keys: KeyPair, metadata_schema: etree.XMLSchema) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.config import SPConfig

    sso = PUBLIC_URL + "/sso"
    xml = idp_metadata_xml(
        entity_id=DEFAULT_ENTITY_ID, sso_url=sso, slo_url=PUBLIC_URL + "/slo", keypair=idp_keys
    )
    root = parse(xml)
    assert_valid(metadata_schema, root)
    descriptor = root.find("md:IDPSSODescriptor", NS)
    assert descriptor.get("WantAuthnRequestsSigned") == "false"
    assert descriptor.findtext("md:NameIDFormat", namespaces=NS) == X.NAMEID_EMAIL

    config = SPConfig()
    config.load(
        {
            "entityid": SP_ENTITY_ID,
            "crypto_backend": "XMLSecurity",  # placeholder: pysaml2 must not look for xmlsec1
            "metadata": {"inline": [xml.decode()]},
            "service": {
                "sp": {"endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]}}
            },
        }
    )
    certs = config.metadata.certs(DEFAULT_ENTITY_ID, "idpsso", "signing")
    assert ["".join(c.split()) for _, c in certs] == [cert_base64(idp_keys.cert_pem)]
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        services = config.metadata.single_sign_on_service(DEFAULT_ENTITY_ID, binding)
        assert [s["location"] for s in services] == [sso]
    slo = config.metadata.single_logout_service(DEFAULT_ENTITY_ID, BINDING_HTTP_REDIRECT, "idpsso")
    assert [s["location"] for s in slo] == [PUBLIC_URL + "/slo"]

    without_slo = parse(
        idp_metadata_xml(entity_id="urn:x", sso_url=sso, slo_url=None, keypair=idp_keys)
    )
    assert_valid(metadata_schema, without_slo)
    assert without_slo.find(".//md:SingleLogoutService", NS) is None


# ---------------------------------------------------------------------- the ASGI app
def make_idp(keys: KeyPair, **overrides: Any) -> DevIdP:
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "keypair": keys,
        "sp_entity_id": SP_ENTITY_ID,
        "sp_acs_url": ACS_URL,
        "mount_path": MOUNT,
    }
    values.update(overrides)
    return DevIdP(**values)


def client(app: DevIdP, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, **kwargs)
    return httpx.AsyncClient(transport=transport, base_url=BASE)


def authn_request_xml(
    request_id: str = "id-7c0ffee0abcdef",
    issuer: str = SP_ENTITY_ID,
    acs_url: str | None = ACS_URL,
    extra: str = "",
) -> bytes:
    acs = f' AssertionConsumerServiceURL="{acs_url}"' if acs_url else ""
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{X.NS_SAMLP}" xmlns:saml="{X.NS_SAML}" '
        f'ID="{request_id}" Version="2.0" IssueInstant="2024-05-06T07:08:09Z" '
        f'Destination="{PUBLIC_URL}/sso"{acs} ProtocolBinding="{X.BINDING_HTTP_POST}"{extra}>'
        f"<saml:Issuer>{issuer}</saml:Issuer>"
        f'<samlp:NameIDPolicy Format="{X.NAMEID_EMAIL}" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    ).encode()


def redirect_encode(xml: bytes) -> str:
    compressor = zlib.compressobj(wbits=-15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def auto_post_fields(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form id="saml-post" method="post" action="([^"]*)"', page)
    assert action is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def hidden_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    return {k: html.unescape(v) for k, v in found}


@pytest.mark.anyio
async def test_metadata_route(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    assert idp.entity_id == DEFAULT_ENTITY_ID
    assert idp.sso_url == PUBLIC_URL + "/sso"
    async with client(idp) as http:
        reply = await http.get(MOUNT + "/metadata")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/samlmetadata+xml"
    assert reply.content == idp.metadata_xml()
    root = parse(reply.content)
    assert root.get("entityID") == DEFAULT_ENTITY_ID
    locations = {s.get("Location") for s in root.iterfind(".//md:SingleSignOnService", NS)}
    assert locations == {PUBLIC_URL + "/sso"}


@pytest.mark.anyio
async def test_sp_initiated_login_with_a_pysaml2_request(idp_keys: KeyPair) -> None:
    """A real AuthnRequest from pysaml2 (HTTP-Redirect) -> login page -> signed Response."""
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    idp = make_idp(idp_keys)
    config = SPConfig()
    config.load(
        {
            "entityid": SP_ENTITY_ID,
            "crypto_backend": "XMLSecurity",
            "metadata": {"inline": [idp.metadata_xml().decode()]},
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]},
                    "authn_requests_signed": False,
                    "want_response_signed": True,
                }
            },
        }
    )
    request_id, info = Saml2Client(config).prepare_for_authenticate(
        entityid=DEFAULT_ENTITY_ID, relay_state='/after?x=1&y="<b>"', binding=BINDING_HTTP_REDIRECT
    )
    location = dict(info["headers"])["Location"]
    assert location.startswith(idp.sso_url + "?")

    async with client(idp) as http:
        page = await http.get(location)
        assert page.status_code == 200, page.text
        assert "Development IdP — for local development only, never in production" in page.text
        for user in DEFAULT_USERS:
            assert user.email in page.text and user.name in page.text
        assert "admins, users" in page.text
        assert "&lt;b&gt;" in page.text and '"<b>"' not in page.text
        hidden = hidden_fields(page.text)
        assert hidden == {"in_response_to": request_id, "relay_state": '/after?x=1&y="<b>"'}
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"

        reply = await http.post(MOUNT + "/sso", data={**hidden, "user": "0"})
    assert reply.status_code == 200, reply.text
    action, fields = auto_post_fields(reply.text)
    assert action == ACS_URL
    assert fields["RelayState"] == '/after?x=1&y="<b>"'
    assert ">Continue</button>" in reply.text
    # The only script is the auto-submit, allowed by its hash in the CSP.
    scripts = re.findall(r"<script>(.*?)</script>", reply.text)
    assert len(scripts) == 1 and "submit()" in scripts[0]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in reply.headers["content-security-policy"]
    response = parse(base64.b64decode(fields["SAMLResponse"]))
    assert response.get("InResponseTo") == request_id
    assert response.get("Destination") == ACS_URL
    assertion = response.find("saml2:Assertion", NS)
    data = assertion.find(".//saml2:SubjectConfirmationData", NS)
    assert data.get("InResponseTo") == request_id and data.get("Recipient") == ACS_URL
    assert assertion.findtext(".//saml2:Audience", namespaces=NS) == SP_ENTITY_ID
    name_id = assertion.find(".//saml2:NameID", NS)
    assert name_id.text == "alice@example.com" and name_id.get("Format") == X.NAMEID_EMAIL
    attributes = {
        a.get("Name"): [v.text for v in a] for a in assertion.iterfind(".//saml2:Attribute", NS)
    }
    assert attributes == {
        "email": ["alice@example.com"],
        "displayName": ["Alice Admin"],
        "groups": ["admins", "users"],
    }
    verify(response, idp_keys.cert_pem)
    verify(assertion, idp_keys.cert_pem)


@pytest.mark.anyio
async def test_custom_user_and_clock(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys, clock=lambda: 1_600_000_000.25)
    async with client(idp) as http:
        page = await http.get(
            MOUNT + "/sso", params={"SAMLRequest": redirect_encode(authn_request_xml())}
        )
        assert page.status_code == 200
        assert "RelayState" not in hidden_fields(page.text)
        form = {
            **hidden_fields(page.text),
            "email": " dave@example.com ",
            "name": "Dave  Developer",
            "groups": "devs, , qa,devs",
        }
        reply = await http.post(MOUNT + "/sso", data=form)
        assert reply.status_code == 200, reply.text
        action, fields = auto_post_fields(reply.text)
        assert action == ACS_URL and "RelayState" not in fields
        response = parse(base64.b64decode(fields["SAMLResponse"]))
        assert response.get("IssueInstant") == "2020-09-13T12:26:40.250Z"
        attributes = {
            a.get("Name"): [v.text for v in a] for a in response.iterfind(".//saml2:Attribute", NS)
        }
        assert attributes == {
            "email": ["dave@example.com"],
            "displayName": ["Dave Developer"],
            "groups": ["devs", "qa"],
        }
        no_groups = await http.post(
            MOUNT + "/sso", data={"in_response_to": "id-1", "email": "eve@example.com"}
        )
        _, fields = auto_post_fields(no_groups.text)
        response = parse(base64.b64decode(fields["SAMLResponse"]))
        names = [a.get("Name") for a in response.iterfind(".//saml2:Attribute", NS)]
        assert names == ["email", "displayName"]


@pytest.mark.anyio
async def test_http_post_binding_request(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        page = await http.post(
            MOUNT + "/sso",
            data={
                "SAMLRequest": base64.b64encode(authn_request_xml(request_id="id-post")).decode(),
                "RelayState": "rs",
            },
        )
    assert page.status_code == 200, page.text
    assert hidden_fields(page.text) == {"in_response_to": "id-post", "relay_state": "rs"}


@pytest.mark.anyio
async def test_encrypting_idp(idp_keys: KeyPair, sp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys, encrypt_to=sp_keys.cert_pem, sign_response=False)
    async with client(idp) as http:
        reply = await http.post(MOUNT + "/sso", data={"in_response_to": "id-9", "user": "1"})
    _, fields = auto_post_fields(reply.text)
    response = parse(base64.b64decode(fields["SAMLResponse"]))
    assert response.find("ds:Signature", NS) is None
    assertion = decrypt(response, sp_keys.key_pem)
    assert assertion.findtext(".//saml2:NameID", namespaces=NS) == "bob@example.com"
    verify(assertion, idp_keys.cert_pem)


BAD_REQUESTS = [
    pytest.param(
        redirect_encode(authn_request_xml(acs_url="https://evil.example/acs")),
        "https://evil.example/acs",
        id="wrong-acs",
    ),
    pytest.param(
        redirect_encode(authn_request_xml(issuer="https://other-sp.example/")),
        "https://other-sp.example/",
        id="wrong-issuer",
    ),
    pytest.param("%%% not base64 %%%", "base64", id="not-base64"),
    pytest.param(base64.b64encode(b"\xff\x00garbage").decode(), "DEFLATE", id="not-deflate"),
    pytest.param(redirect_encode(b"<samlp:AuthnRequest <<"), "well-formed", id="not-xml"),
    pytest.param(
        redirect_encode(b'<Other xmlns="urn:x" ID="id1"/>'), "not a SAML 2.0", id="not-authn"
    ),
    pytest.param(
        redirect_encode(
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + authn_request_xml().replace(b"<saml:Issuer>", b"<saml:Issuer>&e;")
        ),
        "DOCTYPE",
        id="doctype",
    ),
    pytest.param(
        redirect_encode(authn_request_xml(request_id="1-starts-with-digit")), "ID", id="bad-id"
    ),
    pytest.param(
        redirect_encode(authn_request_xml().replace(X.BINDING_HTTP_POST.encode(), b"urn:art")),
        "binding",
        id="artifact-binding",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("saml_request", "explanation"), BAD_REQUESTS)
async def test_bad_authn_requests_get_400(
    idp_keys: KeyPair, saml_request: str, explanation: str
) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        reply = await http.get(
            MOUNT + "/sso", params={"SAMLRequest": saml_request, "RelayState": "x"}
        )
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("text/html")
    assert explanation in html.unescape(reply.text)
    for raw in ("<samlp:", "<saml:", "AuthnRequest xmlns", "NameIDPolicy", "ENTITY", "<Other"):
        assert raw not in reply.text
    assert "Development IdP" in reply.text


@pytest.mark.anyio
async def test_missing_saml_request_and_acs_url_optional(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        missing = await http.get(MOUNT + "/sso")
        no_acs = await http.get(
            MOUNT + "/sso", params={"SAMLRequest": redirect_encode(authn_request_xml(acs_url=None))}
        )
        # A "+" left unescaped in the query string arrives as a space: still accepted.
        encoded = redirect_encode(authn_request_xml(request_id="id-plus-" + "x" * 40))
        raw_query = await http.get(MOUNT + "/sso?SAMLRequest=" + encoded.replace("=", "%3D"))
    assert missing.status_code == 400 and "/initiate" in missing.text
    assert no_acs.status_code == 200
    assert raw_query.status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "explanation"),
    [
        ({"in_response_to": "id-1", "email": ""}, "email"),
        ({"in_response_to": "id-1", "email": "no-at-sign"}, "@"),
        ({"in_response_to": "id-1", "email": "a" * 250 + "@x.io"}, "254"),
        ({"in_response_to": "id-1", "email": "a b@example.com"}, "spaces"),
        ({"in_response_to": "id-1", "email": "a@example.com", "groups": "g" * 65}, "64"),
        (
            {
                "in_response_to": "id-1",
                "email": "a@example.com",
                "groups": ",".join(f"g{i}" for i in range(51)),
            },
            "50",
        ),
        ({"in_response_to": "id-1", "user": "3"}, "No such user"),
        ({"in_response_to": "id-1", "user": "-1"}, "No such user"),
        ({"in_response_to": "id-1", "user": "\u0661"}, "No such user"),  # int() reads it as 1
        ({"in_response_to": "id-1", "user": "\u00b2"}, "No such user"),  # int() fails on it
        ({"in_response_to": "", "user": "0"}, "start the sign-in again"),
        ({"in_response_to": "id-1", "user": "0", "relay_state": "x" * 3000}, "RelayState"),
    ],
)
async def test_bad_login_forms_get_400(
    idp_keys: KeyPair, form: dict[str, str], explanation: str
) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        reply = await http.post(MOUNT + "/sso", data=form)
    assert reply.status_code == 400
    assert explanation in html.unescape(reply.text)


@pytest.mark.anyio
async def test_idp_initiated(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        page = await http.get(MOUNT + "/initiate")
        assert page.status_code == 200
        assert "carol@example.com" in page.text and 'name="relay_state"' in page.text
        reply = await http.post(MOUNT + "/initiate", data={"user": "2", "relay_state": "/home"})
    assert reply.status_code == 200, reply.text
    action, fields = auto_post_fields(reply.text)
    assert action == ACS_URL and fields["RelayState"] == "/home"
    response = parse(base64.b64decode(fields["SAMLResponse"]))
    assert "InResponseTo" not in response.attrib
    data = response.find(".//saml2:SubjectConfirmationData", NS)
    assert "InResponseTo" not in data.attrib
    assert response.findtext(".//saml2:NameID", namespaces=NS) == "carol@example.com"
    verify(response, idp_keys.cert_pem)


@pytest.mark.anyio
async def test_routing(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys, users=[DevUser("x@example.com", "X")])
    async with client(idp) as http:
        assert (await http.get(MOUNT + "/nope")).status_code == 404
        assert (await http.get("/elsewhere")).status_code == 404
        not_allowed = await http.delete(MOUNT + "/sso")
        assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "GET, POST"
        assert (await http.get(MOUNT + "/")).status_code == 200
        # Already stripped by whoever mounted it: still routed.
        assert (await http.get("/metadata")).status_code == 200
        assert "no groups" in (await http.get(MOUNT + "/initiate")).text
        wrong_type = await http.post(MOUNT + "/initiate", json={"user": "0"})
        assert wrong_type.status_code == 400
        too_big = await http.post(MOUNT + "/initiate", data={"email": "x" * 300_000})
        assert too_big.status_code == 413


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("transport_client", "headers", "base_url"),
    [
        pytest.param(("203.0.113.9", 5555), {}, BASE, id="remote-client"),
        pytest.param(("127.0.0.1", 5555), {"Host": "myapp.ngrok.app"}, BASE, id="tunnel-host"),
        pytest.param(
            ("127.0.0.1", 5555), {"X-Forwarded-For": "198.51.100.7"}, BASE, id="forwarded-for"
        ),
        pytest.param(
            ("::1", 5555), {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}, BASE, id="rfc7239"
        ),
        pytest.param(
            ("127.0.0.1", 5555), {"X-Forwarded-Host": "a.example"}, BASE, id="forwarded-host"
        ),
    ],
)
async def test_non_loopback_requests_get_403(
    idp_keys: KeyPair,
    transport_client: tuple[str, int],
    headers: dict[str, str],
    base_url: str,
) -> None:
    idp = make_idp(idp_keys)
    transport = httpx.ASGITransport(app=idp, client=transport_client)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        reply = await http.get(MOUNT + "/metadata", headers=headers)
    assert reply.status_code == 403
    assert "loopback" in reply.text


@pytest.mark.anyio
async def test_loopback_variants_and_override(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    for peer, host in [(("::1", 1), "[::1]:8000"), (("127.0.0.2", 1), "localhost:8000")]:
        transport = httpx.ASGITransport(app=idp, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            assert (await http.get(MOUNT + "/metadata")).status_code == 200
    relaxed = make_idp(idp_keys, allow_non_loopback=True)
    transport = httpx.ASGITransport(app=relaxed, client=("203.0.113.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="https://app.example") as http:
        assert (await http.get(MOUNT + "/metadata")).status_code == 200


async def raw_get(app: DevIdP, path: str, *, client: Any, headers: list[Any]) -> int:
    """One GET straight through the ASGI interface; returns the status code."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    status: int = sent[0]["status"]
    return status


LOOPBACK_HOST = (b"host", b"127.0.0.1:8000")


@pytest.mark.anyio
async def test_missing_client_counts_as_loopback(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    assert await raw_get(idp, MOUNT + "/metadata", client=None, headers=[LOOPBACK_HOST]) == 200
    malformed_host = [(b"host", b"[::1")]
    assert await raw_get(idp, MOUNT + "/metadata", client=None, headers=malformed_host) == 403


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="no-host"),
        pytest.param([(b"host", b"")], id="empty-host"),
        pytest.param([(b"host", b"myapp.example")], id="public-host"),
        pytest.param([LOOPBACK_HOST, (b"host", b"myapp.example")], id="second-host"),
        pytest.param([LOOPBACK_HOST, (b"forwarded", b"host=myapp.example")], id="forwarded"),
        pytest.param(
            [LOOPBACK_HOST, (b"forwarded", b'for=127.0.0.1;proto=https;host="myapp.example"')],
            id="forwarded-quoted",
        ),
        pytest.param([LOOPBACK_HOST, (b"x-original-host", b"myapp.example")], id="x-original"),
        pytest.param([LOOPBACK_HOST, (b"x_forwarded_host", b"myapp.example")], id="underscores"),
        pytest.param(
            [LOOPBACK_HOST, (b"x-forwarded-host", b"127.0.0.1, myapp.example")], id="second-item"
        ),
    ],
)
async def test_a_request_naming_no_loopback_host_is_refused(
    idp_keys: KeyPair, headers: list[tuple[bytes, bytes]]
) -> None:
    """From a loopback peer without any client-reporting header (a same-host proxy that adds
    none): the host it names must be loopback too, wherever it is named."""
    idp = make_idp(idp_keys)
    assert await raw_get(idp, MOUNT + "/metadata", client=("127.0.0.1", 5), headers=headers) == 403


@pytest.mark.anyio
async def test_cross_site_posts_are_refused(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys)
    async with client(idp) as http:
        evil = await http.post(
            MOUNT + "/initiate", data={"user": "0"}, headers={"Origin": "https://evil.example"}
        )
        null = await http.post(MOUNT + "/initiate", data={"user": "0"}, headers={"Origin": "null"})
        malformed = await http.post(
            MOUNT + "/initiate", data={"user": "0"}, headers={"Origin": "http://[::1"}
        )
        ok = await http.post(
            MOUNT + "/initiate", data={"user": "0"}, headers={"Origin": "http://localhost:8000"}
        )
    assert evil.status_code == 403 and null.status_code == 403 and malformed.status_code == 403
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "public_url",
    [
        "http://10.0.0.5:8000/saml/devidp",
        "https://myapp.ngrok.app/saml/devidp",
        "http://0.0.0.0:8000/saml/devidp",
        "http://localhost.evil.example/saml/devidp",
    ],
)
def test_non_loopback_public_url_is_refused(idp_keys: KeyPair, public_url: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        make_idp(idp_keys, public_url=public_url)


def test_loopback_public_urls_and_warning(
    idp_keys: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="saml_gate.devidp"):
        for url in ("http://localhost:8000/x", "http://[::1]:8000/x", "http://127.9.8.7/x"):
            make_idp(idp_keys, public_url=url)
        make_idp(idp_keys, public_url="https://app.example/x", allow_non_loopback=True)
    warnings = [r for r in caplog.records if r.name == "saml_gate.devidp"]
    assert len(warnings) == 4 and all(r.levelno == logging.WARNING for r in warnings)
    assert "NEVER use it in production" in warnings[0].getMessage()
    assert "loopback host (Host" in warnings[0].getMessage()
    assert "proxy" in warnings[0].getMessage()
    assert "NON-LOOPBACK" in warnings[-1].getMessage()


def test_mount_path_defaults_to_public_url_path(idp_keys: KeyPair) -> None:
    idp = make_idp(idp_keys, mount_path=None, public_url=PUBLIC_URL + "/")
    assert idp.sso_url == PUBLIC_URL + "/sso"
    assert idp._route(MOUNT + "/sso") == "/sso"
    assert idp._route(MOUNT) == "/"


def test_no_xmlsec1_program_needed(
    idp_keys: KeyPair, sp_keys: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    xml = issue_response(make_spec(), idp_keys, encrypt_to=sp_keys.cert_pem)
    verify(parse(xml), idp_keys.cert_pem)


@pytest.fixture
def _restore_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("_restore_umask")
def test_load_or_create_keypair_ignores_permissive_umask(tmp_path: Path) -> None:
    os.umask(0)
    pair, created = load_or_create_keypair(tmp_path / "new" / "deeper", "k", "cn")
    assert created
    assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "deeper" / "k.key.pem").stat().st_mode) == 0o600
    assert pair.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
