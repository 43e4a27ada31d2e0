"""Property-based fuzzing of the verifier and the ACS (hypothesis).

Properties:

1. Mutations of valid signed Responses (five goldens: assertion-, response- and both-signed,
   encrypted with a signed Assertion, encrypted inside a signed Response): the verifier raises
   nothing but GateError, and when it accepts, every element that still carries a signature is
   exactly what the IdP signed (decrypted independently, when encrypted) and the identity is the
   golden's: a mutated signed element is never accepted.
2. Arbitrary SAMLResponse values (text, base64 of bytes, mutated base64 of a golden): nothing
   but GateError.
3. Raw POST bodies at the ACS (mutated valid forms, random bytes, any content type, split into
   random chunks): never a 5xx, never an exception out of the app.

Budget: ``SAML_GATE_FUZZ_EXAMPLES`` inputs per property (default 300, well under a minute for
the three). The long run, 35,000 per property (105,000 inputs)::

    SAML_GATE_FUZZ_EXAMPLES=35000 python -m pytest -q tests/security/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from saml_gate import SamlGate
from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.saml.idp import parse_idp_metadata
from saml_gate.saml.response import ResponseVerifier
from tests.security.acs import CorpusKeys, start_login
from tests.security.forge import ATTACKER, Mode, serialize
from tests.security.mutate import TOKENS, ByteOp, Op, TreeOp, b64, mutate, signed_parts
from tests.support import (
    BASE_URL,
    SECRET,
    FrozenClock,
    gate_options,
    idp_metadata,
    make_app,
)

EXAMPLES = int(os.environ.get("SAML_GATE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
REQUEST_ID = "id-fuzz-request-000000000001"


@dataclass(frozen=True)
class Golden:
    xml: bytes
    sp_key_pem: bytes | None = None
    """Set when the signed Assertion is encrypted (the key to read it)."""

    def parts(self, xml: bytes) -> dict[str, bytes]:
        return signed_parts(xml, self.sp_key_pem)


@pytest.fixture(scope="module")
def goldens(corpus_keys: CorpusKeys) -> dict[str, Golden]:
    ctx = corpus_keys.context(REQUEST_ID, FrozenClock(), "http://127.0.0.1:9")
    made = {mode.slug: Golden(ctx.golden_xml(mode)) for mode in Mode}
    key = corpus_keys.sp.key_pem
    made["encrypted-as"] = Golden(serialize(ctx.encrypted(Mode.AS)), key)
    made["encrypted-bs"] = Golden(serialize(ctx.encrypted(Mode.BS)), key)
    return made


@pytest.fixture(scope="module")
def verifier(corpus_keys: CorpusKeys) -> ResponseVerifier:
    """The gate's defaults: neither want_* flag (any one valid signature covering the assertion)."""
    metadata = idp_metadata(corpus_keys.idp)
    gate_settings = GateSettings.load(
        environ={},
        base_url=BASE_URL,
        secret_key=SECRET,
        idp_metadata=metadata,
        sp_key=corpus_keys.sp.key_pem.decode(),
        sp_cert=corpus_keys.sp.cert_pem.decode(),
    )
    return ResponseVerifier(gate_settings, parse_idp_metadata(metadata), corpus_keys.sp.key_pem)


positions = st.integers(min_value=0, max_value=1 << 16)
byte_ops = st.builds(
    ByteOp,
    kind=st.sampled_from(["flip", "insert", "delete", "duplicate"]),
    at=positions,
    size=st.integers(0, 255),
    token=st.integers(0, len(TOKENS) * 31),
)
tree_ops = st.builds(
    TreeOp,
    kind=st.sampled_from(
        ["remove", "duplicate", "move", "text", "attribute", "drop-attribute", "namespace", "wrap"]
    ),
    element=st.integers(0, 500),
    other=st.integers(0, 500),
    value=st.sampled_from(["admin@example.com", "", " ", "#dup", "2099-01-01T00:00:00Z", "x"]),
)
operations = st.lists(st.one_of(byte_ops, tree_ops), min_size=1, max_size=4)


def verify(verifier: ResponseVerifier, value: str) -> Any:
    return verifier.verify(value, expected_request_ids={REQUEST_ID}, now=FrozenClock().now)


@FUZZ
@given(name=st.sampled_from(["as", "rs", "bs", "encrypted-as", "encrypted-bs"]), ops=operations)
def test_mutated_signed_response_is_never_accepted(
    goldens: dict[str, Golden], verifier: ResponseVerifier, name: str, ops: list[Op]
) -> None:
    golden = goldens[name]
    mutated = mutate(golden.xml, ops)
    try:
        login = verify(verifier, b64(mutated))
    except GateError as refusal:
        event(f"refused: {refusal.code}")
        return
    event("accepted")
    # Accepted: every element still carrying a signature is exactly what the IdP signed (only
    # bytes no signature covers may differ: layout, KeyInfo, an unsigned envelope...).
    signed, original = golden.parts(mutated), golden.parts(golden.xml)
    assert signed, "accepted without any signature"
    for name, canonical in signed.items():
        assert canonical == original.get(name), f"a mutated signed {name} was accepted"
    assert login.name_id == ATTACKER and login.in_response_to == REQUEST_ID


@FUZZ
@given(
    value=st.one_of(
        st.text(max_size=400),
        st.binary(max_size=600).map(b64),
        st.tuples(st.sampled_from(["as", "bs", "encrypted-as"]), st.lists(byte_ops, max_size=3)),
    )
)
def test_arbitrary_saml_response_values_raise_only_gate_errors(
    goldens: dict[str, Golden], verifier: ResponseVerifier, value: Any
) -> None:
    if isinstance(value, tuple):  # mutate the base64 text itself, not the XML
        name, ops = value
        value = mutate(b64(goldens[name].xml).encode(), ops).decode("latin-1")
    with contextlib.suppress(GateError):  # anything else fails the test
        verify(verifier, value)


# ------------------------------------------------------------------------------------ ACS
@dataclass
class AcsTarget:
    portal: Any
    gate: SamlGate
    form: bytes
    cookie: bytes


async def call_asgi(app: Any, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> int:
    """One HTTP POST straight through the ASGI interface, the body in the given chunks."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": n < len(body_chunks) - 1}
        for n, chunk in enumerate(body_chunks or [b""])
    ]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/saml/acs",
        "raw_path": b"/saml/acs",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("198.51.100.23", 50123),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    assert len(status) == 1
    return status[0]


@pytest.fixture(scope="module")
def acs(corpus_keys: CorpusKeys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcsTarget]:
    clock = FrozenClock()
    folder = str(tmp_path_factory.mktemp("fuzz-gate"))
    options = gate_options(corpus_keys.idp, corpus_keys.sp, clock, folder)
    gate = SamlGate(make_app(), **options)
    with anyio.from_thread.start_blocking_portal() as portal:

        async def begin() -> tuple[str, str, bytes]:
            from tests.security.acs import remote_client

            async with remote_client(gate) as browser:
                request_id, relay = await start_login(browser)
                cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            return request_id, relay, cookie.encode()

        request_id, relay, cookie = portal.call(begin)
        ctx = corpus_keys.context(request_id, clock, "http://127.0.0.1:9")
        value = b64(ctx.golden_xml(Mode.BS))
        form = f"SAMLResponse={quote(value, safe='')}&RelayState={quote(relay, safe='')}".encode()
        yield AcsTarget(portal, gate, form, cookie)


CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
]


@FUZZ
@given(
    body=st.one_of(st.lists(byte_ops, min_size=1, max_size=4), st.binary(max_size=3000)),
    content_type=st.sampled_from(CONTENT_TYPES),
    splits=st.lists(st.integers(0, 1 << 14), max_size=4),
    declared_length=st.booleans(),
)
def test_acs_never_answers_5xx(
    acs: AcsTarget,
    body: Any,
    content_type: str,
    splits: list[int],
    declared_length: bool,
) -> None:
    data = mutate(acs.form, body) if isinstance(body, list) else body
    cuts = sorted({s % (len(data) + 1) for s in splits})
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    headers = [(b"cookie", acs.cookie)]
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    if declared_length:
        headers.append((b"content-length", str(len(data)).encode()))
    status = acs.portal.call(call_asgi, acs.gate, chunks, headers)
    event(f"HTTP {status}")
    assert status < 500, f"HTTP {status}"


def test_budget_is_documented() -> None:
    """The long-run command in this module's docstring names the variable that is read."""
    assert "SAML_GATE_FUZZ_EXAMPLES=35000" in (__doc__ or "")
    assert Path(__file__).name in (__doc__ or "")
