"""Attributes and namespace declarations are capped like elements (issue 14, finding 11).

An element with 10,000 attributes in unsigned Extensions used to be accepted (the ID check then
spent 180 ms on it), and 5,000 namespace declarations above 5,000 elements, cheap to parse, cost
libxmlsec's canonicalization 100 ms. ``max_xml_attributes`` (default 32) caps the attributes on
one element and the namespace declarations in scope at one element; the whole message may hold
``max_xml_elements`` attributes and as many declarations. Every limit is shown exact at the ACS:
at the limit the sign-in works, one over it is refused with ``response_too_complex`` (413).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.devidp.response import build_response
from saml_gate.devidp.signing import encrypt_assertion, sign_element
from saml_gate.errors import ConfigError
from saml_gate.saml import xmlconst as X
from tests.support import BASE_URL, SECRET, Harness
from tests.test_acs_refusals import assert_refused

pytestmark = pytest.mark.anyio


def golden(h: Harness, request_id: str) -> etree._Element:
    """An assertion-signed Response: Extensions added to it stay outside every signature."""
    xml = base64.b64decode(h.response_b64(h.spec(in_response_to=request_id), sign_response=False))
    return etree.fromstring(xml)


def add_extensions(response: etree._Element) -> etree._Element:
    extensions = etree.Element(f"{{{X.NS_SAMLP}}}Extensions", nsmap={"x": "urn:x"})
    response.find(f"{{{X.NS_SAML}}}Issuer").addnext(extensions)  # type: ignore[union-attr]
    return extensions


def attribute_count(response: etree._Element) -> int:
    return sum(len(e.attrib) for e in response.iter() if isinstance(e.tag, str))


async def post(h: Harness, response: etree._Element, relay: str) -> httpx.Response:
    return await h.post_acs(base64.b64encode(etree.tostring(response)).decode(), relay)


async def check_exact(h: Harness, build: Any) -> None:
    """``build(response, extra)`` edits a golden; extra=1 must be refused, extra=0 sign in."""
    for extra, accepted in ((1, False), (0, True)):
        request_id, relay = await h.start_login()
        response = golden(h, request_id)
        build(response, extra)
        r = await post(h, response, relay)
        if accepted:
            assert r.status_code == 303, r.text
        else:
            assert_refused(r, "response_too_complex", 413)


@pytest.mark.parametrize("limit", [32, 8])
async def test_attributes_on_one_element(make_harness: Any, limit: int) -> None:
    h = make_harness(**({} if limit == 32 else {"max_xml_attributes": limit}))

    def build(response: etree._Element, extra: int) -> None:
        element = etree.SubElement(add_extensions(response), "{urn:x}e")
        for i in range(limit + extra):
            element.set(f"a{i}", "x")

    await check_exact(h, build)


async def test_attributes_in_the_whole_message(make_harness: Any) -> None:
    """max_xml_elements attributes in all, each element under max_xml_attributes."""
    h = make_harness(max_xml_elements=200)

    def build(response: etree._Element, extra: int) -> None:
        extensions = add_extensions(response)
        missing = 200 - attribute_count(response) + extra
        while missing > 0:
            element = etree.SubElement(extensions, "{urn:x}e")
            for i in range(min(missing, 20)):
                element.set(f"a{i}", "x")
            missing -= 20

    await check_exact(h, build)


async def test_namespace_declarations_in_scope(harness: Harness) -> None:
    """32 declarations in scope at one element (the Response's, the Extensions', its own)."""

    def build(response: etree._Element, extra: int) -> None:
        extensions = add_extensions(response)
        own = 32 - len(response.nsmap) - 1 + extra
        names = {f"p{i}": f"urn:p:{i}" for i in range(own)}
        etree.SubElement(extensions, "{urn:x}e", nsmap=names)

    await check_exact(harness, build)


async def test_namespace_declarations_in_the_whole_message(make_harness: Any) -> None:
    """max_xml_elements declarations in all, counted here in the bytes as sent."""
    h = make_harness(max_xml_elements=300)

    def build(response: etree._Element, extra: int) -> None:
        extensions = add_extensions(response)
        missing = 300 - etree.tostring(response).count(b"xmlns") + extra
        while missing > 0:
            names = {f"p{i}": f"urn:p:{i}" for i in range(min(missing, 4))}
            etree.SubElement(extensions, "{urn:x}e", nsmap=names)
            missing -= 4

    await check_exact(h, build)


async def test_limits_apply_inside_an_encrypted_assertion(make_harness: Any) -> None:
    """The decrypted Assertion is parsed again under the same limits."""
    h = make_harness(max_xml_attributes=8)
    request_id, relay = await h.start_login()
    # The golden's NameID carries 1 attribute; the AttributeValues 1 (xsi:type) and 2
    # declarations, in scope with the Assertion's: all within 8. An Attribute with 9 is not.
    spec = h.spec(in_response_to=request_id)
    xml = base64.b64encode(etree.tostring(_with_wide_attribute(spec, h, attributes=9))).decode()
    assert_refused(await h.post_acs(xml, relay), "response_too_complex", 413)
    request_id, relay = await h.start_login()
    spec = h.spec(in_response_to=request_id)
    xml = base64.b64encode(etree.tostring(_with_wide_attribute(spec, h, attributes=8))).decode()
    assert (await h.post_acs(xml, relay)).status_code == 303


def _with_wide_attribute(spec: Any, h: Harness, *, attributes: int) -> etree._Element:
    response = build_response(spec)
    assertion = response.find(f"{{{X.NS_SAML}}}Assertion")
    assert assertion is not None
    attribute = assertion.find(f".//{{{X.NS_SAML}}}Attribute")
    assert attribute is not None
    for i in range(attributes - len(attribute.attrib)):
        attribute.set(f"{{urn:x}}extra{i}", "x")  # the schema allows ##other attributes
    sign_element(assertion, h.idp_keys, inclusive_prefixes=("xs",))
    encrypt_assertion(response, h.sp_keys.cert_pem)
    sign_element(response, h.idp_keys)
    return response


async def test_logout_messages_have_the_same_limits(harness: Harness) -> None:
    """/saml/slo parses with the verifier's parser: refused before any signature work."""
    request = etree.Element(
        f"{{{X.NS_SAMLP}}}LogoutRequest", nsmap={"samlp": X.NS_SAMLP, "saml": X.NS_SAML}
    )
    for i in range(40):
        request.set(f"a{i}", "x")
    value = base64.b64encode(etree.tostring(request)).decode()
    r = await harness.client.post("/saml/slo", data={"SAMLRequest": value})
    assert_refused(r, "response_too_complex", 413)


@pytest.mark.parametrize("value", [7, 1025])
def test_max_xml_attributes_is_validated(value: int) -> None:
    with pytest.raises(ConfigError) as refused:
        GateSettings.load(
            environ={},
            base_url=BASE_URL,
            secret_key=SECRET,
            dev_idp=True,
            max_xml_attributes=value,
        )
    assert refused.value.setting == "max_xml_attributes"


def test_max_xml_attributes_default_and_environment() -> None:
    def load(environ: dict[str, str]) -> GateSettings:
        return GateSettings.load(
            environ=environ, base_url=BASE_URL, secret_key=SECRET, dev_idp=True
        )

    assert load({}).max_xml_attributes == 32
    assert load({"SAML_GATE_MAX_XML_ATTRIBUTES": "64"}).max_xml_attributes == 64
