"""Catalogue A.6: XML Encryption (cases 66-67): attacker-encrypted assertions, ciphertext
tampering, key-transport downgrade, key-retrieval tricks, and chosen plaintext.

The SP's encryption certificate is public (it is in the SP metadata), so anyone can encrypt
anything to it: decryption never stands in for a signature.
"""

from __future__ import annotations

import base64
import copy

from lxml import etree

from saml_gate.saml import xmlconst as X
from tests.security.corpus import Build, Registry
from tests.security.forge import (
    Context,
    Mode,
    Signer,
    assertion_of,
    encrypt_plaintext,
    make_evil,
    one,
    q,
    serialize,
    sign,
    sign_mode,
)

R = Registry()
AS, RS, BS = Mode.AS, Mode.RS, Mode.BS
CIPHER_VALUE = "saml2:EncryptedAssertion/xenc:EncryptedData/xenc:CipherData/xenc:CipherValue"


def _attacker_encrypted(response_signer: str | None, assertion_signer: str | None) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.tree(include_assertion=False)
        evil = make_evil(assertion_of(ctx.tree()))
        if assertion_signer is not None:
            sign(evil, Signer(ctx.attacker))
        response = encrypt_plaintext(response, etree.tostring(evil), ctx.sp.cert_pem)
        if response_signer is not None:
            response = sign_mode(response, RS, Signer(ctx.attacker))
        return serialize(response)

    return build


R.case(
    "66",
    "attacker-encrypted-unsigned",
    "An unsigned evil Assertion encrypted to the SP's public certificate, unsigned Response",
    _attacker_encrypted(None, None),
    codes=("signature_missing",),
    mode=AS,
)
R.case(
    "66",
    "attacker-encrypted-response-attacker-signed",
    "The same inside a Response the attacker signed",
    _attacker_encrypted("attacker", None),
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=RS,
)
R.case(
    "66",
    "attacker-encrypted-attacker-signed-assertion",
    "An attacker-signed evil Assertion, encrypted to the SP",
    _attacker_encrypted(None, "attacker"),
    codes=("signature_invalid", "unknown_signing_certificate"),
    mode=AS,
)


def _cipher(edit: str, mode: Mode = AS) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.encrypted(mode)
        value = one(response, CIPHER_VALUE)
        raw = bytearray(base64.b64decode(value.text or ""))
        if edit == "flip-middle":
            raw[len(raw) // 2] ^= 0x01
        elif edit == "flip-iv":
            raw[5] ^= 0x20
        elif edit == "flip-last-block":
            raw[-1] ^= 0x01
        else:  # truncate the last block
            del raw[-16:]
        value.text = base64.b64encode(bytes(raw)).decode()
        return serialize(response)

    return build


for _edit, _title in (
    ("flip-middle", "a bit flipped in a middle AES-CBC block"),
    ("flip-iv", "a bit flipped in the IV"),
    ("flip-last-block", "a bit flipped in the padding block"),
    ("truncate", "the last block removed"),
):
    R.case(
        "67",
        f"ciphertext-{_edit}",
        f"Encrypted signed Assertion in an unsigned Response, {_title}",
        _cipher(_edit),
        codes=("decryption_failed",),
        mode=AS,
    )
R.case(
    "67",
    "ciphertext-flip-response-signed",
    "A bit flipped in the ciphertext of a signed Response (refused before decryption)",
    _cipher("flip-middle", BS),
    codes=("signature_invalid",),
    mode=BS,
)
R.case(
    "67",
    "rsa-1-5-key-transport",
    "Key transport RSA PKCS#1 v1.5 (Bleichenbacher)",
    lambda ctx: serialize(ctx.encrypted(AS, key_transport=X.RSA_1_5)),
    codes=("algorithm_refused",),
    mode=AS,
)
R.case(
    "67",
    "triple-des-data",
    "Data encrypted with tripledes-cbc",
    lambda ctx: serialize(ctx.encrypted(AS, data_algorithm=X.TRIPLEDES_CBC)),
    codes=("algorithm_refused",),
    mode=AS,
)


@R.add(
    "67",
    "gcm-relabelled-cbc",
    "AES-GCM ciphertext relabelled as AES-CBC (backwards-compatibility attack)",
    codes=("decryption_failed",),
    mode=AS,
)
def gcm_as_cbc(ctx: Context) -> bytes:
    response = ctx.encrypted(AS, data_algorithm=X.AES128_GCM)
    one(response, "saml2:EncryptedAssertion/xenc:EncryptedData/xenc:EncryptionMethod").set(
        "Algorithm", X.AES128_CBC
    )
    return serialize(response)


def _key_layout(kind: str) -> Build:
    def build(ctx: Context) -> bytes:
        response = ctx.encrypted(AS)
        data = one(response, "saml2:EncryptedAssertion/xenc:EncryptedData")
        if kind == "two-encrypted-keys":
            key = one(response, "saml2:EncryptedAssertion/xenc:EncryptedKey")
            decoy = copy.deepcopy(key)
            decoy.set("Id", "_decoy" + (key.get("Id") or ""))
            decoy.set("Recipient", "https://other-app.example/saml/metadata")
            one(decoy, "xenc:CipherData/xenc:CipherValue").text = base64.b64encode(
                b"\x01" * 256
            ).decode()
            key.addprevious(decoy)
        elif kind == "retrieval-method-http":
            one(data, "ds:KeyInfo/ds:RetrievalMethod").set("URI", ctx.canary + "/key")
        elif kind == "cipher-reference-http":
            cipher_data = one(data, "xenc:CipherData")
            cipher_data.remove(one(cipher_data, "xenc:CipherValue"))
            etree.SubElement(cipher_data, q("xenc", "CipherReference"), URI=ctx.canary + "/cipher")
        else:  # encrypted to another SP's key
            return serialize(_encrypted_to(ctx, ctx.attacker.cert_pem))
        return serialize(response)

    return build


def _encrypted_to(ctx: Context, cert_pem: bytes) -> etree._Element:
    signed = ctx.golden(AS)
    response = ctx.tree(include_assertion=False)
    return encrypt_plaintext(response, etree.tostring(assertion_of(signed)), cert_pem)


R.case(
    "67",
    "two-encrypted-keys",
    "A decoy EncryptedKey (Recipient another SP) before the real one",
    _key_layout("two-encrypted-keys"),
    codes=("decryption_failed",),
    mode=AS,
)
R.case(
    "67",
    "key-retrieval-method-http",
    "The EncryptedKey fetched by RetrievalMethod from a loopback URL",
    _key_layout("retrieval-method-http"),
    codes=("decryption_failed",),
    mode=AS,
    network=True,
)
R.case(
    "67",
    "cipher-reference-http",
    "CipherReference to a loopback URL instead of CipherValue",
    _key_layout("cipher-reference-http"),
    codes=("decryption_failed", "algorithm_refused"),
    mode=AS,
    network=True,
)
R.case(
    "67",
    "undecryptable",
    "Encrypted to another SP's certificate",
    _key_layout("undecryptable"),
    codes=("decryption_failed",),
    mode=AS,
)


@R.add(
    "67",
    "encrypted-assertion-in-advice",
    "A nested EncryptedAssertion inside the signed Assertion's Advice",
    codes=("assertion_count",),
    mode=AS,
)
def encrypted_in_advice(ctx: Context) -> bytes:
    inner = ctx.encrypted(AS)
    response = ctx.tree()
    assertion = assertion_of(response)
    advice = etree.Element(q("saml2", "Advice"))
    one(assertion, "saml2:Conditions").addnext(advice)
    advice.append(copy.deepcopy(one(inner, "saml2:EncryptedAssertion")))
    return serialize(sign_mode(response, AS, ctx.signer))


def _plaintext(kind: str) -> Build:
    """Chosen plaintext around a genuine signed Assertion (the attacker's own)."""

    def build(ctx: Context) -> bytes:
        genuine = etree.tostring(assertion_of(ctx.golden(AS)))
        evil = make_evil(assertion_of(ctx.tree()))
        evil.set("ID", "evil-assertion")
        if kind == "two-assertions":
            plaintext = genuine + etree.tostring(evil)
        elif kind == "text-before":
            plaintext = b"ignored text" + genuine
        elif kind == "comment-after":
            plaintext = genuine + b"<!-- admin -->"
        elif kind == "doctype":
            plaintext = b'<!DOCTYPE x [<!ENTITY e "admin">]>' + genuine
        else:  # comment inside the signed NameID (c14n drops it)
            plaintext = genuine.replace(
                b"alice@example.com</saml2:NameID>", b"alice@<!---->example.com</saml2:NameID>"
            )
        response = ctx.tree(include_assertion=False)
        return serialize(encrypt_plaintext(response, plaintext, ctx.sp.cert_pem))

    return build


for _kind, _title, _codes in (
    (
        "two-assertions",
        "the signed Assertion followed by an unsigned evil one",
        ("assertion_count",),
    ),
    ("text-before", "text before the signed Assertion", ("assertion_count",)),
    ("comment-after", "a comment after the signed Assertion", ("assertion_count", "forbidden_xml")),
    ("doctype", "a DOCTYPE with an entity before the Assertion", ("decryption_failed",)),
    ("comment-in-name-id", "a comment inside the signed NameID", ("forbidden_xml",)),
):
    R.case(
        "67",
        f"plaintext-{_kind}",
        f"Encrypted plaintext holding {_title}",
        _plaintext(_kind),
        codes=_codes,
        mode=AS,
    )
