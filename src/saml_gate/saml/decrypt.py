"""Decryption of an EncryptedAssertion with this SP's key, into a standalone, checked Assertion.

Only the allowed algorithms, one EncryptedKey, no ciphertext fetched by URI; the plaintext must
be exactly one Assertion, which is then parsed and checked like an outer document.
"""

from __future__ import annotations

import queue
from functools import cache
from typing import Final

from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.dsig import check_signature_placement
from saml_gate.saml.process_policy import forbid_xmlsec_fetches
from saml_gate.saml.schema import SamlSchema
from saml_gate.saml.xml import check_unique_ids, one_child, parse_limited
from saml_gate.saml.xml_libraries import xmlsec

DATA_ENCRYPTION_ALGORITHMS: Final = frozenset(
    {X.AES128_CBC, X.AES192_CBC, X.AES256_CBC, X.AES128_GCM, X.AES192_GCM, X.AES256_GCM}
)
KEY_TRANSPORT_ALGORITHMS: Final = frozenset({X.RSA_OAEP_MGF1P, X.RSA_OAEP})


@cache
def _keys_managers(sp_key_pem: bytes, size: int) -> queue.SimpleQueue[xmlsec.KeysManager]:
    """Key managers holding the SP key, built once per process and lent one at a time.

    Building one takes milliseconds with the GIL held (it loads an X.509 store): done lazily in
    a fresh worker thread, that stalled the event loop for ~7 ms.
    """
    pool: queue.SimpleQueue[xmlsec.KeysManager] = queue.SimpleQueue()
    for _ in range(size):
        manager = xmlsec.KeysManager()
        manager.add_key(xmlsec.Key.from_memory(sp_key_pem, xmlsec.constants.KeyDataFormatPem))
        pool.put(manager)
    return pool


class AssertionDecrypter:
    """Decrypts the EncryptedAssertion of a Response with this SP's private key."""

    def __init__(self, settings: GateSettings, sp_key_pem: bytes, schema: SamlSchema) -> None:
        forbid_xmlsec_fetches()
        self._settings = settings
        self._schema = schema
        self._managers = _keys_managers(sp_key_pem, settings.verify_slots + 1)

    def decrypt(self, container: etree._Element) -> etree._Element:
        """The Assertion inside ``container`` (an EncryptedAssertion), as a standalone element."""
        encrypted_data = one_child(container, X.T_ENC_DATA, "decryption_failed", "EncryptedData")
        _check_encryption_algorithms(container)
        if sum(1 for _ in container.iter(X.T_ENC_KEY)) > 1:
            raise GateError("decryption_failed", "more than one EncryptedKey")
        # Okta points from EncryptedData to a sibling EncryptedKey with RetrievalMethod and an
        # `Id` attribute: register that attribute on the EncryptedKey elements only.
        for encrypted_key in container.iter(X.T_ENC_KEY):
            if encrypted_key.get("Id"):
                xmlsec.tree.add_ids(encrypted_key, ["Id"])
        manager = self._managers.get()
        try:
            decrypted = xmlsec.EncryptionContext(manager).decrypt(encrypted_data)
        except xmlsec.Error as exc:
            raise GateError("decryption_failed", "cannot decrypt with this SP's key") from exc
        finally:
            self._managers.put(manager)
        if not isinstance(decrypted, etree._Element):
            raise GateError("decryption_failed", "the encrypted content is not an element")
        # xmlsec puts every node of the plaintext where the EncryptedData was: it must have been
        # exactly one element (beside Okta's sibling EncryptedKey), the one checked below.
        if (
            any(node is not decrypted and node.tag != X.T_ENC_KEY for node in container)
            or (container.text or "").strip()
            or any((node.tail or "").strip() for node in container)
        ):
            raise GateError("assertion_count", "the encrypted content is not exactly one element")
        # Continue on a standalone copy, parsed and checked like the outer document.
        assertion = parse_limited(etree.tostring(decrypted), self._settings)
        if assertion.tag != X.T_ASSERTION:
            raise GateError("assertion_count", "the encrypted content is not an Assertion")
        self._schema.check(assertion)
        check_unique_ids(assertion)
        check_signature_placement(assertion, assertion)
        if sum(1 for _ in assertion.iter(X.T_ASSERTION, X.T_ENC_ASSERTION)) != 1:
            raise GateError("assertion_count", "the decrypted assertion nests other assertions")
        return assertion


def _check_encryption_algorithms(container: etree._Element) -> None:
    for _ in container.iter(X.T_CIPHER_REFERENCE):
        raise GateError("algorithm_refused", "CipherReference (ciphertext fetched by URI)")
    for method in container.iter(X.T_ENC_METHOD):
        algorithm = method.get("Algorithm") or ""
        parent = method.getparent()
        allowed = (
            KEY_TRANSPORT_ALGORITHMS
            if parent is not None and parent.tag == X.T_ENC_KEY
            else DATA_ENCRYPTION_ALGORITHMS
        )
        if algorithm not in allowed:
            raise GateError("algorithm_refused", f"encryption algorithm {algorithm!r}")
