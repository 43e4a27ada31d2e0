"""Mutations for the fuzzer, and the check that decides whether a mutation touched signed data.

A mutation is a small list of operations, each drawn by hypothesis: byte-level (flip a bit,
insert an XML-significant token, delete or duplicate a slice) or tree-level (remove, duplicate,
move or re-namespace an element; change its text or an attribute). Tree-level operations keep
the document well-formed, so they reach the signature and semantic checks, which is where
wrapping attacks live.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Literal

import xmlsec
from lxml import etree

from tests.security.forge import NS

TOKENS: tuple[bytes, ...] = (
    b"<", b">", b"&", b'"', b"'", b"/", b"=", b" ", b"\n", b"\r\n", b"\t", b"\x00", b"\xff",
    b"\xc3\x28", b"\xef\xbb\xbf", b"<!---->", b"<!--x-->", b"<?x y?>", b"<![CDATA[x]]>",
    b"<!DOCTYPE r>", b'<!DOCTYPE r [<!ENTITY e "x">]>', b"&e;", b"&amp;", b"&#0;", b"&#x41;",
    b"&#x10FFFF;", b'xmlns:a="urn:a" ', b'xmlns="urn:a" ', b' ID="dup"', b' xml:id="dup"',
    b"<a/>", b"</a>", b"<saml2:Assertion/>", b"saml2:", b"ds:", b"Z", b"+01:00", b"9999",
    b"admin", b"=" * 2, b"AAAA",
)  # fmt: skip

ByteKind = Literal["flip", "insert", "delete", "duplicate"]
TreeKind = Literal[
    "remove", "duplicate", "move", "text", "attribute", "drop-attribute", "namespace", "wrap"
]


@dataclass(frozen=True)
class ByteOp:
    kind: ByteKind
    at: int
    size: int
    token: int

    def apply(self, data: bytes) -> bytes:
        if not data:
            return TOKENS[self.token % len(TOKENS)]
        at = self.at % len(data)
        end = min(len(data), at + 1 + self.size % 64)
        if self.kind == "flip":
            return data[:at] + bytes([data[at] ^ (1 << self.size % 8)]) + data[at + 1 :]
        if self.kind == "insert":
            return data[:at] + TOKENS[self.token % len(TOKENS)] + data[at:]
        if self.kind == "delete":
            return data[:at] + data[end:]
        target = self.token * 7919 % len(data)
        return data[:target] + data[at:end] + data[target:]


@dataclass(frozen=True)
class TreeOp:
    kind: TreeKind
    element: int
    other: int
    value: str

    def apply(self, data: bytes) -> bytes:
        try:
            root = etree.fromstring(data)
        except etree.XMLSyntaxError:
            return data
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        node = elements[self.element % len(elements)]
        other = elements[self.other % len(elements)]
        parent = node.getparent()
        if self.kind == "remove" and parent is not None:
            parent.remove(node)
        elif self.kind == "duplicate" and parent is not None:
            node.addnext(copy.deepcopy(node))
        elif self.kind == "move" and parent is not None and node not in other.iterancestors():
            if other is not node:
                other.append(node)
        elif self.kind == "text":
            node.text = self.value
        elif self.kind == "attribute":
            name = sorted(node.attrib)[self.other % len(node.attrib)] if node.attrib else "ID"
            node.set(name, self.value)
        elif self.kind == "drop-attribute" and node.attrib:
            del node.attrib[sorted(node.attrib)[self.other % len(node.attrib)]]
        elif self.kind == "namespace":
            node.tag = f"{{urn:x-fuzz}}{etree.QName(node).localname}"
        elif self.kind == "wrap" and parent is not None:
            wrapper = etree.Element(f"{{{NS['samlp']}}}Extensions")
            node.addprevious(wrapper)
            wrapper.append(copy.deepcopy(other))
        return bytes(etree.tostring(root))


Op = ByteOp | TreeOp


def mutate(data: bytes, ops: list[Op]) -> bytes:
    for op in ops:
        data = op.apply(data)
    return data


def signed_parts(xml: bytes, sp_key_pem: bytes | None) -> dict[str, bytes]:
    """The elements of a document that carry their own signature, canonicalised without it.

    "response" when the Response has a ``ds:Signature`` child, "assertion" when the Assertion
    (with ``sp_key_pem``: the one inside the EncryptedAssertion, decrypted here independently of
    the gate) has one. An element without a signature is only trusted through an enclosing one.
    """
    root = etree.fromstring(xml)
    if sp_key_pem is None:
        assertions = list(root.iterfind("saml2:Assertion", NS))
    else:
        assertions = [_decrypt(found, sp_key_pem) for found in root.iterfind(ENCRYPTED, NS)]
    parts: dict[str, bytes] = {}
    for number, assertion in enumerate(assertions):  # one, whenever the gate accepts
        if _signed(assertion):
            parts["assertion" if number == 0 else f"assertion {number}"] = _without_signature(
                assertion, ["xs"]
            )
    if _signed(root):
        parts["response"] = _without_signature(root, [])
    return parts


def _signed(element: etree._Element) -> bool:
    return element.find("ds:Signature", NS) is not None


ENCRYPTED = "saml2:EncryptedAssertion/xenc:EncryptedData"


def _decrypt(encrypted_data: etree._Element, sp_key_pem: bytes) -> etree._Element:
    container = encrypted_data.getparent()
    assert container is not None
    for key in container.iter(f"{{{NS['xenc']}}}EncryptedKey"):
        if key.get("Id"):
            xmlsec.tree.add_ids(key, ["Id"])
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(sp_key_pem, xmlsec.constants.KeyDataFormatPem))
    plaintext = xmlsec.EncryptionContext(manager).decrypt(encrypted_data)
    assert isinstance(plaintext, etree._Element)
    return etree.fromstring(etree.tostring(plaintext))


def _without_signature(element: etree._Element, prefixes: list[str]) -> bytes:
    bare = copy.deepcopy(element)
    for signature in bare.iterfind("ds:Signature", NS):
        bare.remove(signature)
    return bytes(
        etree.tostring(bare, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes)
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
