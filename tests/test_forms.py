"""The posted-form reader gives what parse_qs gives, and leaves a named field encoded."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saml_gate.errors import GateError
from saml_gate.saml.bindings import decode_form_value
from saml_gate.web.forms import parse_form, posts_field

FORM_CHARS = st.text(alphabet="ab=&+%2BFfD3dC9é /;~-_.\n", max_size=60)


def reference(body: bytes) -> dict[str, str] | str:
    """What the gate did before: parse_qs, one value per field."""
    try:
        parsed = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return "bad_request"
    if any(len(values) != 1 for values in parsed.values()):
        return "bad_request"
    return {name: values[0] for name, values in parsed.items()}


def ours(body: bytes, encoded: tuple[str, ...] = ()) -> dict[str, str] | str:
    try:
        return parse_form(body, max_fields=20, encoded=encoded)
    except GateError as error:
        return error.code


@settings(max_examples=2000, deadline=None)
@given(FORM_CHARS)
def test_same_fields_as_parse_qs(text: str) -> None:
    body = text.encode("utf-8")
    assert ours(body) == reference(body)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=6))
def test_encoded_field_decodes_to_what_was_posted(fields: dict[str, str]) -> None:
    body = urlencode({**fields, "SAMLResponse": "PHNhbWxwOlJlc3BvbnNlIC8+/+=="}).encode()
    parsed = ours(body, encoded=("SAMLResponse",))
    assert isinstance(parsed, dict)
    assert decode_form_value(parsed.pop("SAMLResponse")) == "PHNhbWxwOlJlc3BvbnNlIC8+/+=="
    fields.pop("SAMLResponse", None)
    assert parsed == reference(urlencode(fields).encode())


def test_a_large_response_stays_encoded_until_the_worker_decodes_it() -> None:
    value = base64.b64encode(random.Random(7).randbytes(200_000)).decode()
    body = urlencode({"SAMLResponse": value, "RelayState": "a b/c"}).encode()
    parsed = parse_form(body, max_fields=20, encoded=("SAMLResponse",))
    assert parsed["RelayState"] == "a b/c"
    assert "%2B" in parsed["SAMLResponse"] or "%2F" in parsed["SAMLResponse"]
    assert decode_form_value(parsed["SAMLResponse"]) == value


@pytest.mark.parametrize(
    "body",
    [b"SAMLResponse=a&SAMLResponse=b", "SAMLResponse=\u00e9".encode(), b"&" * 20],
)
def test_refusals(body: bytes) -> None:
    assert ours(body) == "bad_request"


@settings(max_examples=400, deadline=None)
@given(FORM_CHARS)
def test_posts_field_agrees_with_the_reader(text: str) -> None:
    """Where the reader takes a form, the look at its names says what the reader gives."""
    body = text.encode()
    try:
        fields = parse_form(body, max_fields=20)
    except GateError:
        return
    for name in ("a", "b", "ab", "a b"):
        assert posts_field(body, name, max_fields=20) == bool(fields.get(name)), name


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (b"SAMLResponse=x", True),
        (b"RelayState=%2F&SAML%52esponse=PHNhbWw%2B", True),
        (b"&&SAMLResponse=y&", True),
        (b"SAMLResponse=", False),
        (b"a=1&SAMLResponse=&b=2", False),
        (b"SAMLResponse", False),
        (b"SAMLResponseX=1&samlresponse=1", False),
        (b"SAMLResponse=\xff", True),  # values are never read
        (b"&".join(b"f%d=v" % i for i in range(20)) + b"&SAMLResponse=x", False),
    ],
)
def test_posts_field_reads_names_only(body: bytes, found: bool) -> None:
    assert posts_field(body, "SAMLResponse", max_fields=20) is found
