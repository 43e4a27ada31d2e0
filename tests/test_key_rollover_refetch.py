"""An IdP key rollover with a metadata URL loses no sign-in: on ``unknown_signing_certificate``
the gate refetches the metadata at once (at most once a minute) and verifies the same Response
again with the new key. The hint of the refusal fits where the metadata comes from.

Through the real ACS, against a real loopback metadata server whose key changes.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.support import BASE_URL, FrozenClock, Harness, gate_options, make_app
from tests.test_idp_metadata_url import MetadataServer, harness_for, metadata_with

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> Iterator[MetadataServer]:
    s = MetadataServer()
    yield s
    s.stop()


Start = Callable[[str], Harness]


@pytest.fixture
def start(
    server: MetadataServer, idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp_path: Path
) -> Start:
    """``start(verify_isolation)``: a gate whose idp_metadata is the server's URL, which
    publishes ``idp_keys`` (the IdP's current key; ``attacker_keys`` plays its next one)."""

    def make(isolation: str) -> Harness:
        server.body = metadata_with(idp_keys)
        return harness_for(
            server.url, idp_keys, sp_keys, clock, tmp_path, verify_isolation=isolation
        )

    return make


async def sign_in(h: Harness, keys: KeyPair) -> httpx.Response:
    h.client.cookies.clear()
    request_id, relay = await h.start_login()
    return await h.post_acs(h.response_b64(h.spec(in_response_to=request_id), keys=keys), relay)


@pytest.mark.parametrize("isolation", ["thread", "process"])
async def test_a_rolled_over_key_is_fetched_and_the_same_response_signs_in(
    server: MetadataServer,
    start: Start,
    idp_keys: KeyPair,
    attacker_keys: KeyPair,
    caplog: pytest.LogCaptureFixture,
    isolation: str,
) -> None:
    old, new = idp_keys, attacker_keys
    h = start(isolation)
    assert (await sign_in(h, old)).status_code == 303
    hits = server.hits

    server.body = metadata_with(new)  # the IdP rolled its key over; no refresh is due yet
    caplog.set_level(logging.INFO, logger="saml_gate")
    r = await sign_in(h, new)
    assert r.status_code == 303, r.text  # the first Response with the new key signs in
    assert r.headers["location"] == "/private/page"
    assert server.hits == hits + 1  # one refetch, at once
    assert h.gate.core.saml.idp.signing_certs == (new.cert_pem,)
    assert "refetching" in caplog.text and "verifying the Response again" in caplog.text
    assert (await sign_in(h, new)).status_code == 303
    assert server.hits == hits + 1  # the key is known now: no more fetches
    await h.client.aclose()


async def test_refetches_are_rate_limited_and_the_hint_says_the_key_is_still_unknown(
    server: MetadataServer,
    start: Start,
    idp_keys: KeyPair,
    attacker_keys: KeyPair,
    clock: FrozenClock,
) -> None:
    h = start("thread")
    await h.gate.start()
    hits = server.hits
    for _ in range(3):  # forged Responses cannot make the gate hammer the IdP
        r = await sign_in(h, attacker_keys)
        assert r.status_code == 400
        assert "unknown_signing_certificate" in r.text
    assert server.hits == hits + 1
    page = html.unescape(r.text)
    assert "refetched the metadata" in page and "still unknown" in page
    assert "Replace the metadata" not in page

    clock.advance(61)  # a minute later, the next unknown key may refetch again
    assert (await sign_in(h, attacker_keys)).status_code == 400
    assert server.hits == hits + 2
    assert (await sign_in(h, idp_keys)).status_code == 303  # the known key is unaffected
    await h.client.aclose()


async def test_metadata_given_as_xml_is_not_refetched_and_the_hint_says_replace_it(
    idp_keys: KeyPair, attacker_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp_path: Path
) -> None:
    gate = SamlGate(make_app(), **gate_options(idp_keys, sp_keys, clock, str(tmp_path)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
    h = Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)
    r = await sign_in(h, attacker_keys)
    assert r.status_code == 400 and "unknown_signing_certificate" in r.text
    page = html.unescape(r.text)
    assert "Replace the metadata" in page and "refetched" not in page
    await client.aclose()


async def test_concurrent_sign_ins_with_the_new_key_share_one_refetch(
    server: MetadataServer, start: Start, attacker_keys: KeyPair
) -> None:
    h = start("thread")
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gate), base_url=BASE_URL)
    second = replace(h, client=other)
    hits = server.hits
    server.body = metadata_with(attacker_keys)  # the rollover, as the IdP publishes it
    answers = await asyncio.gather(sign_in(h, attacker_keys), sign_in(second, attacker_keys))
    assert [r.status_code for r in answers] == [303, 303]
    assert server.hits == hits + 1
    await h.client.aclose()
    await other.aclose()
