"""Okta-style XML signing and assertion encryption, in process with python-xmlsec."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lxml import etree

from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from saml_gate.saml.xml_libraries import xmlsec

if TYPE_CHECKING:  # python-xmlsec's stubs name these types only privately
    from xmlsec.constants import __KeyData as _KeyData
    from xmlsec.constants import __Transform as _Transform

_C = xmlsec.constants

_SIGNATURE_METHODS: dict[str, _Transform] = {
    X.RSA_SHA1: _C.TransformRsaSha1,
    X.RSA_SHA256: _C.TransformRsaSha256,
    X.RSA_SHA384: _C.TransformRsaSha384,
    X.RSA_SHA512: _C.TransformRsaSha512,
    X.ECDSA_SHA256: _C.TransformEcdsaSha256,
    X.ECDSA_SHA384: _C.TransformEcdsaSha384,
    X.ECDSA_SHA512: _C.TransformEcdsaSha512,
}
_DIGEST_METHODS: dict[str, _Transform] = {
    X.DIGEST_SHA1: _C.TransformSha1,
    X.DIGEST_SHA256: _C.TransformSha256,
    X.DIGEST_SHA384: _C.TransformSha384,
    X.DIGEST_SHA512: _C.TransformSha512,
}
#: data algorithm -> (transform, session key klass, key size in bits).
#: Triple-DES is here only so that tests can build responses that a verifier must refuse.
_DATA_METHODS: dict[str, tuple[_Transform, _KeyData, int]] = {
    X.AES128_CBC: (_C.TransformAes128Cbc, _C.KeyDataAes, 128),
    X.AES192_CBC: (_C.TransformAes192Cbc, _C.KeyDataAes, 192),
    X.AES256_CBC: (_C.TransformAes256Cbc, _C.KeyDataAes, 256),
    X.AES128_GCM: (_C.TransformAes128Gcm, _C.KeyDataAes, 128),
    X.AES192_GCM: (_C.TransformAes192Gcm, _C.KeyDataAes, 192),
    X.AES256_GCM: (_C.TransformAes256Gcm, _C.KeyDataAes, 256),
    X.TRIPLEDES_CBC: (_C.TransformDes3Cbc, _C.KeyDataDes, 192),
}
#: RSA PKCS#1 v1.5 is here only so that tests can build responses that a verifier must refuse.
_KEY_TRANSPORTS: dict[str, _Transform] = {
    X.RSA_OAEP_MGF1P: _C.TransformRsaOaep,
    X.RSA_1_5: _C.TransformRsaPkcs1,
}


def _lookup(table: dict[str, _Transform], uri: str, what: str) -> _Transform:
    try:
        return table[uri]
    except KeyError:
        raise ValueError(f"unsupported {what} {uri!r}") from None


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


_XPATH_NS = {"ds": X.NS_DS, "xenc": X.NS_XENC, "saml2": X.NS_SAML}


def _all(node: etree._Element, path: str) -> list[etree._Element]:
    """XPath lookup. Not ``find``/``iter(tag)``: lxml matches tags by comparing interned name
    pointers, and nodes made by xmlsec's template helpers (e.g. KeyInfo) are not interned in
    the document's dictionary, so ``find`` silently misses them. XPath compares strings."""
    found = node.xpath(path, namespaces=_XPATH_NS)
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, etree._Element)]


def _first(node: etree._Element, path: str) -> etree._Element | None:
    found = _all(node, path)
    return found[0] if found else None


def _strip_layout_whitespace(element: etree._Element) -> None:
    """Drop the line feeds that xmlsec's template helpers put between elements (Okta has none)."""
    for node in element.iter():
        if node.text is not None and not node.text.strip() and len(node):
            node.text = None
        if node is not element and node.tail is not None and not node.tail.strip():
            node.tail = None


def _join_base64(node: etree._Element | None) -> None:
    """xmlsec wraps base64 at 64 columns; Okta writes SignatureValue/CipherValue on one line."""
    if node is not None and node.text:
        node.text = "".join(node.text.split())


def sign_element(
    element: etree._Element,
    keypair: KeyPair,
    *,
    signature_algorithm: str = X.RSA_SHA256,
    digest_algorithm: str = X.DIGEST_SHA256,
    inclusive_prefixes: Sequence[str] = (),
) -> None:
    """Sign ``element`` in place with an enveloped ``ds:Signature``, placed as Okta does.

    The Signature becomes the child right after ``saml2:Issuer`` (the schema's place for
    Response and Assertion), or the first child. One Reference ``#<ID>`` with the enveloped and
    exclusive c14n transforms; KeyInfo carries the certificate. ``element`` need not be the
    document root. ``inclusive_prefixes`` adds an ``InclusiveNamespaces PrefixList`` to the
    reference's c14n transform, as Okta does with ``xs`` for assertions.
    """
    element_id = element.get("ID")
    if not element_id:
        raise ValueError("the element to sign has no ID attribute")
    sign_method = _lookup(_SIGNATURE_METHODS, signature_algorithm, "signature algorithm")
    digest_method = _lookup(_DIGEST_METHODS, digest_algorithm, "digest algorithm")

    signature = xmlsec.template.create(element, _C.TransformExclC14N, sign_method, ns="ds")
    issuer = _first(element, "saml2:Issuer")
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    ref = xmlsec.template.add_reference(signature, digest_method, uri="#" + element_id)
    xmlsec.template.add_transform(ref, _C.TransformEnveloped)
    c14n = xmlsec.template.add_transform(ref, _C.TransformExclC14N)
    if inclusive_prefixes:
        # By hand rather than with xmlsec's helper, to get Okta's "ec:" prefix.
        etree.SubElement(
            c14n,
            _q(X.C14N_EXCL, "InclusiveNamespaces"),
            PrefixList=" ".join(inclusive_prefixes),
            nsmap={"ec": X.C14N_EXCL},
        )
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)
    _strip_layout_whitespace(signature)

    ctx = xmlsec.SignatureContext()
    ctx.register_id(element, "ID")
    key = xmlsec.Key.from_memory(keypair.key_pem, _C.KeyDataFormatPem)
    key.load_cert_from_memory(keypair.cert_pem, _C.KeyDataFormatCertPem)
    ctx.key = key
    ctx.sign(signature)
    # SignatureValue is outside SignedInfo and the enveloped transform drops the whole
    # Signature, so reformatting it afterwards keeps the signature valid.
    _join_base64(_first(signature, "ds:SignatureValue"))


def encrypt_assertion(
    response: etree._Element,
    cert_pem: bytes,
    *,
    data_algorithm: str = X.AES256_CBC,
    key_transport: str = X.RSA_OAEP_MGF1P,
    okta_retrieval_method: bool = False,
) -> None:
    """Replace the Response's ``saml2:Assertion`` by a ``saml2:EncryptedAssertion``.

    The assertion is encrypted with a fresh session key (``data_algorithm``), itself encrypted
    to ``cert_pem`` (``key_transport``). By default the ``xenc:EncryptedKey`` sits inside the
    EncryptedData's ``ds:KeyInfo``. With ``okta_retrieval_method`` the layout is Okta's: the
    KeyInfo only holds a ``ds:RetrievalMethod`` to ``#<Id>`` and the EncryptedKey (with that
    ``Id`` and a ``ReferenceList``) follows the EncryptedData inside the EncryptedAssertion.

    ``tripledes-cbc`` and ``rsa-1_5`` are accepted only so that tests can build responses a
    verifier must refuse; never use them for anything else.
    """
    assertion = _first(response, "saml2:Assertion")
    if assertion is None:
        raise ValueError("the Response has no saml2:Assertion child to encrypt")
    try:
        data_method, key_klass, key_bits = _DATA_METHODS[data_algorithm]
    except KeyError:
        raise ValueError(f"unsupported data encryption algorithm {data_algorithm!r}") from None
    transport = _lookup(_KEY_TRANSPORTS, key_transport, "key transport algorithm")

    # The EncryptedAssertion takes the assertion's place; the EncryptedData then replaces it.
    wrapper = etree.Element(_q(X.NS_SAML, "EncryptedAssertion"), nsmap={"saml2": X.NS_SAML})
    assertion.addprevious(wrapper)
    wrapper.append(assertion)

    data_id = "_" + secrets.token_hex(16)
    enc_data = xmlsec.template.encrypted_data_create(
        response, data_method, id=data_id, type=X.ENC_TYPE_ELEMENT, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, transport)
    if key_transport == X.RSA_OAEP_MGF1P:
        # Okta states OAEP's digest (SHA-1, the default) explicitly.
        method = _first(enc_key, "xenc:EncryptionMethod")
        if method is not None:
            etree.SubElement(
                method, _q(X.NS_DS, "DigestMethod"), Algorithm=X.DIGEST_SHA1, nsmap={"ds": X.NS_DS}
            )
    enc_key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_key, ns="ds")
    x509_data = xmlsec.template.add_x509_data(enc_key_info)
    xmlsec.template.x509_data_add_certificate(x509_data)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    _strip_layout_whitespace(enc_data)

    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(cert_pem, _C.KeyDataFormatCertPem))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(key_klass, key_bits, _C.KeyDataTypeSession)
    # Encrypt the serialized assertion, not the node: serialization declares the namespaces the
    # assertion uses, so the plaintext stands alone, as Okta's does.
    enc_data = ctx.encrypt_binary(enc_data, etree.tostring(assertion))
    wrapper.replace(assertion, enc_data)
    _strip_layout_whitespace(enc_data)
    for cipher_value in _all(enc_data, ".//xenc:CipherValue"):
        _join_base64(cipher_value)

    if okta_retrieval_method:
        _to_okta_layout(enc_data, data_id)


def _to_okta_layout(enc_data: etree._Element, data_id: str) -> None:
    """Move the EncryptedKey out of the EncryptedData's KeyInfo, as Okta lays it out."""
    key_info = _first(enc_data, "ds:KeyInfo")
    enc_key = _first(key_info, "xenc:EncryptedKey") if key_info is not None else None
    if key_info is None or enc_key is None:
        raise RuntimeError("xmlsec produced no EncryptedKey inside the EncryptedData's KeyInfo")
    key_id = "_" + secrets.token_hex(16)
    enc_key.set("Id", key_id)
    references = etree.SubElement(enc_key, _q(X.NS_XENC, "ReferenceList"))
    etree.SubElement(references, _q(X.NS_XENC, "DataReference"), URI="#" + data_id)
    enc_data.addnext(enc_key)
    etree.SubElement(
        key_info,
        _q(X.NS_DS, "RetrievalMethod"),
        Type=X.ENC_TYPE_ENCRYPTED_KEY,
        URI="#" + key_id,
    )
