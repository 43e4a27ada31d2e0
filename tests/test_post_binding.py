"""The HTTP-POST value and the strict parser's helpers, pinned where they were made faster.

``decode_post_value`` decodes the common value (one line of base64) in one strict pass and
falls back to the general rule otherwise: whitespace anywhere is dropped, then only the base64
alphabet with padding at the end is accepted. ``parse_strict`` keeps one parser and its XPath
expressions per thread; ``check_unique_ids`` reads ID-like attributes with one XPath.
"""

from __future__ import annotations

import base64
import binascii
import random
import threading

import pytest
from lxml import etree

from saml_gate.errors import GateError
from saml_gate.saml.bindings import decode_post_value
from saml_gate.saml.xml import check_unique_ids, parse_strict
from tests.support import Harness
from tests.test_acs_refusals import assert_refused

pytestmark = pytest.mark.anyio


def reference_decode(value: str) -> bytes | None:
    """The general rule, as it was before the strict fast path (None: refused)."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def decoded(value: str) -> bytes | None:
    try:
        return decode_post_value(value, 1 << 20)
    except GateError as exc:
        if exc.code == "malformed_response" and "base64" in str(exc):
            return None
        raise


def test_post_value_decodes_as_the_general_rule() -> None:
    rng = random.Random(17)
    alphabet = "AQw/+=9 \n\r\t\xa0é-_"
    values = ["", "QUJD", "QUI=", "QQ==", "QQ=", "QQ===", "QUJDRA==QQ==", "=QUJD", "QUJD\n"]
    values += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(20000)
    ]
    for value in values:
        expected = reference_decode(value)
        if expected is not None and not expected.strip():
            continue  # refused later, as empty
        assert decoded(value) == expected, repr(value)


@pytest.mark.parametrize("layout", ["wrapped", "spaced"])
async def test_wrapped_and_spaced_base64_signs_in(harness: Harness, layout: str) -> None:
    """IdPs that wrap the value (76 columns, CRLF) or indent it are accepted, as before."""
    request_id, relay = await harness.start_login()
    body = harness.response_b64(harness.spec(in_response_to=request_id))
    if layout == "wrapped":
        body = "\r\n".join(body[i : i + 76] for i in range(0, len(body), 76)) + "\r\n"
    else:
        body = " " + " ".join(body[i : i + 100] for i in range(0, len(body), 100)) + "\t"
    r = await harness.post_acs(body, relay)
    assert r.status_code == 303, r.text


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b[:40] + "=" + b[40:],  # padding inside
        lambda b: b.rstrip("=") + "===",  # too much padding
        lambda b: b + "QQ==",  # data after padding (the value ends in "=" or not)
        lambda b: b.replace("+", "-").replace("/", "_") + "-_",  # the URL-safe alphabet
        lambda b: b[:40] + "\x00" + b[40:],
        lambda b: b[:40] + "é" + b[40:],
    ],
)
async def test_malformed_base64_is_refused(harness: Harness, tamper: object) -> None:
    request_id, relay = await harness.start_login()
    body = harness.response_b64(harness.spec(in_response_to=request_id))
    if not body.endswith("="):
        body = base64.b64encode(base64.b64decode(body) + b"\n").decode()
        assert body.endswith("=")
    r = await harness.post_acs(tamper(body), relay)  # type: ignore[operator]
    assert_refused(r, "malformed_response")


def _doc(body: str) -> etree._Element:
    return parse_strict(
        f'<r xmlns:w="urn:w" xmlns:x="urn:x">{body}</r>'.encode(),
        max_depth=10,
        max_elements=100,
        max_attributes=10,
    )


@pytest.mark.parametrize(
    ("body", "duplicate"),
    [
        ('<a ID="1"/><b ID="2"/>', False),
        ('<a ID="1"/><b Id="1"/>', True),
        ('<a id="1"><b ID="1"/></a>', True),
        ('<a w:Id="1"/><b ID="1"/>', True),
        ('<a xml:id="1"/><b x:ID="1"/>', True),
        ('<a w:id="1" x:id="1"/>', True),
        ('<a Name="1"/><b Name="1"/><c ids="1" w:IDs="1" ID="1"/>', False),
        ('<a w:Name="1" ID="1"/>', False),
    ],
)
def test_unique_ids(body: str, duplicate: bool) -> None:
    root = _doc(body)
    if duplicate:
        with pytest.raises(GateError) as caught:
            check_unique_ids(root)
        assert caught.value.code == "duplicate_id"
    else:
        check_unique_ids(root)


def test_unique_ids_looks_below_the_element_only() -> None:
    root = _doc('<a ID="1"><b Id="2"/></a><c ID="2"/>')
    check_unique_ids(root[0])  # its own subtree: 1 and 2
    with pytest.raises(GateError):
        check_unique_ids(root)


def test_parsing_in_many_threads() -> None:
    """Each thread parses with its own parser; answers and refusals are those of one thread."""
    documents = [
        (f'<r ID="i{n}">' + "<a/>" * (n % 7) + "</r>").encode() if n % 3 else b"<r><!--x--></r>"
        for n in range(60)
    ]
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            for n, data in enumerate(documents):
                try:
                    root = parse_strict(data, max_depth=4, max_elements=5, max_attributes=4)
                    outcome = f"ok {len(root)}"
                except GateError as exc:
                    outcome = exc.code
                expected = (
                    "forbidden_xml"
                    if n % 3 == 0
                    else ("response_too_complex" if n % 7 > 4 else f"ok {n % 7}")
                )
                if outcome != expected:
                    failures.append(f"{n}: {outcome} != {expected}")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
