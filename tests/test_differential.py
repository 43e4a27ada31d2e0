"""Differential test: the gate's Response verifier against pysaml2 acting as SP.

The gate verifies SAML Responses with its own code (lxml + python-xmlsec,
:class:`saml_gate.saml.response.ResponseVerifier`). This module feeds the *same bytes* to that
verifier and to an independent, widely used implementation, pysaml2's SP
(``Saml2Client.parse_authn_request_response`` with its default ``xmlsec1`` crypto backend), and
proves that:

* on every legitimate Response we can produce, both accept and read the same identity (NameID
  and its Format, SessionIndex, attributes with multi-valued ``groups``, issuer, InResponseTo,
  authentication context). The Responses come from our development IdP's builder (signed in each
  combination, encrypted in several layouts and algorithms) and from pysaml2's own IdP
  (``saml2.server.Server``, code nobody in this project wrote, with its own metadata);
* on forged or stale Responses (wrong audience, expired, signed with another key, NameID changed
  after signing) both refuse, each for the same reason;
* where the two disagree, the gate's answer is asserted and the disagreement is written down
  (list below). None of them is a gate defect.

pysaml2 checks instants against the real clock, so every Response here is issued at the real
current time and the gate is given that same ``now``.

Disagreements found:

1. (Fixed) The dev IdP's encrypted plaintext once relied on the EncryptedAssertion's
   ``xmlns:saml2``; pysaml2 re-serialises the Response before decrypting and failed with
   ``unbound prefix``. The dev IdP now encrypts the serialised, namespace-complete Assertion, as
   Okta does, and :func:`plaintext_is_namespace_complete` keeps it that way.
2. pysaml2's IdP signs with RSA-SHA1/SHA-1 by default. pysaml2's SP accepts that; the gate
   refuses it (``algorithm_refused``) unless ``allow_sha1=True``, and then agrees again.
3. pysaml2's IdP encrypts only with Triple-DES (``pre_encryption_part`` defaults to
   ``tripledes-cbc``). pysaml2's SP accepts it; the gate refuses (``algorithm_refused``), which is
   its intended policy.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmlsec
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.devidp.response import ResponseSpec, issue_response, new_id
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import parse_idp_metadata
from saml_gate.saml.keys import KeyPair
from saml_gate.saml.response import ResponseVerifier, VerifiedLogin
from tests.saml_oracles import (
    KeyFiles,
    pysaml2_sp,
    pysaml2_sp_config,
    require_xmlsec1,
    run_pysaml2,
)
from tests.support import ACS_URL, BASE_URL, ENTITY_ID, IDP_ENTITY_ID, SECRET, idp_metadata

pytestmark = pytest.mark.needs_xmlsec1

IDP_SSO_URL = "https://idp.example.test/app/sso/saml"
NAME_ID = "alice@example.com"
ATTRIBUTES: dict[str, list[str]] = {
    "email": ["alice@example.com"],
    "displayName": ["Alice Admin"],
    "groups": ["admins", "users"],
}
BOTH_SIGNED: dict[str, bool] = {"want_response_signed": True, "want_assertions_signed": True}


@pytest.fixture(scope="module", autouse=True)
def _require_xmlsec1() -> None:
    require_xmlsec1()


# ------------------------------------------------------------------------------------ key files
@pytest.fixture(scope="module")
def key_files(
    tmp_path_factory: pytest.TempPathFactory, idp_keys: KeyPair, sp_keys: KeyPair
) -> KeyFiles:
    return KeyFiles.write(tmp_path_factory.mktemp("differential-keys"), sp_keys, idp_keys)


# ------------------------------------------------------------------------------------ what is read
@dataclass(frozen=True)
class Identity:
    """What a verified Response says, in a form both implementations reduce to."""

    name_id: str
    name_id_format: str | None
    session_index: str | None
    attributes: Mapping[str, list[str]]
    issuer: str
    in_response_to: str | None
    authn_context: str | None


def gate_identity(login: VerifiedLogin) -> Identity:
    return Identity(
        name_id=login.name_id,
        name_id_format=login.name_id_format,
        session_index=login.session_index,
        attributes={name: list(values) for name, values in login.attributes.items()},
        issuer=login.issuer,
        in_response_to=login.in_response_to,
        authn_context=login.authn_context,
    )


def pysaml2_identity(resp: Any) -> Identity:
    """From a pysaml2 ``AuthnResponse``.

    ``resp.ava`` is used without renaming. pysaml2's attribute maps do not know any of these
    attribute names (``email``, ``displayName`` and ``groups``, with NameFormat unspecified or
    basic), and with ``allow_unknown_attributes`` pysaml2 keeps such names exactly as they appear
    in the XML. pysaml2 would rename an ``urn:oid:...`` name with NameFormat uri to its friendly
    name; none occurs here, and if one did, the comparison would fail instead of passing by luck.
    """
    assertion_issuer = resp.assertion.issuer.text.strip()
    # The gate reports the IdP's entity ID after checking that both Issuers equal it.
    assert resp.issuer() in (None, "", assertion_issuer)
    authn_info = resp.authn_info()
    return Identity(
        name_id=resp.name_id.text.strip(),
        name_id_format=resp.name_id.format,
        session_index=resp.session_info()["session_index"],
        attributes={name: list(values) for name, values in resp.ava.items()},
        issuer=assertion_issuer,
        in_response_to=resp.in_response_to,
        authn_context=authn_info[0][0] if authn_info else None,
    )


# ------------------------------------------------------------------------------------ the two SPs
def gate_verifier(
    metadata: str,
    sp_keys: KeyPair,
    *,
    want_response_signed: bool,
    want_assertions_signed: bool,
    **settings: Any,
) -> ResponseVerifier:
    gate_settings = GateSettings.load(
        environ={},
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=metadata,
        sp_key=sp_keys.key_pem.decode(),
        sp_cert=sp_keys.cert_pem.decode(),
        want_response_signed=want_response_signed,
        want_assertions_signed=want_assertions_signed,
        **settings,
    )
    assert (gate_settings.entity_id, gate_settings.acs_url) == (ENTITY_ID, ACS_URL)
    return ResponseVerifier(gate_settings, parse_idp_metadata(metadata), sp_keys.key_pem)


def run_gate(
    verifier: ResponseVerifier, saml_response: str, request_id: str, now: float
) -> VerifiedLogin:
    return verifier.verify(saml_response, expected_request_ids={request_id}, now=now)


@dataclass(frozen=True)
class Outcome:
    """What one side did with a Response: the identity it read, or its refusal."""

    identity: Identity | None = None
    error: BaseException | None = None

    @property
    def gate_code(self) -> str | None:
        return self.error.code if isinstance(self.error, GateError) else None


def gate_outcome(
    verifier: ResponseVerifier, saml_response: str, request_id: str, now: float
) -> Outcome:
    try:
        return Outcome(identity=gate_identity(run_gate(verifier, saml_response, request_id, now)))
    except GateError as exc:
        return Outcome(error=exc)


def pysaml2_outcome(client: Any, saml_response: str, request_id: str) -> Outcome:
    try:
        return Outcome(identity=pysaml2_identity(run_pysaml2(client, saml_response, request_id)))
    except Exception as exc:  # pysaml2 refuses with many unrelated exception types
        return Outcome(error=exc)


# ------------------------------------------------------------------------------------ dev IdP
def real_now() -> datetime:
    """The real time in whole milliseconds (the precision the dev IdP writes)."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def devidp_spec(request_id: str, now: datetime, **overrides: Any) -> ResponseSpec:
    fields: dict[str, Any] = dict(
        issuer=IDP_ENTITY_ID,
        destination=ACS_URL,
        audience=ENTITY_ID,
        name_id=NAME_ID,
        attributes=ATTRIBUTES,
        in_response_to=request_id,
        now=now,
    )
    fields.update(overrides)
    return ResponseSpec(**fields)


def b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode()


_XPATH_NS = {"saml2": X.NS_SAML, "xenc": X.NS_XENC, "ds": X.NS_DS}


def _one(node: etree._Element, path: str) -> etree._Element:
    # XPath, not find(): nodes made by xmlsec's template helpers are invisible to find().
    found = node.xpath(path, namespaces=_XPATH_NS)
    assert isinstance(found, list) and len(found) == 1, path
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def plaintext_is_namespace_complete(xml: bytes, sp_key_pem: bytes) -> bool:
    """Whether the EncryptedAssertion's plaintext parses on its own (declares its prefixes).

    With ``Type`` dropped, xmlsec hands back the decrypted octets instead of parsing them in the
    document's context; they are then parsed standalone.
    """
    root = etree.fromstring(xml)
    for encrypted_key in root.iter(f"{{{X.NS_XENC}}}EncryptedKey"):
        if encrypted_key.get("Id"):
            xmlsec.tree.add_ids(encrypted_key, ["Id"])
    encrypted_data = _one(root, "saml2:EncryptedAssertion/xenc:EncryptedData")
    del encrypted_data.attrib["Type"]
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_key_pem, xmlsec.constants.KeyDataFormatPem))
    plaintext = xmlsec.EncryptionContext(manager).decrypt(encrypted_data)
    assert isinstance(plaintext, bytes)
    try:
        etree.fromstring(plaintext)
    except etree.XMLSyntaxError:
        return False
    return True


@dataclass(frozen=True)
class DevCase:
    sign_response: bool = True
    sign_assertion: bool = True
    encrypted: bool = False
    data_algorithm: str = X.AES256_CBC
    okta_retrieval_method: bool = False


DEV_CASES: dict[str, DevCase] = {
    "response+assertion signed": DevCase(),
    "only assertion signed": DevCase(sign_response=False),
    "only response signed": DevCase(sign_assertion=False),
    "encrypted aes256-cbc": DevCase(encrypted=True),
    "encrypted aes128-gcm": DevCase(encrypted=True, data_algorithm=X.AES128_GCM),
    "encrypted Okta RetrievalMethod": DevCase(encrypted=True, okta_retrieval_method=True),
    "encrypted Okta RetrievalMethod, only response signed": DevCase(
        encrypted=True, okta_retrieval_method=True, sign_assertion=False
    ),
}


def devidp_response(
    case: DevCase, request_id: str, now: datetime, idp_keys: KeyPair, sp_keys: KeyPair
) -> bytes:
    spec = devidp_spec(request_id, now)
    return issue_response(
        spec,
        idp_keys,
        sign_response=case.sign_response,
        sign_assertion=case.sign_assertion,
        encrypt_to=sp_keys.cert_pem if case.encrypted else None,
        data_algorithm=case.data_algorithm,
        okta_retrieval_method=case.okta_retrieval_method,
    )


@pytest.mark.parametrize("case", DEV_CASES.values(), ids=DEV_CASES.keys())
def test_devidp_response_read_alike(
    case: DevCase, idp_keys: KeyPair, sp_keys: KeyPair, key_files: KeyFiles
) -> None:
    request_id = new_id()
    now = real_now()
    xml = devidp_response(case, request_id, now, idp_keys, sp_keys)
    assert (b"EncryptedAssertion" in xml) == case.encrypted
    if case.okta_retrieval_method:
        assert b"RetrievalMethod" in xml
    metadata = idp_metadata(idp_keys)
    wants = dict(
        want_response_signed=case.sign_response, want_assertions_signed=case.sign_assertion
    )

    verifier = gate_verifier(metadata, sp_keys, **wants)
    gate = gate_identity(run_gate(verifier, b64(xml), request_id, now.timestamp()))
    assert gate.name_id == NAME_ID
    assert gate.name_id_format == X.NAMEID_EMAIL
    assert gate.attributes == ATTRIBUTES
    assert gate.issuer == IDP_ENTITY_ID
    assert gate.in_response_to == request_id

    client = pysaml2_sp(metadata, key_files, **wants)
    if case.encrypted:
        # Okta's plaintext declares its own namespaces; pysaml2 depends on it (see docstring).
        assert plaintext_is_namespace_complete(xml, sp_keys.key_pem)
    assert pysaml2_identity(run_pysaml2(client, b64(xml), request_id)) == gate


# ------------------------------------------------------------------------------------ pysaml2 IdP
class Pysaml2Idp:
    """pysaml2's own IdP, holding the test IdP's key and issuing Responses for our SP."""

    def __init__(self, files: KeyFiles) -> None:
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.attribute_converter import AttributeConverter
        from saml2.config import IdPConfig, SPConfig
        from saml2.metadata import entity_descriptor
        from saml2.saml import NAME_FORMAT_BASIC
        from saml2.server import Server

        sp_metadata = str(entity_descriptor(SPConfig().load(pysaml2_sp_config(None, files))))

        def config() -> dict[str, Any]:
            return {
                "entityid": IDP_ENTITY_ID,
                "key_file": str(files.idp_key),
                "cert_file": str(files.idp_cert),
                "metadata": {"inline": [sp_metadata]},
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(IDP_SSO_URL, BINDING_HTTP_REDIRECT)]
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_BASIC,
                            }
                        },
                    }
                },
            }

        idp_config = IdPConfig().load(config())
        # pysaml2's stock maps would send "email" as urn:oid:1.2.840.113549.1.9.1.1 (NameFormat
        # uri), and it drops every attribute when no map exists for the policy's NameFormat.
        # An identity map for NameFormat basic keeps the names Okta-like: Name="email" etc.
        names = {name: name for name in ATTRIBUTES}
        identity_map = AttributeConverter(NAME_FORMAT_BASIC)
        identity_map.from_dict({"identifier": NAME_FORMAT_BASIC, "fro": names, "to": names})
        idp_config.attribute_converters = [identity_map]
        self.server = Server(config=idp_config)
        # The IdP metadata as pysaml2 writes it (from a second config: entity_descriptor
        # mutates the one it is given). Both SPs trust the IdP through this metadata.
        self.metadata = str(entity_descriptor(IdPConfig().load(config())))

    def response(
        self,
        request_id: str,
        *,
        sign_response: bool = True,
        sign_assertion: bool = True,
        sha256: bool = True,
        **extra: Any,
    ) -> str:
        from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_EMAILADDRESS, NameID
        from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

        if sha256:
            extra.update(sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
        xml = self.server.create_authn_response(
            identity=ATTRIBUTES,
            in_response_to=request_id,
            destination=ACS_URL,
            sp_entity_id=ENTITY_ID,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=NAME_ID),
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": IDP_ENTITY_ID},
            **extra,
        )
        return b64(str(xml).encode())


@pytest.fixture(scope="module")
def pysaml2_idp(key_files: KeyFiles) -> Pysaml2Idp:
    return Pysaml2Idp(key_files)


def test_pysaml2_idp_metadata_is_understood_by_the_gate(
    pysaml2_idp: Pysaml2Idp, idp_keys: KeyPair
) -> None:
    info = parse_idp_metadata(pysaml2_idp.metadata)
    assert (info.entity_id, info.sso_url) == (IDP_ENTITY_ID, IDP_SSO_URL)
    assert info.signing_certs == parse_idp_metadata(idp_metadata(idp_keys)).signing_certs


SIGNED: dict[str, tuple[bool, bool]] = {
    "response+assertion signed": (True, True),
    "only assertion signed": (False, True),
    "only response signed": (True, False),
}


@pytest.mark.parametrize(("sign_response", "sign_assertion"), SIGNED.values(), ids=SIGNED.keys())
def test_pysaml2_idp_response_read_alike(
    pysaml2_idp: Pysaml2Idp,
    sp_keys: KeyPair,
    key_files: KeyFiles,
    sign_response: bool,
    sign_assertion: bool,
) -> None:
    request_id = new_id()
    now = time.time()
    response = pysaml2_idp.response(
        request_id, sign_response=sign_response, sign_assertion=sign_assertion
    )
    # What pysaml2's IdP wrote: the names as given, NameFormat basic, groups multi-valued.
    xml = base64.b64decode(response).decode()
    for name in ATTRIBUTES:
        assert re.search(rf'<\w+:Attribute Name="{name}" NameFormat="{X.ATTRNAME_BASIC}"', xml)
    root = etree.fromstring(xml.encode())
    signed = [sig.getparent().tag for sig in root.iter(f"{{{X.NS_DS}}}Signature")]  # type: ignore[union-attr]
    assert (root.tag in signed, f"{{{X.NS_SAML}}}Assertion" in signed) == (
        sign_response,
        sign_assertion,
    )
    wants = dict(want_response_signed=sign_response, want_assertions_signed=sign_assertion)

    verifier = gate_verifier(pysaml2_idp.metadata, sp_keys, **wants)
    gate = gate_identity(run_gate(verifier, response, request_id, now))
    client = pysaml2_sp(pysaml2_idp.metadata, key_files, **wants)
    assert pysaml2_identity(run_pysaml2(client, response, request_id)) == gate
    assert gate.name_id == NAME_ID
    assert gate.name_id_format == X.NAMEID_EMAIL
    assert gate.attributes == ATTRIBUTES
    assert gate.issuer == IDP_ENTITY_ID
    assert gate.in_response_to == request_id
    assert gate.authn_context == X.AC_PASSWORD_PROTECTED
    assert gate.session_index


def test_pysaml2_idp_default_sha1_needs_allow_sha1(
    pysaml2_idp: Pysaml2Idp, sp_keys: KeyPair, key_files: KeyFiles
) -> None:
    """Disagreement 2: pysaml2 signs with and accepts RSA-SHA1; the gate only with allow_sha1."""
    request_id = new_id()
    now = time.time()
    response = pysaml2_idp.response(request_id, sha256=False)
    assert X.RSA_SHA1 in base64.b64decode(response).decode()

    strict = gate_outcome(
        gate_verifier(pysaml2_idp.metadata, sp_keys, **BOTH_SIGNED), response, request_id, now
    )
    assert strict.gate_code == "algorithm_refused", strict.error

    pysaml2 = pysaml2_outcome(
        pysaml2_sp(pysaml2_idp.metadata, key_files, **BOTH_SIGNED), response, request_id
    )
    assert pysaml2.error is None, pysaml2.error
    lenient = gate_verifier(pysaml2_idp.metadata, sp_keys, allow_sha1=True, **BOTH_SIGNED)
    assert gate_identity(run_gate(lenient, response, request_id, now)) == pysaml2.identity


def test_pysaml2_idp_triple_des_encryption_is_refused_by_the_gate(
    pysaml2_idp: Pysaml2Idp, sp_keys: KeyPair, key_files: KeyFiles
) -> None:
    """Disagreement 3: pysaml2's IdP encrypts with tripledes-cbc only; its SP accepts that."""
    request_id = new_id()
    now = time.time()
    response = pysaml2_idp.response(
        request_id, encrypt_assertion=True, encrypt_cert_assertion=sp_keys.cert_pem.decode()
    )
    assert X.TRIPLEDES_CBC in base64.b64decode(response).decode()

    gate = gate_outcome(
        gate_verifier(pysaml2_idp.metadata, sp_keys, **BOTH_SIGNED), response, request_id, now
    )
    assert gate.gate_code == "algorithm_refused", gate.error
    assert "tripledes-cbc" in str(gate.error)

    pysaml2 = pysaml2_outcome(
        pysaml2_sp(pysaml2_idp.metadata, key_files, **BOTH_SIGNED), response, request_id
    )
    assert pysaml2.error is None, pysaml2.error
    assert pysaml2.identity is not None and pysaml2.identity.attributes == ATTRIBUTES


# ------------------------------------------------------------------------------------ both refuse
def tamper_name_id(xml: bytes) -> bytes:
    """Change the NameID text after signing (the email attribute keeps the old value)."""
    tampered, count = re.subn(
        rb">alice@example\.com</saml2:NameID>", b">mallory@example.com</saml2:NameID>", xml
    )
    assert count == 1
    return tampered


@dataclass(frozen=True)
class Forgery:
    gate_code: str
    pysaml2_error: str
    """``ExceptionClassName: message`` must match this regular expression."""
    spec: Mapping[str, Any] = field(default_factory=dict)
    issued_ago: timedelta = timedelta(0)
    attacker: bool = False
    tamper: bool = False
    sign_response: bool = True


FORGERIES: dict[str, Forgery] = {
    "wrong audience": Forgery(
        "wrong_audience",
        "AudienceRestrictions conditions not satisfied",
        spec={"audience": "https://other-app.example/sp"},
    ),
    # pysaml2 reads the real clock, so "checked one hour later" is "issued one hour ago".
    "expired (checked one hour later)": Forgery(
        "expired", "^ResponseLifetimeExceed: ", issued_ago=timedelta(hours=1)
    ),
    "signed with another key": Forgery(
        "unknown_signing_certificate", "^SignatureError: ", attacker=True
    ),
    "NameID changed after signing": Forgery("signature_invalid", "^SignatureError: ", tamper=True),
    "NameID changed, only assertion signed": Forgery(
        "signature_invalid", "^SignatureError: ", tamper=True, sign_response=False
    ),
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_or_stale_response_refused_by_both(
    forgery: Forgery,
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    attacker_keys: KeyPair,
    key_files: KeyFiles,
) -> None:
    request_id = new_id()
    now = real_now()
    xml = issue_response(
        devidp_spec(request_id, now - forgery.issued_ago, **forgery.spec),
        attacker_keys if forgery.attacker else idp_keys,
        sign_response=forgery.sign_response,
    )
    if forgery.tamper:
        xml = tamper_name_id(xml)
    metadata = idp_metadata(idp_keys)
    wants = dict(want_response_signed=forgery.sign_response, want_assertions_signed=True)

    gate = gate_outcome(
        gate_verifier(metadata, sp_keys, **wants), b64(xml), request_id, now.timestamp()
    )
    assert gate.identity is None, f"the gate accepted: {gate.identity}"
    assert gate.gate_code == forgery.gate_code, gate.error

    pysaml2 = pysaml2_outcome(pysaml2_sp(metadata, key_files, **wants), b64(xml), request_id)
    assert pysaml2.identity is None, f"pysaml2 accepted: {pysaml2.identity}"
    assert re.search(forgery.pysaml2_error, f"{type(pysaml2.error).__name__}: {pysaml2.error}")
