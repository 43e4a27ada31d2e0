"""``check_subject_address``: the bearer SubjectConfirmationData's Address against the client's
address as the gate trusts it (issue 14, finding 12). Every test goes through the real ACS.

The harness's ASGI client connects from 127.0.0.1, which ``trusted_proxies`` trusts by default,
so ``X-Forwarded-For`` says who the client is, as a reverse proxy on the same host would.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.devidp.response import build_response
from saml_gate.devidp.signing import sign_element
from saml_gate.saml import xmlconst as X
from tests.support import Harness
from tests.test_acs_refusals import assert_refused

pytestmark = pytest.mark.anyio

CLIENT = "203.0.113.7"
T_SCD = f"{{{X.NS_SAML}}}SubjectConfirmationData"


async def post_with_address(
    h: Harness, address: str | None, client: str = CLIENT, **spec: Any
) -> httpx.Response:
    """A sign-in whose signed bearer confirmation names ``address`` (none when None), posted
    through a trusted proxy that reports ``client``."""
    request_id, relay = await h.start_login()
    tree = build_response(h.spec(in_response_to=request_id, **spec))
    if address is not None:
        for scd in tree.iter(T_SCD):
            scd.set("Address", address)
    sign_element(tree.find(f"{{{X.NS_SAML}}}Assertion"), h.idp_keys)
    sign_element(tree, h.idp_keys)
    return await h.client.post(
        "/saml/acs",
        data={"SAMLResponse": base64.b64encode(etree.tostring(tree)).decode(), "RelayState": relay},
        headers={"x-forwarded-for": client},
    )


async def signed_in(h: Harness, r: httpx.Response) -> None:
    assert r.status_code == 303, r.text
    assert (await h.client.get("/saml/session")).status_code == 200


def test_off_by_default_and_read_from_the_environment() -> None:
    assert GateSettings.check_subject_address is False
    loaded = GateSettings.load(
        environ={"SAML_GATE_CHECK_SUBJECT_ADDRESS": "true"},
        base_url="http://127.0.0.1:8000",
        secret_key="x" * 32,
        dev_idp=True,
    )
    assert loaded.check_subject_address is True


@pytest.mark.parametrize("isolation", ["process", "thread"])
async def test_matching_address_passes(make_harness: Any, isolation: str) -> None:
    h = make_harness(check_subject_address=True, verify_isolation=isolation)
    await signed_in(h, await post_with_address(h, CLIENT))


@pytest.mark.parametrize("isolation", ["process", "thread"])
async def test_other_address_is_refused(make_harness: Any, isolation: str) -> None:
    h = make_harness(check_subject_address=True, verify_isolation=isolation)
    r = await post_with_address(h, "198.51.100.9")
    assert_refused(r, "subject_address_mismatch")
    assert (await h.client.get("/saml/session")).status_code == 401


async def test_setting_off_ignores_a_mismatch(harness: Harness) -> None:
    await signed_in(harness, await post_with_address(harness, "198.51.100.9"))


async def test_absent_address_passes(make_harness: Any) -> None:
    h = make_harness(check_subject_address=True)
    await signed_in(h, await post_with_address(h, None))


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped IPv6 is the IPv4 address
        ("203.0.113.7", "::ffff:203.0.113.7"),
        ("2001:db8:0:0::1", "2001:DB8::1"),  # the same IPv6 address, written differently
    ],
)
async def test_addresses_compare_as_ip_addresses(
    make_harness: Any, address: str, client: str
) -> None:
    h = make_harness(check_subject_address=True)
    await signed_in(h, await post_with_address(h, address, client=client))


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("2001:db8::1", "203.0.113.7"),  # the IdP saw IPv6, the gate sees IPv4
        ("203.0.113.70", "203.0.113.7"),
        ("not-an-address", "203.0.113.7"),
        ("", "203.0.113.7"),
    ],
)
async def test_different_or_unreadable_addresses_are_refused(
    make_harness: Any, address: str, client: str
) -> None:
    h = make_harness(check_subject_address=True)
    assert_refused(await post_with_address(h, address, client=client), "subject_address_mismatch")


async def test_only_a_trusted_proxy_says_who_the_client_is(make_harness: Any) -> None:
    """With no trusted proxies, X-Forwarded-For is the client's own claim: the address compared
    is the peer's (127.0.0.1), so naming the Address in the header does not help."""
    h = make_harness(check_subject_address=True, trusted_proxies=["10.0.0.1"])
    assert_refused(await post_with_address(h, CLIENT), "subject_address_mismatch")
    await signed_in(h, await post_with_address(h, "127.0.0.1"))
