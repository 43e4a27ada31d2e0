"""Three real Okta responses (see fixtures/okta/README.md) through the real ACS endpoint."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from saml_gate import SamlGate
from tests.support import FrozenClock, make_app

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "okta"
CASES = {
    "TestSPCanHandleOktaSignedResponseEncryptedAssertion": (
        "2020-03-03T19:24:28",
        "id-a7364d1e4432aa9085a7a8bd824ea2fa8fa8f684",
    ),
    "TestSPCanHandleOktaResponseEncryptedSignedAssertion": (
        "2020-03-03T19:31:55",
        "id-6d976cdde8e76df5df0a8ff58148fc0b7ec6796d",
    ),
    "TestSPCanHandleOktaResponseEncryptedAssertionBothSigned": (
        "2020-03-03T19:40:54",
        "id-953d4cab69ff475c5901d12e585b0bb15a7b85fe",
    ),
}


class OktaCase:
    def __init__(self, stem: str, tmp: Path, **overrides: object) -> None:
        now, self.request_id = CASES[stem]
        self.clock = FrozenClock(datetime.fromisoformat(now).replace(tzinfo=UTC).timestamp())
        options: dict[str, object] = dict(
            idp_metadata=str(FIXTURES / f"{stem}_idp_metadata.xml"),
            base_url="http://localhost:8000",
            secret_key="okta-fixture-secret-0123456789abcdef",
            sp_key=str(FIXTURES / "sp_key.pem"),
            sp_cert=str(FIXTURES / "sp_cert.pem"),
            clock=self.clock,
            state_dir=str(tmp),
        )
        options.update(overrides)
        self.gate = SamlGate(make_app(), **options)  # type: ignore[arg-type]
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.gate), base_url="http://localhost:8000"
        )
        self.response = (FIXTURES / f"{stem}_response.b64").read_text().strip()
        # The browser that sent AuthnRequest `request_id` holds its pending cookie.
        relay = self.gate.core.relay
        header = relay.pending_cookie("k", self.request_id, "/private/okta").decode()
        name, value = header.split(";")[0].split("=", 1)
        self.client.cookies.set(name, value, path="/saml/acs")

    async def post(self, response: str | None = None) -> httpx.Response:
        return await self.client.post("/saml/acs", data={"SAMLResponse": response or self.response})


@pytest.fixture(params=sorted(CASES))
async def okta(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OktaCase]:
    case = OktaCase(request.param, tmp_path)
    yield case
    await case.client.aclose()


async def test_real_okta_response_signs_the_user_in(okta: OktaCase) -> None:
    r = await okta.post()
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/private/okta"
    me = await okta.client.get("/saml/session")
    assert me.status_code == 200
    assert me.json()["name_id"] == "testuser@testrsc.com"
    assert me.json()["email"] == "testuser@testrsc.com"


async def test_rejected_ten_minutes_later(okta: OktaCase) -> None:
    okta.clock.advance(600)
    r = await okta.post()
    assert r.status_code == 400 and "expired" in r.text
    assert "saml_gate_session" not in r.headers.get("set-cookie", "")


async def test_rejected_for_another_sp_entity_id(tmp_path: Path) -> None:
    stem = sorted(CASES)[0]
    case = OktaCase(stem, tmp_path, entity_id="http://localhost:8000/other-sp")
    r = await case.post()
    assert r.status_code == 400 and "wrong_audience" in r.text
    assert "set-cookie" not in r.headers
    await case.client.aclose()


async def test_rejected_with_a_tampered_byte(okta: OktaCase) -> None:
    xml = base64.b64decode(okta.response)
    # Flip one character inside the signed content (the Destination is in the Response).
    tampered = xml.replace(b"http://localhost:8000/saml/acs", b"http://localhost:8000/saml/acz", 1)
    assert tampered != xml
    r = await okta.post(base64.b64encode(tampered).decode())
    assert r.status_code == 400
    assert "set-cookie" not in r.headers


async def test_rejected_with_a_tampered_ciphertext_byte(okta: OktaCase) -> None:
    xml = base64.b64decode(okta.response)
    start = xml.index(b"<xenc:CipherValue>", xml.index(b"EncryptedData")) + 40
    flipped = b"A" if xml[start : start + 1] != b"A" else b"B"
    tampered = xml[:start] + flipped + xml[start + 1 :]
    r = await okta.post(base64.b64encode(tampered).decode())
    assert r.status_code == 400
    assert "set-cookie" not in r.headers


async def test_rejected_without_the_pending_request(okta: OktaCase) -> None:
    okta.client.cookies.clear()
    r = await okta.post()
    assert r.status_code == 400 and "unknown_request" in r.text


async def test_replay_of_a_real_response_is_refused(okta: OktaCase) -> None:
    assert (await okta.post()).status_code == 303
    again = await okta.post()
    assert again.status_code == 400
