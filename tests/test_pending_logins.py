"""Pending sign-ins: at most a few per browser, and only a page navigation starts one.

Through the real endpoints. A browser sends the ACS every cookie whose path covers it; on http
loopback that includes the Secure ones (Chromium and Firefox treat loopback as secure), which
httpx does not send over http, so the header a browser would send is rebuilt from the jar.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from saml_gate.session.relay import LONG_SLOT, SLOTS
from tests.support import SECRET, Harness, decode_redirect_request
from tests.test_acs_refusals import assert_refused

pytestmark = pytest.mark.anyio

HTTPS = "https://acme.ngrok.app"
HTML = {"accept": "text/html"}
PENDING = "saml_gate_req_"
TURN = "saml_gate_reqslot"


@pytest.fixture(params=["https", "http-loopback"])
async def browser(request: pytest.FixtureRequest, make_harness: Any) -> AsyncIterator[Harness]:
    """A harness whose client talks to the gate at its base_url: https, or http on loopback."""
    if request.param == "http-loopback":
        yield make_harness()
        return
    h: Harness = make_harness(base_url=HTTPS)
    h.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gate), base_url=HTTPS)
    h.defaults = {"destination": HTTPS + "/saml/acs", "audience": HTTPS + "/saml/metadata"}
    yield h
    await h.client.aclose()


def loopback(h: Harness) -> bool:
    return not h.gate.core.settings.is_https


def pending_names(client: httpx.AsyncClient) -> list[str]:
    return sorted(c.name for c in client.cookies.jar if c.name.startswith(PENDING))


def slot_names(*slots: str, twins: bool) -> list[str]:
    names = [PENDING + s for s in slots]
    return sorted(names + [n + ".lax" for n in names] if twins else names)


def acs_cookie_header(client: httpx.AsyncClient) -> str:
    """The Cookie header a browser holding this jar sends with the IdP's POST to the ACS."""
    sent = [c for c in client.cookies.jar if "/saml/acs".startswith(c.path)]
    return "; ".join(f"{c.name}={c.value}" for c in sent)


async def finish(h: Harness, started: tuple[str, str]) -> httpx.Response:
    """The IdP's answer to a started sign-in, posted by this browser with its RelayState."""
    request_id, relay = started
    return await h.post_acs(h.response_b64(h.spec(in_response_to=request_id)), relay)


def long_path(i: int, length: int = 2040) -> str:
    """A return path that takes the long slot: incompressible, up to MAX_RETURN_PATH."""
    return f"/private/long{i}?q=" + secrets.token_urlsafe(length)[: length - 20]


async def test_200_visits_keep_four_pending_sign_ins_and_the_newest_four_complete(
    browser: Harness,
) -> None:
    started = [await browser.start_login(f"/private/page{i}?tab={i}") for i in range(200)]
    assert pending_names(browser.client) == slot_names(*SLOTS, twins=loopback(browser))
    # Was 200 cookies (20 KB on https, 40 KB with the loopback twins); now four (or eight).
    header = acs_cookie_header(browser.client)
    assert len(header) <= (1300 if loopback(browser) else 650), header
    for older in started[194:196]:  # overwritten by the four newest: refused as before
        assert_refused(await finish(browser, older), "unknown_request")
    for i, newest in enumerate(started[196:], start=196):
        r = await finish(browser, newest)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/private/page{i}?tab={i}"
        assert len(r.request.headers.get("cookie", "")) <= len(header) + 1500  # + the session


async def test_long_return_paths_cannot_add_up_past_a_proxy_header_limit(
    browser: Harness,
) -> None:
    """200 visits, alternating the longest paths of either kind (the worst case)."""
    started = []
    for i in range(200):
        short = f"/private/short{i}?q=" + secrets.token_urlsafe(300)[:370]  # just under 400 B
        path = long_path(i) if i % 2 else short
        started.append((path[: path.index("?")], await browser.start_login(path)))
    names = pending_names(browser.client)
    assert names == slot_names(*SLOTS, LONG_SLOT, twins=loopback(browser))
    header = acs_cookie_header(browser.client)
    # nginx refuses a Cookie line over 8 KB by default: https stays well under it. (Measured
    # 4.4 KB and 8.9 KB; four long paths alone would have made 11.3 KB and 22.6 KB.)
    assert len(header) <= (9200 if loopback(browser) else 4600), len(header)
    older_long, newest_long = started[197], started[199]
    assert_refused(await finish(browser, older_long[1]), "unknown_request")
    for prefix, sign_in in (newest_long, *started[192:199:2]):  # the long one, four short ones
        r = await finish(browser, sign_in)
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(prefix + "?q=")


async def test_interleaved_tabs_each_complete(browser: Harness) -> None:
    a = await browser.start_login("/private/a")
    long = await browser.start_login(long_path(0))
    b = await browser.start_login("/private/b")
    c = await browser.start_login("/private/c")
    # A Response for one tab with the RelayState of another is refused: the binding is per
    # sign-in, not per browser.
    crossed = await browser.post_acs(browser.response_b64(browser.spec(in_response_to=a[0])), b[1])
    assert_refused(crossed, "bad_relay_state")
    for sign_in, path in ((b, "/private/b"), (long, "/private/long0"), (a, "/private/a")):
        r = await finish(browser, sign_in)
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(path)
        # the answered sign-in's cookie goes (both of them on loopback)
        cleared = [x for x in r.headers.get_list("set-cookie") if x.startswith(PENDING)]
        assert len(cleared) == (2 if loopback(browser) else 1)
        assert all("Max-Age=0" in x for x in cleared)
    assert (await finish(browser, c)).status_code == 303
    assert pending_names(browser.client) == []


async def test_a_newer_long_path_replaces_the_older(harness: Harness) -> None:
    first = await harness.start_login(long_path(1))
    second = await harness.start_login(long_path(2))
    assert_refused(await finish(harness, first), "unknown_request")
    assert (await finish(harness, second)).status_code == 303


async def test_a_return_path_too_long_to_keep_loses_its_query(harness: Harness) -> None:
    """It used to be stored anyway and the sign-in refused at the ACS (unknown_request)."""
    r = await finish(harness, await harness.start_login(long_path(3, length=4000)))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/private/long3"


async def test_loopback_twin_alone_completes_and_is_cleared(harness: Harness) -> None:
    """On http loopback httpx, like a browser that refuses Secure cookies on http, sends only
    the Lax twins; they alone complete the sign-in, and both cookies of the slot are cleared."""
    started = [await harness.start_login(f"/private/t{i}") for i in range(10)]
    assert pending_names(harness.client) == slot_names(*SLOTS, twins=True)
    slot = str(harness.gate.core.relay.relay_key(started[-1][1]))[0]
    r = await finish(harness, started[-1])
    assert r.status_code == 303, r.text
    sent = r.request.headers["cookie"]
    assert f"{PENDING}{slot}.lax=" in sent and f"{PENDING}{slot}=" not in sent
    cleared = sorted(x.split("=")[0] for x in r.headers.get_list("set-cookie") if "Max-Age=0" in x)
    assert cleared == slot_names(slot, twins=True)
    assert pending_names(harness.client) == slot_names(*(set(SLOTS) - {slot}), twins=True)


async def test_a_cookie_moved_to_another_slot_is_not_honoured(harness: Harness) -> None:
    """A pending cookie is only read under the slot its key names (so that clearing it at the
    ACS clears what was read)."""
    request_id, relay = await harness.start_login()
    jar = harness.client.cookies
    (name,) = {c.name.removesuffix(".lax") for c in jar.jar if c.name.startswith(PENDING)}
    value = str(jar.get(name + ".lax"))
    jar.clear()
    other = next(s for s in SLOTS if PENDING + s != name)
    jar.set(PENDING + other + ".lax", value, path="/saml/acs")
    assert_refused(await finish(harness, (request_id, relay)), "unknown_request")
    jar.set(name + ".lax", value, path="/saml/acs")  # where it belongs: accepted
    assert (await finish(harness, (request_id, relay))).status_code == 303


@pytest.mark.parametrize("turn", ["9", "", "0; x", "L", "01"])
async def test_a_turn_cookie_the_gate_did_not_write_still_starts_a_sign_in(
    harness: Harness, turn: str
) -> None:
    harness.client.cookies.set(TURN, turn)
    started = await harness.start_login("/private/x")
    assert [n for n in pending_names(harness.client) if not n.endswith(".lax")] in (
        [PENDING + s] for s in SLOTS
    )
    assert (await finish(harness, started)).status_code == 303


async def test_the_turn_rotates_through_the_slots(harness: Harness) -> None:
    seen = []
    for i in range(6):
        r = await harness.client.get(f"/private/r{i}", headers=HTML)
        main = r.headers.get_list("set-cookie")[0]
        seen.append(main.split("=")[0].removeprefix(PENDING))
        turn = r.headers.get_list("set-cookie")[-1]
        assert turn.startswith(TURN + "=") and "Path=/;" in turn and "Max-Age=600" in turn
    first = SLOTS.index(seen[0])
    assert seen == [SLOTS[(first + i) % len(SLOTS)] for i in range(6)]


async def test_concurrent_starts_share_a_slot_the_last_one_wins(harness: Harness) -> None:
    """The documented limit: two sign-ins started from the same cookies (a restored session
    reopening tabs at once) read the same turn; the first one must start again."""
    await harness.start_login("/private/before")
    header = f"{TURN}={harness.client.cookies.get(TURN)}"
    both = []
    for path in ("/private/one", "/private/two"):
        r = await harness.client.get(path, headers={**HTML, "cookie": header})
        request, relay = decode_redirect_request(r.headers["location"])
        both.append((str(request.get("ID")), str(relay)))
    assert_refused(await finish(harness, both[0]), "unknown_request")
    assert (await finish(harness, both[1])).status_code == 303


NOT_NAVIGATIONS = [
    {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image", "accept": "image/avif,*/*"},
    {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "script", "accept": "*/*"},
    {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "style", "accept": "text/css,*/*"},
    {"sec-fetch-mode": "cors", "sec-fetch-dest": "empty", "accept": "*/*"},
    {"sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe", "accept": "text/html"},
    {"sec-fetch-mode": "nested-navigate", "sec-fetch-dest": "iframe", "accept": "text/html"},
    {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-purpose": "prefetch"},
    {"accept": "application/json"},
    {"x-requested-with": "XMLHttpRequest"},
]


@pytest.mark.parametrize("headers", NOT_NAVIGATIONS)
@pytest.mark.parametrize("path", ["/saml/login?return_to=%2Fprivate%2Fx", "/private/x"])
async def test_only_a_navigation_starts_a_sign_in(
    harness: Harness, headers: dict[str, str], path: str
) -> None:
    r = await harness.client.get(path, headers=headers)
    assert "set-cookie" not in r.headers
    assert "location" not in r.headers
    assert pending_names(harness.client) == []
    code = r.json()["error"] if "json" in r.headers["content-type"] else r.text
    if path.startswith("/private") and not headers.get("sec-fetch-mode", "").endswith("navigate"):
        assert r.status_code == 401 and code == "not_authenticated"  # as before, for API clients
    else:
        assert r.status_code == 403, r.text
        assert "not_a_navigation" in code


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, old browsers: no Sec-Fetch headers
        {"accept": "*/*"},
        {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-site": "none"},
        {
            "sec-fetch-mode": "navigate",
            "sec-fetch-dest": "document",
            "sec-fetch-site": "cross-site",
        },
        {"sec-fetch-mode": "navigate"},
    ],
)
async def test_a_navigation_starts_a_sign_in(harness: Harness, headers: dict[str, str]) -> None:
    r = await harness.client.get("/saml/login?return_to=%2Fprivate%2Fx", headers=headers)
    assert r.status_code == 303, r.text
    request, relay = decode_redirect_request(r.headers["location"])
    ok = await finish(harness, (str(request.get("ID")), str(relay)))
    assert ok.status_code == 303 and ok.headers["location"] == "/private/x"


async def test_expired_session_cookie_is_still_cleared_when_a_frame_is_refused(
    harness: Harness,
) -> None:
    """A refused start sets no pending cookie, but still deletes a dead session cookie."""
    assert (await harness.login()).status_code == 303
    harness.clock.advance(9 * 3600)
    frame = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe", "accept": "text/html"}
    r = await harness.client.get("/private/x", headers=frame)
    assert r.status_code == 403 and "not_a_navigation" in r.text
    assert [c.split("=")[0] for c in r.headers.get_list("set-cookie")] == ["saml_gate_session"]


@pytest.mark.parametrize("expired", [False, True])
async def test_a_sign_in_started_before_an_upgrade_completes_after_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, expired: bool
) -> None:
    """RelayState and pending-sign-in cookie in the previous format (itsdangerous's timed
    serializer, what an earlier release set) still complete their sign-in within login_timeout,
    and not after it; new ones are in the compact format."""
    key, request_id = "1" + secrets.token_urlsafe(9), "id-" + secrets.token_urlsafe(12)
    relay = URLSafeTimedSerializer([SECRET], salt="saml-gate.relay").dumps(key)
    pending = URLSafeTimedSerializer([SECRET], salt="saml-gate.pending")
    harness.client.cookies.set(PENDING + "1", pending.dumps([key, request_id, "/private/x"]))
    if expired:
        later = time.time() + harness.gate.settings.login_timeout + 1
        monkeypatch.setattr(time, "time", lambda: later)
    r = await harness.post_acs(harness.response_b64(harness.spec(in_response_to=request_id)), relay)
    if expired:
        assert r.status_code == 400 and "saml_gate_session" not in r.headers.get("set-cookie", "")
        return
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/private/x"
    assert (await harness.client.get("/saml/session")).status_code == 200
    harness.client.cookies.clear()  # another browser starts a sign-in now
    started = await harness.client.get("/private/y", headers=HTML)
    new_relay = decode_redirect_request(started.headers["location"])[1]
    assert new_relay is not None and new_relay.startswith("t2.")
    assert started.headers["set-cookie"].split("=", 1)[1].startswith("t2.")


async def test_a_compact_pending_sign_in_expires_with_login_timeout(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id, relay = await harness.start_login()
    assert relay.startswith("t2.")
    # the cookies as the browser holds them (the test client's jar would drop them itself)
    held = "; ".join(f"{name}={value}" for name, value in harness.client.cookies.items())
    harness.client.cookies.clear()
    later = time.time() + harness.gate.settings.login_timeout + 1
    monkeypatch.setattr(time, "time", lambda: later)
    posted = {"SAMLResponse": harness.response_b64(harness.spec(in_response_to=request_id))}
    r = await harness.client.post(
        "/saml/acs", data={**posted, "RelayState": relay}, headers={"cookie": held}
    )
    assert r.status_code == 400 and "saml_gate_session" not in r.headers.get("set-cookie", "")
