"""Re-assertion while signed in (``reassert_interval``), through the gate's real endpoints.

The test kit plays the IdP (``saml_idp.reassert``: it answers the gate's passive AuthnRequest
for a person, with new groups, or with NoPassive); the development IdP and SimpleSAMLphp do the
same in tests/test_devidp_passive.py and tests/interop/test_reassertion_interop.py. A page
load past the interval goes to the IdP without a prompt; API calls get 401
``reassertion_required``; WebSockets are refused (and an open one is closed at the deadline:
tests/test_websocket_session_end.py); forward-auth's answers lead to ``/login``, which asks
passively too (tests/test_mode_parity.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from saml_gate import Rule, SamlGate
from saml_gate.testing import NAVIGATION, SamlTestIdp, SignInFailed, gate_error_code
from tests.support import KitSite, decode_redirect_request, make_app

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
INTERVAL = 900.0
ANN, BOB = "ann@example.com", "bob@example.com"
RULES = [Rule("/private/admin/", groups=["admins"])]


class Site(KitSite):
    """A gate that re-asserts every ``INTERVAL`` seconds, with /private/admin/ for admins."""

    def __init__(self, saml_idp: SamlTestIdp, **options: Any) -> None:
        super().__init__(
            saml_idp, **{"reassert_interval": INTERVAL, "access_rules": RULES, **options}
        )

    async def signed_in(self, email: str = ANN, **person: Any) -> httpx.AsyncClient:
        return await super().signed_in(email, **person)


@pytest.fixture
async def site(saml_idp: SamlTestIdp) -> Any:
    made = Site(saml_idp)
    yield made
    await made.close()


async def api(client: httpx.AsyncClient, path: str = "/private/x") -> httpx.Response:
    return await client.get(path, headers=JSON)


async def test_within_the_interval_nothing_is_asked(site: Site) -> None:
    ann = await site.signed_in(groups=["admins"])
    # Well inside: the clock also runs on in real time while a loaded machine signs in.
    site.idp.clock.advance(INTERVAL - 60)
    assert (await api(ann, "/private/admin/x")).status_code == 200
    page = await ann.get("/private/admin/x", headers=NAVIGATION)
    assert page.status_code == 200


async def test_past_the_interval_an_api_call_gets_401_with_the_login_url(site: Site) -> None:
    ann = await site.signed_in()
    site.idp.clock.advance(INTERVAL + 1)
    answer = await api(ann)
    assert (answer.status_code, gate_error_code(answer)) == (401, "reassertion_required")
    assert answer.json()["login_url"] == "http://testserver/saml/login?return_to=%2Fprivate%2Fx"
    assert "saml_gate_session=" not in answer.headers.get("set-cookie", "")  # not ended


async def test_a_page_load_asks_the_idp_without_a_prompt(site: Site) -> None:
    ann = await site.signed_in()
    site.idp.clock.advance(INTERVAL + 1)
    page = await ann.get("/private/x", headers=NAVIGATION)
    assert page.status_code == 303
    request, _ = decode_redirect_request(page.headers["location"])
    assert request.get("IsPassive") == "true"
    assert request.get("ForceAuthn") is None  # never both: ForceAuthn asks for a prompt


async def test_success_brings_the_new_groups_and_the_policy_follows(site: Site) -> None:
    """A person removed from admins at the IdP loses /admin/ at the next re-assertion."""
    ann = await site.signed_in(groups=["admins", "users"])
    before = (await ann.get("/saml/session", headers=JSON)).json()
    assert (await api(ann, "/private/admin/x")).status_code == 200
    site.idp.clock.advance(INTERVAL + 1)
    answer = await site.idp.reassert_async(
        ann, path="/private/admin/x", email=ANN, groups=["users"]
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/private/admin/x")
    denied = await api(ann, "/private/admin/x")
    assert (denied.status_code, gate_error_code(denied)) == (403, "forbidden")
    mine = await api(ann)
    assert (mine.status_code, mine.json()["groups"]) == (200, ["users"])
    after = (await ann.get("/saml/session", headers=JSON)).json()
    assert after["expires_at"] > before["expires_at"]  # the expiry is refreshed too
    assert after["asserted_at"] > before["asserted_at"]
    [event] = await site.events_of("reassertion")
    assert (event.outcome, event.name_id, event.groups) == ("success", ANN, ("users",))


async def test_added_groups_open_what_they_allow(site: Site) -> None:
    ann = await site.signed_in(groups=["users"])
    assert (await api(ann, "/private/admin/x")).status_code == 403
    site.idp.clock.advance(INTERVAL + 1)
    await site.idp.reassert_async(ann, path="/private/x", email=ANN, groups=["admins"])
    assert (await api(ann, "/private/admin/x")).status_code == 200


async def test_the_replaced_session_is_not_listed_and_nothing_is_revoked(site: Site) -> None:
    ann = await site.signed_in()
    site.idp.clock.advance(INTERVAL + 1)
    await site.idp.reassert_async(ann, path="/private/x", email=ANN)
    live = await site.gate.core.revocations.live_sessions(site.idp.clock())
    assert [r.name_id for r in live] == [ANN]
    assert site.gate.core.revocations.view.revoked == {}


async def test_no_passive_ends_every_session_of_that_person_and_signs_in_again(
    site: Site,
) -> None:
    laptop, phone, bob = await site.signed_in(), await site.signed_in(), await site.signed_in(BOB)
    site.idp.clock.advance(INTERVAL + 1)
    answer = await site.idp.reassert_async(laptop, path="/private/x?a=1", no_passive=True)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/saml/login"
    assert parse_qs(target.query) == {"return_to": ["/private/x?a=1"]}
    assert "saml_gate_session=;" in answer.headers["set-cookie"]  # this browser's cleared
    restart = await laptop.get(answer.headers["location"], headers=NAVIGATION)
    request, _ = decode_redirect_request(restart.headers["location"])
    assert request.get("IsPassive") is None  # a normal sign-in now
    other = await api(phone)  # the person's other session is revoked, not just due
    assert (other.status_code, gate_error_code(other)) == (401, "not_authenticated")
    await site.idp.reassert_async(bob, path="/private/x", email=BOB)  # others untouched
    assert (await api(bob)).status_code == 200
    [event, bobs] = await site.events_of("reassertion")
    assert (bobs.outcome, bobs.name_id) == ("success", BOB)
    assert (event.outcome, event.error_code, event.name_id) == ("failure", "idp_status", ANN)
    assert event.extra["sessions"] == 2


async def test_any_failed_answer_ends_the_session(site: Site) -> None:
    ann = await site.signed_in()
    site.idp.clock.advance(INTERVAL + 1)
    page = await ann.get("/private/x", headers=NAVIGATION)
    _, relay_state = decode_redirect_request(page.headers["location"])
    form = {"SAMLResponse": "bm90IGEgcmVzcG9uc2U=", "RelayState": relay_state or ""}
    answer = await ann.post("/saml/acs", data=form)
    assert answer.status_code == 303 and "/saml/login?" in answer.headers["location"]
    assert gate_error_code(await api(ann)) == "not_authenticated"


async def test_a_failure_that_is_not_the_passive_answer_ends_nothing(site: Site) -> None:
    """A Response posted without the passive sign-in's RelayState is refused as usual."""
    ann = await site.signed_in()
    site.idp.clock.advance(INTERVAL + 1)
    await ann.get("/private/x", headers=NAVIGATION)  # the passive sign-in starts
    answer = await ann.post("/saml/acs", data={"SAMLResponse": "bm90IGEgcmVzcG9uc2U="})
    assert answer.status_code == 400
    assert gate_error_code(await api(ann)) == "reassertion_required"  # still due, not ended


async def test_login_asks_passively_for_a_due_session_and_normally_otherwise(
    site: Site,
) -> None:
    """Forward-auth sends page loads to /login: it re-asserts a due session too."""
    ann = await site.signed_in()
    fresh = await ann.get("/saml/login?return_to=/private/x", headers=NAVIGATION)
    assert decode_redirect_request(fresh.headers["location"])[0].get("IsPassive") is None
    site.idp.clock.advance(INTERVAL + 1)
    due = await ann.get("/saml/login?return_to=/private/x", headers=NAVIGATION)
    assert decode_redirect_request(due.headers["location"])[0].get("IsPassive") == "true"


async def test_the_kit_says_when_the_gate_does_not_ask_passively(site: Site) -> None:
    ann = await site.signed_in()
    with pytest.raises(SignInFailed):
        await site.idp.reassert_async(ann, path="/private/x")  # not due yet: the page loads


async def test_a_websocket_handshake_past_the_interval_is_refused(saml_idp: SamlTestIdp) -> None:
    from starlette.testclient import TestClient, WebSocketDenialResponse

    gate = SamlGate(make_app(), **saml_idp.gate_options(reassert_interval=INTERVAL))
    with TestClient(gate) as client:
        saml_idp.sign_in(client)
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"user": "user@example.com"}
        saml_idp.clock.advance(INTERVAL + 1)
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/ws"):
            pass
        assert refused.value.status_code == 401
        assert refused.value.json() == {"error": "reassertion_required"}


def test_reassert_interval_must_be_shorter_than_a_session(saml_idp: SamlTestIdp) -> None:
    from saml_gate.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        SamlGate(make_app(), **saml_idp.gate_options(reassert_interval=8 * 3600))
    assert caught.value.setting == "reassert_interval"


async def test_a_step_up_page_re_asserts_first_then_asks_for_the_step_up(
    saml_idp: SamlTestIdp,
) -> None:
    """A passive answer cannot authenticate anyone again: the page asks for ForceAuthn next."""
    site = Site(saml_idp, access_rules=[Rule("/private/fresh/", max_authn_age=600)])
    try:
        ann = await site.signed_in()
        saml_idp.clock.advance(INTERVAL + 1)
        back = await saml_idp.reassert_async(
            ann, path="/private/fresh/x", email=ANN, authn_age=INTERVAL
        )
        assert (back.status_code, back.headers["location"]) == (303, "/private/fresh/x")
        page = await ann.get("/private/fresh/x", headers=NAVIGATION)
        request, _ = decode_redirect_request(page.headers["location"])
        assert (request.get("ForceAuthn"), request.get("IsPassive")) == ("true", None)
    finally:
        await site.close()
