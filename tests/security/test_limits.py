"""Resource limits: POST size, decoded size, XML depth and element count, no inflation.

What makes a refusal cheap is asserted structurally, never with a clock: an oversized POST is
refused after reading at most one chunk past the limit (or none, when Content-Length says so);
a too-deep or too-large tree is refused before schema validation and before any signature work;
nothing is ever inflated. The CPU figures are measured by ``python -m
tests.security.measure_costs`` (see SECURITY.md).
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from saml_gate import SamlGate
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.saml.dsig import SignatureChecker
from saml_gate.saml.idp import parse_idp_metadata
from saml_gate.saml.response import ResponseVerifier
from saml_gate.saml.schema import SamlSchema
from tests.security.acs import CorpusKeys
from tests.security.forge import (
    Mode,
    assertion_of,
    encrypt_plaintext,
    one,
    q,
    serialize,
    sign_mode,
)
from tests.support import BASE_URL, SECRET, FrozenClock, gate_options, idp_metadata, make_app

REQUEST_ID = "id-limits-request-0000000001"
NOW = FrozenClock().now


def verifier_with(keys: CorpusKeys, **settings: Any) -> ResponseVerifier:
    metadata = idp_metadata(keys.idp)
    gate_settings = GateSettings.load(
        environ={},
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=metadata,
        sp_key=keys.sp.key_pem.decode(),
        sp_cert=keys.sp.cert_pem.decode(),
        **settings,
    )
    return ResponseVerifier(gate_settings, parse_idp_metadata(metadata), keys.sp.key_pem)


def outcome(verifier: ResponseVerifier, xml: bytes) -> str:
    try:
        login = verifier.verify(
            base64.b64encode(xml).decode(), expected_request_ids={REQUEST_ID}, now=NOW
        )
    except GateError as refusal:
        return refusal.code
    return f"accepted {login.name_id}"


def golden_with_extensions(keys: CorpusKeys, depth: int = 0, extra: int = 0) -> bytes:
    """An assertion-signed golden whose unsigned Extensions hold a chain and/or a flat list."""
    response = keys.context(REQUEST_ID, FrozenClock(), "http://127.0.0.1:9").golden(Mode.AS)
    extensions = etree.Element(q("samlp", "Extensions"), nsmap={"x": "urn:x"})
    one(response, "saml2:Issuer").addnext(extensions)
    node = extensions
    for _ in range(depth):
        node = etree.SubElement(node, "{urn:x}a")
    for _ in range(extra):
        etree.SubElement(extensions, "{urn:x}b")
    return serialize(response)


def depth_of(xml: bytes) -> int:
    root = etree.fromstring(xml)
    return max(len(list(e.iterancestors())) + 1 for e in root.iter())


def elements_of(xml: bytes) -> int:
    return sum(1 for e in etree.fromstring(xml).iter() if isinstance(e.tag, str))


# ------------------------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_xml_depth", 15),
        ("max_xml_depth", 257),
        ("max_xml_elements", 99),
        ("max_xml_elements", 1_000_001),
    ],
)
def test_limit_settings_are_validated(setting: str, value: int, corpus_keys: CorpusKeys) -> None:
    with pytest.raises(ConfigError) as refused:
        verifier_with(corpus_keys, **{setting: value})
    assert refused.value.setting == setting


def test_limit_settings_load_from_the_environment(corpus_keys: CorpusKeys) -> None:
    loaded = GateSettings.load(
        environ={"SAML_GATE_MAX_XML_DEPTH": "40", "SAML_GATE_MAX_XML_ELEMENTS": "2500"},
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=idp_metadata(corpus_keys.idp),
    )
    assert (loaded.max_xml_depth, loaded.max_xml_elements) == (40, 2500)
    defaults = GateSettings.load(
        environ={}, base_url=BASE_URL, secret_key=SECRET, idp_metadata=idp_metadata(corpus_keys.idp)
    )
    assert (defaults.max_xml_depth, defaults.max_xml_elements) == (32, 10_000)


# ------------------------------------------------------------------------------------ XML limits
def test_depth_limit_is_exact(corpus_keys: CorpusKeys) -> None:
    verifier = verifier_with(corpus_keys, max_xml_depth=16)
    at_limit = golden_with_extensions(corpus_keys, depth=14)  # Response / Extensions / 14 x a
    assert depth_of(at_limit) == 16
    assert outcome(verifier, at_limit) == "accepted alice@example.com"
    beyond = golden_with_extensions(corpus_keys, depth=15)
    assert outcome(verifier, beyond) == "response_too_complex"


def test_element_limit_is_exact(corpus_keys: CorpusKeys) -> None:
    verifier = verifier_with(corpus_keys, max_xml_elements=100)
    base = elements_of(golden_with_extensions(corpus_keys, extra=1)) - 1
    at_limit = golden_with_extensions(corpus_keys, extra=100 - base)
    assert elements_of(at_limit) == 100
    assert outcome(verifier, at_limit) == "accepted alice@example.com"
    beyond = golden_with_extensions(corpus_keys, extra=101 - base)
    assert outcome(verifier, beyond) == "response_too_complex"


def encrypted_with_deep_value(keys: CorpusKeys, depth: int) -> bytes:
    """An encrypted, IdP-signed Assertion whose groups value nests ``depth`` elements."""
    ctx = keys.context(REQUEST_ID, FrozenClock(), "http://127.0.0.1:9")
    response = ctx.tree()
    node = one(response, ".//saml2:Attribute[@Name='groups']/saml2:AttributeValue")
    del node.attrib["{http://www.w3.org/2001/XMLSchema-instance}type"]
    for _ in range(depth):
        node = etree.SubElement(node, "{urn:x}a")
    signed = assertion_of(sign_mode(response, Mode.AS, ctx.signer))
    envelope = ctx.tree(include_assertion=False)
    return serialize(encrypt_plaintext(envelope, etree.tostring(signed), keys.sp.cert_pem))


def test_decrypted_assertion_is_held_to_the_same_limits(corpus_keys: CorpusKeys) -> None:
    verifier = verifier_with(corpus_keys, max_xml_depth=16)
    at_limit = encrypted_with_deep_value(corpus_keys, 12)  # Assertion/.../AttributeValue + 12
    assert depth_of(at_limit) < 16, "the envelope alone must stay under the limit"
    assert outcome(verifier, at_limit) == "accepted alice@example.com"
    assert outcome(verifier, encrypted_with_deep_value(corpus_keys, 13)) == "response_too_complex"


def test_limits_refuse_before_schema_and_signature_work(
    corpus_keys: CorpusKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree counts are made right after parsing: no schema or xmlsec work is spent."""
    verifier = verifier_with(corpus_keys)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("schema or signature work on a refused tree")

    monkeypatch.setattr(SamlSchema, "check", never)
    monkeypatch.setattr(SignatureChecker, "verify", never)
    assert outcome(verifier, golden_with_extensions(corpus_keys, depth=40)) == (
        "response_too_complex"
    )
    assert outcome(verifier, golden_with_extensions(corpus_keys, extra=12_000)) == (
        "response_too_complex"
    )


# ------------------------------------------------------------------------------------ sizes
def test_decoded_size_limit(corpus_keys: CorpusKeys) -> None:
    xml = golden_with_extensions(corpus_keys, extra=1)
    assert outcome(verifier_with(corpus_keys, max_response_bytes=len(xml)), xml).startswith(
        "accepted"
    )
    assert outcome(verifier_with(corpus_keys, max_response_bytes=len(xml) - 1), xml) == (
        "response_too_large"
    )


def test_encoded_size_is_refused_before_decoding(
    corpus_keys: CorpusKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = verifier_with(corpus_keys, max_response_bytes=4096)

    def never(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("decoded an oversized value")

    monkeypatch.setattr(base64, "b64decode", never)
    with pytest.raises(GateError) as refused:
        verifier.verify("A" * 6000, expected_request_ids=set(), now=NOW)
    assert refused.value.code == "response_too_large"


def test_post_messages_are_never_inflated(
    corpus_keys: CorpusKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deflated SAMLResponse (as pysaml2 would inflate) is just bytes that are not XML."""
    xml = golden_with_extensions(corpus_keys, extra=1)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(xml) + compressor.flush()

    def never(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("inflated a POST message")

    monkeypatch.setattr(zlib, "decompress", never)
    monkeypatch.setattr(zlib, "decompressobj", never)
    assert outcome(verifier_with(corpus_keys), deflated) == "malformed_response"


async def post_streamed(
    gate: SamlGate, chunks: list[bytes], declared: int | None
) -> tuple[int, int]:
    """(status, bytes the gate read) for a POST whose body arrives in ``chunks``."""
    read = 0
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/saml/acs",
        "raw_path": b"/saml/acs",
        "query_string": b"",
        "headers": headers,
        "client": ("198.51.100.23", 50123),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
    }
    await gate(scope, receive, send)
    return status[0], read


@pytest.fixture
def gate(corpus_keys: CorpusKeys, tmp_path: Path) -> SamlGate:
    options = gate_options(corpus_keys.idp, corpus_keys.sp, FrozenClock(), str(tmp_path))
    return SamlGate(make_app(), **options)


@pytest.mark.anyio
async def test_oversized_post_with_content_length_is_refused_unread(gate: SamlGate) -> None:
    chunks = [b"SAMLResponse=" + b"A" * 65536] * 40
    status, read = await post_streamed(gate, chunks, declared=sum(map(len, chunks)))
    assert (status, read) == (413, 0)


@pytest.mark.anyio
async def test_oversized_streamed_post_stops_one_chunk_past_the_limit(gate: SamlGate) -> None:
    limit = (gate.core.settings.max_response_bytes * 4) // 3 + 16384
    chunk = 65536
    chunks = [b"SAMLResponse=" + b"A" * (chunk - 13)] + [b"A" * chunk] * 40
    status, read = await post_streamed(gate, chunks, declared=None)
    assert status == 413
    assert limit < read <= limit + chunk
