"""Verification of SAML Responses posted to the ACS: the security core of the gate.

The rule throughout: parse strictly, find the one element that will be used, check that a
signature made with a key from the IdP's metadata covers exactly that element, and build the
result from that element alone. Everything is refused that real IdPs never send (DTDs, entities,
processing instructions, comments, several assertions, signatures in odd places).

:meth:`ResponseVerifier.verify` is synchronous and CPU-bound: the ACS runs it in a child process
(saml_gate.runtime.workers) or, with ``verify_isolation="thread"``, in a worker thread.
The replay check needs the shared store, so it is done by the caller with
:attr:`VerifiedLogin.replay_key` and :attr:`VerifiedLogin.replay_ttl`.
"""

from __future__ import annotations

import base64
import binascii
import queue
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any, Final

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.schema import saml_schema
from saml_gate.web.forwarded import parse_address

# libxmlsec must never fetch anything: same-document references only.
xmlsec.cleanup_callbacks()


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


T_RESPONSE: Final = _tag(X.NS_SAMLP, "Response")
T_STATUS: Final = _tag(X.NS_SAMLP, "Status")
T_STATUS_CODE: Final = _tag(X.NS_SAMLP, "StatusCode")
T_STATUS_MESSAGE: Final = _tag(X.NS_SAMLP, "StatusMessage")
T_ISSUER: Final = _tag(X.NS_SAML, "Issuer")
T_ASSERTION: Final = _tag(X.NS_SAML, "Assertion")
T_ENC_ASSERTION: Final = _tag(X.NS_SAML, "EncryptedAssertion")
T_SUBJECT: Final = _tag(X.NS_SAML, "Subject")
T_NAMEID: Final = _tag(X.NS_SAML, "NameID")
T_SUBJECT_CONF: Final = _tag(X.NS_SAML, "SubjectConfirmation")
T_SUBJECT_CONF_DATA: Final = _tag(X.NS_SAML, "SubjectConfirmationData")
T_CONDITIONS: Final = _tag(X.NS_SAML, "Conditions")
T_AUDIENCE_RESTRICTION: Final = _tag(X.NS_SAML, "AudienceRestriction")
T_AUDIENCE: Final = _tag(X.NS_SAML, "Audience")
T_ONE_TIME_USE: Final = _tag(X.NS_SAML, "OneTimeUse")
T_PROXY_RESTRICTION: Final = _tag(X.NS_SAML, "ProxyRestriction")
T_AUTHN_STATEMENT: Final = _tag(X.NS_SAML, "AuthnStatement")
T_AUTHN_CONTEXT_CLASS_REF: Final = _tag(X.NS_SAML, "AuthnContextClassRef")
T_ATTRIBUTE_STATEMENT: Final = _tag(X.NS_SAML, "AttributeStatement")
T_ATTRIBUTE: Final = _tag(X.NS_SAML, "Attribute")
T_ATTRIBUTE_VALUE: Final = _tag(X.NS_SAML, "AttributeValue")
T_SIGNATURE: Final = _tag(X.NS_DS, "Signature")
T_SIGNED_INFO: Final = _tag(X.NS_DS, "SignedInfo")
T_C14N_METHOD: Final = _tag(X.NS_DS, "CanonicalizationMethod")
T_SIGNATURE_METHOD: Final = _tag(X.NS_DS, "SignatureMethod")
T_REFERENCE: Final = _tag(X.NS_DS, "Reference")
T_TRANSFORMS: Final = _tag(X.NS_DS, "Transforms")
T_TRANSFORM: Final = _tag(X.NS_DS, "Transform")
T_DIGEST_METHOD: Final = _tag(X.NS_DS, "DigestMethod")
T_OBJECT: Final = _tag(X.NS_DS, "Object")
T_X509_CERTIFICATE: Final = _tag(X.NS_DS, "X509Certificate")
T_ENC_DATA: Final = _tag(X.NS_XENC, "EncryptedData")
T_ENC_KEY: Final = _tag(X.NS_XENC, "EncryptedKey")
T_ENC_METHOD: Final = _tag(X.NS_XENC, "EncryptionMethod")
T_CIPHER_REFERENCE: Final = _tag(X.NS_XENC, "CipherReference")

ID_ATTRIBUTE_NAMES: Final = frozenset({"ID", "Id", "id"})
DATA_ENCRYPTION_ALGORITHMS: Final = frozenset(
    {X.AES128_CBC, X.AES192_CBC, X.AES256_CBC, X.AES128_GCM, X.AES192_GCM, X.AES256_GCM}
)
KEY_TRANSPORT_ALGORITHMS: Final = frozenset({X.RSA_OAEP_MGF1P, X.RSA_OAEP})

_SIG_TRANSFORMS: Final = {
    X.RSA_SHA1: xmlsec.constants.TransformRsaSha1,
    X.RSA_SHA256: xmlsec.constants.TransformRsaSha256,
    X.RSA_SHA384: xmlsec.constants.TransformRsaSha384,
    X.RSA_SHA512: xmlsec.constants.TransformRsaSha512,
    X.ECDSA_SHA256: xmlsec.constants.TransformEcdsaSha256,
    X.ECDSA_SHA384: xmlsec.constants.TransformEcdsaSha384,
    X.ECDSA_SHA512: xmlsec.constants.TransformEcdsaSha512,
}
_DIGEST_TRANSFORMS: Final = {
    X.DIGEST_SHA1: xmlsec.constants.TransformSha1,
    X.DIGEST_SHA256: xmlsec.constants.TransformSha256,
    X.DIGEST_SHA384: xmlsec.constants.TransformSha384,
    X.DIGEST_SHA512: xmlsec.constants.TransformSha512,
}
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class VerifiedLogin:
    """What a verified assertion says, built only from the element whose signature was checked."""

    name_id: str
    name_id_format: str | None
    session_index: str | None
    attributes: Mapping[str, tuple[str, ...]]
    authn_instant: datetime
    authn_context: str | None
    session_not_on_or_after: datetime | None
    issuer: str
    in_response_to: str | None
    assertion_id: str
    replay_until: float
    """Epoch seconds until which the assertion could still be accepted (for the replay cache)."""

    @property
    def replay_key(self) -> str:
        return f"assertion:{self.issuer}:{self.assertion_id}"


def decode_post_value(value: str, max_bytes: int) -> bytes:
    """Base64-decode an HTTP-POST SAMLResponse, refusing anything over ``max_bytes``."""
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise GateError("response_too_large", f"{len(value)} encoded bytes")
    compact = "".join(value.split())
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GateError("malformed_response", "SAMLResponse is not valid base64") from exc
    if len(data) > max_bytes:
        raise GateError("response_too_large", f"{len(data)} bytes")
    if not data.strip():
        raise GateError("malformed_response", "SAMLResponse is empty")
    return data


def parse_strict(
    data: bytes, *, max_depth: int, max_elements: int, max_attributes: int
) -> etree._Element:
    """Parse with no DTD, no entities, no network; refuse DTDs, PIs, comments and entities,
    encodings other than UTF-8, and trees deeper or larger than the limits: ``max_depth``
    levels, ``max_elements`` elements, ``max_attributes`` attributes on one element and
    namespace declarations in scope at one element, and ``max_elements`` attributes and as many
    namespace declarations in the whole document."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GateError("malformed_response", "the document is not UTF-8") from exc
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
        remove_comments=False,
        remove_pis=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise GateError("malformed_response", f"not well-formed XML (line {exc.lineno})") from exc
    if root is None:
        raise GateError("malformed_response", "no document element")
    info: Any = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise GateError("forbidden_xml", "DOCTYPE declaration")
    if (info.encoding or "UTF-8").upper() != "UTF-8":
        raise GateError("malformed_response", f"the document declares encoding {info.encoding!r}")
    # Counted by libxml2's XPath engine: cheap, and before any Python loop over the tree.
    if root.xpath(f"count(//*) > {max_elements}"):
        raise GateError("response_too_complex", f"more than {max_elements} elements")
    if root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise GateError("response_too_complex", f"elements nested deeper than {max_depth}")
    if root.xpath(f"count(//@*) > {max_elements}"):
        raise GateError("response_too_complex", f"more than {max_elements} attributes")
    if root.xpath(f"boolean(//@*[{max_attributes + 1}])"):  # an element's attribute N + 1
        raise GateError(
            "response_too_complex", f"an element with more than {max_attributes} attributes"
        )
    # Every declaration spells "xmlns": with fewer in the bytes, no limit can be exceeded.
    if data.count(b"xmlns") > min(max_attributes, max_elements):
        _check_namespaces(root, max_in_scope=max_attributes, max_total=max_elements)
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        raise GateError("forbidden_xml", f"{_kind(sibling)} outside the document element")
    for node in root.iter(etree.PI, etree.Comment, etree.Entity):
        raise GateError("forbidden_xml", _kind(node))
    return root


def _check_namespaces(root: etree._Element, *, max_in_scope: int, max_total: int) -> None:
    """Bound the namespace declarations, which are not attributes to XPath.

    libxml2 parses thousands of declarations on one element cheaply, but canonicalization walks
    every namespace in scope at every element of the document: 5,000 declarations above 5,000
    elements cost libxmlsec 100 ms. One pass of lxml's tree walker, which hands Python the
    declarations only (and each one's end), not the elements; it stops at the first one over
    a limit. A redeclared prefix counts again: libxml2 keeps each declaration."""
    in_scope = total = 0
    for event, _ in etree.iterwalk(root, events=("start-ns", "end-ns")):
        if event == "end-ns":
            in_scope -= 1
            continue
        in_scope += 1
        total += 1
        if in_scope > max_in_scope:
            raise GateError(
                "response_too_complex",
                f"more than {max_in_scope} namespace declarations in scope at one element",
            )
        if total > max_total:
            raise GateError("response_too_complex", f"more than {max_total} namespace declarations")


def _kind(node: etree._Element) -> str:
    if isinstance(node, etree._ProcessingInstruction):
        return "processing instruction"
    if isinstance(node, etree._Comment):
        return "comment"
    if isinstance(node, etree._Entity):
        return "entity reference"
    return "node"


def parse_instant(value: str | None, what: str) -> datetime:
    """An xs:dateTime in UTC (shared with the logout messages' checks); GateError otherwise."""
    if not value:
        raise GateError("schema_invalid", f"{what} is missing")
    text = _FRACTION.sub(r"\1", value.strip())
    if not text.endswith("Z"):  # SAML core 1.3.3: UTC, written with the Z designator
        raise GateError("schema_invalid", f"{what} is not a UTC time ending in Z")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # not ISO 8601, or beyond datetime's range
        raise GateError("schema_invalid", f"{what} is not a valid dateTime") from exc


def children(element: etree._Element, tag: str) -> list[etree._Element]:
    """Direct children with ``tag`` (never descendants: nested copies are what XSW hides)."""
    return [child for child in element if child.tag == tag]


def _one_child(element: etree._Element, tag: str, code: str, what: str) -> etree._Element:
    found = children(element, tag)
    if len(found) != 1:
        raise GateError(code, f"expected exactly one {what}, found {len(found)}")
    return found[0]


def _verbatim_text(element: etree._Element) -> str:
    """The whole text content, exactly as sent: comments and PIs were refused, CDATA is merged
    by the parser."""
    if len(element):
        raise GateError("schema_invalid", f"{etree.QName(element).localname} has child elements")
    return element.text or ""


def _text(element: etree._Element) -> str:
    """The text content without surrounding layout whitespace: only for URIs compared with
    configured values (Issuer, Audience, AuthnContextClassRef), never for identity data."""
    return _verbatim_text(element).strip()


def _check_identity_value(value: str, what: str) -> None:
    """Refuse a signed identity value that could pass for another one: leading or trailing
    whitespace (any Unicode whitespace), or a control (Cc) or format (Cf: zero-width, bidi,
    BOM) character anywhere. Such a value is refused, never trimmed or normalised: an account
    ``admin `` must not become ``admin``."""
    if value != value.strip():
        raise GateError("identity_not_verbatim", f"{what} has leading or trailing whitespace")
    if value.isprintable():  # the common case, in C: nothing of categories C or Z but " "
        return
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf"):
            raise GateError(
                "identity_not_verbatim",
                f"{what} has U+{ord(char):04X} ({category}) at position {position}",
            )


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


def _public_key(cert_pem: bytes) -> xmlsec.Key:
    """The certificate's bare public key: libxmlsec copies the key into every signature
    context, and a key that carries its certificate costs about 70 microseconds more per
    signature to copy and use. Nothing about the certificate is checked at verification
    time anyway: trust comes from the metadata, not from X.509 validation."""
    spki = (
        x509.load_pem_x509_certificate(cert_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatPem)


class ResponseVerifier:
    """Checks Responses against one IdP's metadata and this SP's settings."""

    def __init__(self, settings: GateSettings, idp: IdpInfo, sp_key_pem: bytes) -> None:
        self._settings = settings
        self._idp = idp
        self._keys = tuple(_public_key(pem) for pem in idp.signing_certs)
        self._known_certificates = frozenset(
            "".join(line for line in pem.decode().splitlines() if "CERTIFICATE" not in line)
            for pem in idp.signing_certs
        )
        self._sig_algs = frozenset(settings.accepted_signature_algorithms)
        self._digest_algs = frozenset(settings.digest_algorithms)
        self._schema = saml_schema()
        self._managers = _keys_managers(sp_key_pem, settings.verify_concurrency + 1)
        self._identity_attributes = frozenset(
            (settings.groups_attribute, settings.email_attribute, settings.name_attribute)
        )

    # ------------------------------------------------------------------ entry point
    def verify(
        self,
        saml_response: str,
        *,
        expected_request_ids: Collection[str],
        now: float,
        client_address: str = "",
    ) -> VerifiedLogin:
        """Verify a posted SAMLResponse; raise :class:`GateError` with a stable code on refusal.

        ``client_address``: the client's address as the gate trusts it (``trusted_proxies``),
        "" when unknown; compared with the bearer confirmation's Address when
        ``check_subject_address`` is on."""
        s = self._settings
        data = decode_post_value(saml_response, s.max_response_bytes)
        root = self._parse(data)
        if root.tag != T_RESPONSE:
            raise GateError("not_a_response", f"document element is {etree.QName(root).localname}")
        self._check_schema(root)
        self._check_unique_ids(root)
        self._check_status(root)
        if root.get("Version") != "2.0":
            raise GateError("schema_invalid", "Response Version is not 2.0")
        self._check_issuer(root, required=False)

        containers = [c for c in root.iter(T_ASSERTION, T_ENC_ASSERTION)]
        if len(containers) != 1 or containers[0].getparent() is not root:
            raise GateError(
                "assertion_count",
                f"{len(containers)} assertions (exactly one, as a child of Response, is accepted)",
            )
        container = containers[0]
        self._check_signature_placement(root, container)

        response_signed = self._verify_signature(root)
        if response_signed:
            destination = root.get("Destination")
            if destination is None:
                raise GateError("wrong_destination", "a signed Response must carry Destination")
        if root.get("Destination") is not None and root.get("Destination") != s.acs_url:
            raise GateError(
                "wrong_destination",
                f"Destination is {root.get('Destination')!r} but this ACS is {s.acs_url!r}",
            )

        assertion = self._decrypt(container) if container.tag == T_ENC_ASSERTION else container
        assertion_signed = self._verify_signature(assertion)

        if not (response_signed or assertion_signed):
            raise GateError("signature_missing", "neither the Response nor the Assertion is signed")
        if s.want_response_signed and not response_signed:
            raise GateError(
                "signature_missing", "the Response is not signed (want_response_signed)"
            )
        if s.want_assertions_signed and not assertion_signed:
            raise GateError(
                "signature_missing", "the Assertion is not signed (want_assertions_signed)"
            )
        self._check_issued(root, now)
        return self._read_assertion(
            assertion,
            response_irt=root.get("InResponseTo"),
            expected_request_ids=expected_request_ids,
            now=now,
            client_address=client_address,
        )

    # ------------------------------------------------------------------ structure
    def _parse(self, data: bytes) -> etree._Element:
        s = self._settings
        return parse_strict(
            data,
            max_depth=s.max_xml_depth,
            max_elements=s.max_xml_elements,
            max_attributes=s.max_xml_attributes,
        )

    def _check_schema(self, element: etree._Element) -> None:
        error = self._schema.error(element)
        if error is not None:
            raise GateError("schema_invalid", error)

    @staticmethod
    def _check_unique_ids(root: etree._Element) -> None:
        seen: set[str] = set()
        for element in root.iter(etree.Element):
            for name, value in element.attrib.items():
                if str(name).rsplit("}", 1)[-1] in ID_ATTRIBUTE_NAMES:
                    if str(value) in seen:
                        raise GateError("duplicate_id", "an identifier appears more than once")
                    seen.add(str(value))

    @staticmethod
    def _check_status(root: etree._Element) -> None:
        status = _one_child(root, T_STATUS, "schema_invalid", "Status")
        code = _one_child(status, T_STATUS_CODE, "schema_invalid", "StatusCode")
        value = code.get("Value")
        if value == X.STATUS_SUCCESS:
            return
        codes = [value or "?", *[c.get("Value") or "?" for c in code.iter(T_STATUS_CODE)][1:]]
        message = ""
        for m in children(status, T_STATUS_MESSAGE):
            message = (m.text or "")[:200]
        short = " / ".join(c.rsplit(":", 1)[-1] for c in codes)
        detail = f"IdP status {short}" + (f": {message!r}" if message else "")
        denied = any(c.endswith(":RequestDenied") for c in codes) or "assign" in message.lower()
        raise GateError("idp_denied" if denied else "idp_status", detail)

    def _check_issuer(self, element: etree._Element, *, required: bool) -> None:
        issuers = children(element, T_ISSUER)
        if not issuers:
            if required:
                raise GateError("wrong_issuer", "the Assertion has no Issuer")
            return
        issuer = issuers[0]
        fmt = issuer.get("Format")
        if fmt is not None and fmt != X.NAMEID_ENTITY:
            raise GateError("wrong_issuer", f"Issuer Format is {fmt!r}")
        value = _text(issuer)
        if value != self._idp.entity_id:
            raise GateError(
                "wrong_issuer",
                f"Issuer is {value!r} but the IdP metadata's entityID is {self._idp.entity_id!r}",
            )

    def _check_issued(self, element: etree._Element, now: float) -> None:
        """IssueInstant within clock_skew of now, and not older than login_timeout: an IdP
        answers a sign-in when it happens, and the browser posts the answer at once."""
        skew = self._settings.clock_skew
        what = etree.QName(element).localname
        issued = parse_instant(element.get("IssueInstant"), f"{what} IssueInstant").timestamp()
        if issued > now + skew:
            raise GateError(
                "not_yet_valid",
                f"the {what} was issued {issued - now:.0f} s in the future"
                f" (clock_skew is {skew:.0f} s): the IdP's clock is ahead of this server's",
            )
        if issued < now - self._settings.login_timeout - skew:
            raise GateError(
                "expired",
                f"the {what} was issued {now - issued:.0f} s ago, longer than login_timeout"
                f" ({self._settings.login_timeout:.0f} s) + clock_skew",
            )

    @staticmethod
    def _check_signature_placement(root: etree._Element, container: etree._Element) -> None:
        """Signatures may only be direct children of the Response or of the Assertion."""
        for signature in root.iter(T_SIGNATURE):
            if signature.getparent() not in (root, container):
                raise GateError("signature_structure", "a ds:Signature sits in an unexpected place")

    # ------------------------------------------------------------------ signatures
    def _verify_signature(self, element: etree._Element) -> bool:
        """False when the element carries no signature; True when valid; GateError otherwise."""
        signatures = children(element, T_SIGNATURE)
        if not signatures:
            return False
        if len(signatures) > 1:
            raise GateError("signature_structure", "more than one ds:Signature")
        signature = signatures[0]
        element_id = element.get("ID")
        if not element_id:
            raise GateError("signature_structure", "the signed element has no ID")
        signature_method, digest_method = self._check_signature_shape(signature, element_id)
        # Register exactly the element we will read: with collect_ids off, no other ID exists.
        registrar = xmlsec.SignatureContext()
        try:
            registrar.register_id(element, "ID")
        except xmlsec.Error as exc:
            raise GateError("duplicate_id", "the signed element's ID is not unique") from exc
        for key in self._keys:
            ctx = xmlsec.SignatureContext()
            ctx.enable_signature_transform(xmlsec.constants.TransformExclC14N)
            ctx.enable_signature_transform(_SIG_TRANSFORMS[signature_method])
            ctx.enable_reference_transform(xmlsec.constants.TransformEnveloped)
            ctx.enable_reference_transform(xmlsec.constants.TransformExclC14N)
            ctx.enable_reference_transform(_DIGEST_TRANSFORMS[digest_method])
            ctx.key = key
            try:
                ctx.verify(signature)
            except xmlsec.Error:
                continue
            return True
        what = etree.QName(element).localname
        if self._signed_with_unknown_certificate(signature):
            raise GateError(
                "unknown_signing_certificate",
                f"the {what} was signed with a certificate that is not in the IdP metadata",
            )
        raise GateError(
            "signature_invalid",
            f"the {what} signature does not verify with any of the"
            f" {len(self._keys)} certificate(s) in the IdP metadata",
        )

    def _signed_with_unknown_certificate(self, signature: etree._Element) -> bool:
        """Diagnosis only (never trusted): does KeyInfo name a certificate the metadata lacks?"""
        named = {"".join((c.text or "").split()) for c in signature.iter(T_X509_CERTIFICATE)}
        return bool(named) and not named & self._known_certificates

    def _check_signature_shape(self, signature: etree._Element, element_id: str) -> tuple[str, str]:
        if children(signature, T_OBJECT):
            raise GateError("signature_structure", "ds:Object is not allowed")
        signed_info = _one_child(signature, T_SIGNED_INFO, "signature_structure", "SignedInfo")
        c14n = _one_child(
            signed_info, T_C14N_METHOD, "signature_structure", "CanonicalizationMethod"
        )
        if c14n.get("Algorithm") != X.C14N_EXCL:
            raise GateError("algorithm_refused", f"canonicalization {c14n.get('Algorithm')!r}")
        method = _one_child(
            signed_info, T_SIGNATURE_METHOD, "signature_structure", "SignatureMethod"
        )
        signature_method = method.get("Algorithm") or ""
        if signature_method not in self._sig_algs:
            raise GateError("algorithm_refused", f"signature method {signature_method!r}")
        reference = _one_child(signed_info, T_REFERENCE, "signature_structure", "Reference")
        if reference.get("URI") != "#" + element_id:
            raise GateError(
                "signature_structure", "the Reference does not point at the signed element"
            )
        transforms_parent = children(reference, T_TRANSFORMS)
        algorithms = (
            [t.get("Algorithm") for t in transforms_parent[0] if t.tag == T_TRANSFORM]
            if len(transforms_parent) == 1
            else []
        )
        if (
            len(transforms_parent) != 1
            or len(transforms_parent[0]) != len(algorithms)
            or X.TRANSFORM_ENVELOPED not in algorithms
            or not set(algorithms) <= {X.TRANSFORM_ENVELOPED, X.C14N_EXCL}
            or len(algorithms) != len(set(algorithms))
        ):
            raise GateError(
                "signature_structure", "transforms must be enveloped-signature and exclusive c14n"
            )
        digest = _one_child(reference, T_DIGEST_METHOD, "signature_structure", "DigestMethod")
        digest_method = digest.get("Algorithm") or ""
        if digest_method not in self._digest_algs:
            raise GateError("algorithm_refused", f"digest method {digest_method!r}")
        return signature_method, digest_method

    # ------------------------------------------------------------------ encryption
    def _decrypt(self, container: etree._Element) -> etree._Element:
        encrypted_data = _one_child(container, T_ENC_DATA, "decryption_failed", "EncryptedData")
        self._check_encryption_algorithms(container)
        if sum(1 for _ in container.iter(T_ENC_KEY)) > 1:
            raise GateError("decryption_failed", "more than one EncryptedKey")
        # Okta points from EncryptedData to a sibling EncryptedKey with RetrievalMethod and an
        # `Id` attribute: register that attribute on the EncryptedKey elements only.
        for encrypted_key in container.iter(T_ENC_KEY):
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
            any(node is not decrypted and node.tag != T_ENC_KEY for node in container)
            or (container.text or "").strip()
            or any((node.tail or "").strip() for node in container)
        ):
            raise GateError("assertion_count", "the encrypted content is not exactly one element")
        # Continue on a standalone copy, parsed and checked like the outer document.
        assertion = self._parse(etree.tostring(decrypted))
        if assertion.tag != T_ASSERTION:
            raise GateError("assertion_count", "the encrypted content is not an Assertion")
        self._check_schema(assertion)
        self._check_unique_ids(assertion)
        for signature in assertion.iter(T_SIGNATURE):
            if signature.getparent() is not assertion:
                raise GateError("signature_structure", "a ds:Signature sits in an unexpected place")
        if sum(1 for _ in assertion.iter(T_ASSERTION, T_ENC_ASSERTION)) != 1:
            raise GateError("assertion_count", "the decrypted assertion nests other assertions")
        return assertion

    @staticmethod
    def _check_encryption_algorithms(container: etree._Element) -> None:
        for _ in container.iter(T_CIPHER_REFERENCE):
            raise GateError("algorithm_refused", "CipherReference (ciphertext fetched by URI)")
        for method in container.iter(T_ENC_METHOD):
            algorithm = method.get("Algorithm") or ""
            parent = method.getparent()
            allowed = (
                KEY_TRANSPORT_ALGORITHMS
                if parent is not None and parent.tag == T_ENC_KEY
                else DATA_ENCRYPTION_ALGORITHMS
            )
            if algorithm not in allowed:
                raise GateError("algorithm_refused", f"encryption algorithm {algorithm!r}")

    # ------------------------------------------------------------------ semantics
    def _read_assertion(
        self,
        assertion: etree._Element,
        *,
        response_irt: str | None,
        expected_request_ids: Collection[str],
        now: float,
        client_address: str,
    ) -> VerifiedLogin:
        s = self._settings
        skew = s.clock_skew
        if assertion.get("Version") != "2.0":
            raise GateError("schema_invalid", "Assertion Version is not 2.0")
        self._check_issuer(assertion, required=True)
        assertion_id = assertion.get("ID") or ""
        self._check_issued(assertion, now)

        # Subject
        subject = _one_child(assertion, T_SUBJECT, "bad_subject", "Subject")
        name_id_el = _one_child(subject, T_NAMEID, "bad_subject", "NameID")
        name_id = _verbatim_text(name_id_el)
        if not name_id:
            raise GateError("bad_subject", "the NameID is empty")
        _check_identity_value(name_id, "the NameID")
        name_id_format = name_id_el.get("Format")
        if s.name_id_format != X.NAMEID_UNSPECIFIED and name_id_format not in (
            None,
            s.name_id_format,
            X.NAMEID_UNSPECIFIED,
        ):
            raise GateError(
                "name_id_format",
                f"NameID Format is {name_id_format!r}, expected {s.name_id_format!r}",
            )
        qualifier = name_id_el.get("SPNameQualifier")
        if qualifier is not None and qualifier != s.entity_id:
            raise GateError("bad_subject", f"the NameID's SPNameQualifier is {qualifier!r}")
        confirmation_until, scd_irt = self._check_bearer(subject, now, client_address)

        # InResponseTo: the Response's and the bearer confirmation's must agree. The Web SSO
        # profile puts it on both when the Response answers an AuthnRequest, on neither when not.
        if response_irt != scd_irt:
            raise GateError("unknown_request", "InResponseTo differs inside the message")
        in_response_to = scd_irt
        if in_response_to is None:
            if not s.allow_idp_initiated:
                raise GateError("unsolicited", "the Response answers no AuthnRequest")
        elif in_response_to not in expected_request_ids:
            raise GateError(
                "unknown_request",
                "InResponseTo does not match a sign-in started in this browser",
            )

        conditions_until = self._check_conditions(assertion, now)

        # AuthnStatement
        statement = _one_child(
            assertion, T_AUTHN_STATEMENT, "bad_authn_statement", "AuthnStatement"
        )
        authn_instant = parse_instant(statement.get("AuthnInstant"), "AuthnInstant")
        session_until_text = statement.get("SessionNotOnOrAfter")
        session_until = (
            parse_instant(session_until_text, "SessionNotOnOrAfter") if session_until_text else None
        )
        # No clock_skew here: a session must not start already past its end (session.py).
        if session_until is not None and now >= session_until.timestamp():
            raise GateError("expired", "the IdP session (SessionNotOnOrAfter) has ended")
        class_refs = list(statement.iter(T_AUTHN_CONTEXT_CLASS_REF))
        authn_context = _text(class_refs[0]) if class_refs else None

        return VerifiedLogin(
            name_id=name_id,
            name_id_format=name_id_format,
            session_index=statement.get("SessionIndex"),
            attributes=self._attributes(assertion, self._identity_attributes),
            authn_instant=authn_instant,
            authn_context=authn_context,
            session_not_on_or_after=session_until,
            issuer=self._idp.entity_id,
            in_response_to=in_response_to,
            assertion_id=assertion_id,
            replay_until=max(confirmation_until, conditions_until) + skew,
        )

    def _check_bearer(
        self, subject: etree._Element, now: float, client_address: str
    ) -> tuple[float, str | None]:
        """The first bearer confirmation that holds: (its NotOnOrAfter, its InResponseTo)."""
        skew = self._settings.clock_skew
        failure = GateError("bad_subject", "no bearer SubjectConfirmation")
        for confirmation in children(subject, T_SUBJECT_CONF):
            if confirmation.get("Method") != X.CM_BEARER:
                continue
            data = children(confirmation, T_SUBJECT_CONF_DATA)
            if len(data) != 1:
                failure = GateError("bad_subject", "bearer confirmation without one data element")
                continue
            scd = data[0]
            recipient = scd.get("Recipient")
            if recipient != self._settings.acs_url:
                failure = GateError(
                    "wrong_recipient",
                    f"Recipient is {recipient!r} but this ACS is {self._settings.acs_url!r}",
                )
                continue
            until_text = scd.get("NotOnOrAfter")
            if until_text is None:
                failure = GateError("bad_subject", "bearer confirmation without NotOnOrAfter")
                continue
            until = parse_instant(until_text, "SubjectConfirmationData NotOnOrAfter").timestamp()
            if now - skew >= until:
                failure = GateError(
                    "expired",
                    f"the bearer confirmation expired {now - until:.0f} s ago (clock_skew is"
                    f" {skew:.0f} s): a stale Response, or this server's clock is ahead",
                )
                continue
            if scd.get("NotBefore") is not None:  # forbidden for bearer (profiles 4.1.4.2)
                failure = GateError("bad_subject", "bearer confirmation with NotBefore")
                continue
            address = scd.get("Address")
            if self._settings.check_subject_address and address is not None:
                mismatch = _address_mismatch(address, client_address)
                if mismatch:
                    failure = GateError("subject_address_mismatch", mismatch)
                    continue
            return until, scd.get("InResponseTo")
        raise failure

    def _check_conditions(self, assertion: etree._Element, now: float) -> float:
        skew = self._settings.clock_skew
        conditions = _one_child(assertion, T_CONDITIONS, "bad_conditions", "Conditions")
        not_before = conditions.get("NotBefore")
        if not_before is not None and (
            parse_instant(not_before, "Conditions NotBefore").timestamp() > now + skew
        ):
            raise GateError("not_yet_valid", "Conditions NotBefore is in the future")
        until_text = conditions.get("NotOnOrAfter")
        if until_text is None:
            raise GateError("bad_conditions", "Conditions without NotOnOrAfter")
        until = parse_instant(until_text, "Conditions NotOnOrAfter").timestamp()
        if not_before is not None and (
            parse_instant(not_before, "Conditions NotBefore").timestamp() >= until
        ):
            raise GateError("bad_conditions", "Conditions NotBefore is not before NotOnOrAfter")
        if now - skew >= until:
            raise GateError(
                "expired",
                f"Conditions NotOnOrAfter passed {now - until:.0f} s ago (clock_skew is"
                f" {skew:.0f} s): a stale Response, or this server's clock is ahead of the IdP's",
            )
        restrictions = 0
        for condition in conditions:
            if condition.tag == T_AUDIENCE_RESTRICTION:
                restrictions += 1
                audiences = [_text(a) for a in condition.iter(T_AUDIENCE)]
                if self._settings.entity_id not in audiences:
                    if any("temporary" in a for a in audiences):
                        raise GateError(
                            "audience_placeholder",
                            f"Audience is {', '.join(repr(a) for a in audiences)}",
                        )
                    raise GateError(
                        "wrong_audience",
                        f"Audience is {', '.join(repr(a) for a in audiences)} but this SP's entity"
                        f" ID is {self._settings.entity_id!r}",
                    )
            elif condition.tag not in (T_ONE_TIME_USE, T_PROXY_RESTRICTION):
                raise GateError("bad_conditions", "an unknown Condition is present")
        if restrictions == 0:
            raise GateError("bad_conditions", "no AudienceRestriction")
        return until

    @staticmethod
    def _attributes(
        assertion: etree._Element, identity: Collection[str]
    ) -> Mapping[str, tuple[str, ...]]:
        """Every attribute's values, verbatim; those of the ``identity`` attributes checked."""
        collected: dict[str, list[str]] = {}
        for statement in children(assertion, T_ATTRIBUTE_STATEMENT):
            for attribute in children(statement, T_ATTRIBUTE):
                name = attribute.get("Name") or ""
                if name in collected:  # merging or choosing could grant what was not meant
                    raise GateError("duplicate_attribute", f"attribute {name!r} appears twice")
                values = [_value_text(v) for v in children(attribute, T_ATTRIBUTE_VALUE)]
                if name in identity:
                    for value in values:
                        _check_identity_value(value, f"a value of the {name!r} attribute")
                collected[name] = values
        return MappingProxyType({k: tuple(v) for k, v in collected.items()})


def _value_text(value: etree._Element) -> str:
    """An AttributeValue's text content, verbatim (nothing trimmed: it is signed data)."""
    return "".join(str(t) for t in value.itertext())


def _address_mismatch(address: str, client_address: str) -> str:
    """Why the bearer confirmation's Address is not the client's ("" when it is): both read
    as IP addresses (an IPv4-mapped IPv6 address is its IPv4 address)."""
    expected = parse_address(address)
    if expected is None:
        return "the bearer confirmation's Address is not an IP address"
    client = parse_address(client_address)
    if client is None:
        return "the bearer confirmation names an Address, and the client's is unknown"
    if client != expected:
        return f"the bearer confirmation's Address is {address!r}, the client is {client_address}"
    return ""
