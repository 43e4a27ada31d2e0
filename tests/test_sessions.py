"""Session cookie lifetime, refresh, tampering and secret rotation, through the gate."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import BadSignature, URLSafeSerializer

from saml_gate import SamlGate
from saml_gate.session.signing import _unb64
from tests.support import (
    BASE_URL,
    ENTITY_ID,
    SECRET,
    Harness,
    decode_redirect_request,
    gate_options,
    make_app,
)

pytestmark = pytest.mark.anyio
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


async def test_idle_timeout_ends_the_session(make_harness: Any) -> None:
    h = make_harness(inactivity_timeout=600)
    await h.login()
    h.clock.advance(599)
    assert (await h.client.get("/private/a")).status_code == 200
    h.clock.advance(601)  # no request in between refreshed the cookie? the one above did
    r = await h.client.get("/private/a", headers=HTML)
    assert r.status_code == 303  # idle: back to the IdP
    assert any("saml_gate_session=;" in c for c in r.headers.get_list("set-cookie"))


async def test_activity_keeps_the_session_alive_until_the_absolute_limit(make_harness: Any) -> None:
    h = make_harness(inactivity_timeout=600, maximum_duration=3600)
    await h.login(session_lifetime=None)
    for _ in range(11):
        h.clock.advance(300)
        assert (await h.client.get("/private/a")).status_code == 200
    h.clock.advance(300)  # 3600 s after sign-in
    assert (await h.client.get("/private/a", headers=HTML)).status_code == 303


async def test_refresh_is_not_sent_on_every_response(harness: Harness) -> None:
    await harness.login()
    harness.clock.advance(5)
    r = await harness.client.get("/private/a")
    assert r.status_code == 200 and "set-cookie" not in r.headers
    harness.clock.advance(120)
    r = await harness.client.get("/private/a")
    assert "saml_gate_session=" in r.headers["set-cookie"]
    r = await harness.client.get("/private/a")
    assert "set-cookie" not in r.headers


async def test_session_not_on_or_after_caps_the_session(harness: Harness) -> None:
    await harness.login(session_lifetime=timedelta(minutes=30))
    me = (await harness.client.get("/saml/session")).json()
    assert me["expires_at"] == "2026-03-02T09:30:00Z"
    harness.clock.advance(30 * 60)
    assert (await harness.client.get("/private/a", headers=HTML)).status_code == 303


async def test_tampered_cookie_is_ignored(harness: Harness) -> None:
    await harness.login()
    value = harness.client.cookies.get("saml_gate_session")
    assert value
    payload, _, signature = value.rpartition(".")
    for forged in (
        payload + "." + signature[::-1],
        payload[:-2] + "AA." + signature,
        "garbage",
        value + "x",
    ):
        harness.client.cookies.clear()
        harness.client.cookies.set("saml_gate_session", forged)
        r = await harness.client.get("/private/a", headers={"accept": "application/json"})
        assert r.status_code == 401, forged


async def test_rotated_secret_keeps_people_signed_in(
    harness: Harness, idp_keys: Any, sp_keys: Any, tmp_path: Any
) -> None:
    await harness.login()
    cookie = harness.client.cookies.get("saml_gate_session")
    new_secret = "a-brand-new-secret-0123456789-abcdefgh"
    rotated = SamlGate(
        make_app(),
        **gate_options(
            idp_keys, sp_keys, harness.clock, str(tmp_path), secret_key=[new_secret, SECRET]
        ),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rotated), base_url=BASE_URL
    ) as client:
        client.cookies.set("saml_gate_session", cookie)
        assert (await client.get("/private/a")).status_code == 200
        harness.clock.advance(120)
        refreshed = await client.get("/private/a")
        new_cookie = refreshed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    # The refreshed cookie is signed with the new (first) secret only.
    only_new = SamlGate(
        make_app(),
        **gate_options(idp_keys, sp_keys, harness.clock, str(tmp_path), secret_key=new_secret),
    )
    only_old = SamlGate(make_app(), **gate_options(idp_keys, sp_keys, harness.clock, str(tmp_path)))
    for app, expected in ((only_new, 200), (only_old, 401)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as client:
            client.cookies.set("saml_gate_session", new_cookie)
            r = await client.get("/private/a", headers={"accept": "application/json"})
            assert r.status_code == expected


def fields_of(cookie: str) -> list[Any]:
    """The fields a compact session cookie carries (read without checking its signature: the
    test's own cookie)."""
    head, body, _ = cookie.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return list(json.loads(zlib.decompress(raw, -12) if head == "s2z" else raw))


def previous_format(fields: list[Any], *, compress: bool) -> str:
    """The same session as an earlier release signed it: itsdangerous's serializer over a JSON
    object of named fields (zlib-compressed always, or never)."""
    names = ["n", "f", "e", "d", "g", "a", "x", "i", "t", "z", "s", "c", "l", "v"]
    payload = dict(zip(names, fields, strict=True))
    plain = URLSafeSerializer([SECRET], salt=f"saml-gate.session|{ENTITY_ID}")
    if compress:
        return str(plain.dumps(payload))
    signer = plain.make_signer(plain.salt)
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    return signer.sign(body).decode()


async def test_the_session_cookie_is_compact_and_previous_cookies_sign_in_until_they_expire(
    harness: Harness, idp_keys: Any, sp_keys: Any, tmp_path: Any
) -> None:
    """Sessions are issued in the compact format (a JSON array signed with HMAC-SHA256);
    cookies of the previous format (itsdangerous's, compressed or not) still open the app in a
    process that never saw the sign-in, are replaced by compact ones at their refresh, and stop
    working when they expire as before."""
    await harness.login()
    cookie = harness.client.cookies.get("saml_gate_session")
    assert cookie and cookie.startswith("s2.")
    fields = fields_of(cookie)
    assert fields[0] == "alice@example.com" and fields[4] == ["admins", "users"]
    with pytest.raises(BadSignature):  # no reader of the previous format takes it
        URLSafeSerializer([SECRET], salt=f"saml-gate.session|{ENTITY_ID}").loads(cookie)
    earlier = [previous_format(fields, compress=c) for c in (True, False)]
    assert earlier[0].startswith(".") and earlier[1].startswith("eyJ")
    other = SamlGate(make_app(), **gate_options(idp_keys, sp_keys, harness.clock, str(tmp_path)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url=BASE_URL
    ) as client:
        for value in (*earlier, cookie):  # a process that never saw the sign-in decodes each
            client.cookies.set("saml_gate_session", value)
            me = await client.get("/saml/session")
            assert me.status_code == 200 and me.json()["name_id"] == "alice@example.com"
            assert me.json()["groups"] == ["admins", "users"]
            client.cookies.clear()
        harness.clock.advance(120)  # a refresh is due: the previous format is replaced
        client.cookies.set("saml_gate_session", earlier[1])
        refreshed = await client.get("/private/a")
        assert refreshed.status_code == 200
        new_value = refreshed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        assert new_value.startswith("s2.") and fields_of(new_value)[10] == fields[10]
        client.cookies.clear()
        harness.clock.advance(fields[9] - harness.clock.now)  # the session's absolute end
        for value in earlier:
            client.cookies.set("saml_gate_session", value)
            assert (await client.get("/private/a", headers=JSON)).status_code == 401
            client.cookies.clear()


async def test_a_large_session_cookie_is_deflated_and_read_back_verbatim(harness: Harness) -> None:
    groups = [f"Group-{n:03d} Ünïcode" for n in range(40)]
    await harness.login(attributes={"email": ["alice@example.com"], "groups": groups})
    cookie = harness.client.cookies.get("saml_gate_session")
    assert cookie and cookie.startswith("s2z.") and len(cookie) < 3800
    assert fields_of(cookie)[4] == groups
    me = await harness.client.get("/saml/session")
    assert me.status_code == 200 and me.json()["groups"] == groups


async def test_cookie_from_another_deployment_is_refused(
    harness: Harness, idp_keys: Any, sp_keys: Any, tmp_path: Any
) -> None:
    await harness.login()
    cookie = harness.client.cookies.get("saml_gate_session")
    other = SamlGate(
        make_app(),
        **gate_options(
            idp_keys,
            sp_keys,
            harness.clock,
            str(tmp_path),
            secret_key="another-deployments-secret-0123456789",
        ),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url=BASE_URL
    ) as client:
        client.cookies.set("saml_gate_session", cookie)
        assert (
            await client.get("/private/a", headers={"accept": "application/json"})
        ).status_code == 401


async def test_secure_cookies_on_https(make_harness: Any) -> None:
    h = make_harness(base_url="https://acme.ngrok.app")
    r = await h.client.get("https://acme.ngrok.app/private/a", headers=HTML)
    pending = r.headers["set-cookie"]
    assert "SameSite=None" in pending and "Secure" in pending


async def test_pending_cookie_survives_a_cross_site_post_on_localhost(harness: Harness) -> None:
    """http://127.0.0.1 with an IdP on another site: SameSite=None;Secure (browsers treat
    loopback as secure) plus a Lax twin for browsers that refuse Secure cookies on http."""
    r = await harness.client.get("/private/a", headers=HTML)
    main, twin, _turn = r.headers.get_list("set-cookie")  # then the turn cookie (relay.py)
    assert main.startswith("saml_gate_req_") and "SameSite=None" in main and "Secure" in main
    name = main.split("=", 1)[0]
    assert twin.startswith(name + ".lax=") and "SameSite=Lax" in twin and "Secure" not in twin
    # Either cookie alone completes the sign-in.
    for twin_only in (False, True):
        harness.client.cookies.clear()
        r = await harness.client.get("/private/a", headers=HTML)
        request, relay = decode_redirect_request(r.headers["location"])
        main_name = r.headers.get_list("set-cookie")[0].split("=", 1)[0]
        keep = main_name + ".lax" if twin_only else main_name
        value = str(harness.client.cookies.get(keep))
        harness.client.cookies.clear()
        harness.client.cookies.set(keep, value, path="/saml/acs")
        body = harness.response_b64(harness.spec(in_response_to=request.get("ID")))
        ok = await harness.post_acs(body, relay)
        assert ok.status_code == 303, ok.text


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (b"a=1; saml_gate_session=x; b=2", b"a=1; b=2"),
        (b"saml_gate_session=x", b""),
        (b"saml_gate_session=x;a=1;saml_gate_req_0=y", b"a=1"),
        (b"a=1;\tsaml_gate_session=x", b"a=1"),
        (b"a=1;\xa0saml_gate_session=x; b=2", b"a=1; b=2"),  # NBSP: what Starlette strips
        (b"a=x saml_gate_session=y; b=2", b"a=x saml_gate_session=y; b=2"),  # inside a value
        (b"SAML_GATE_SESSION=x; saml_gatex=1", b"SAML_GATE_SESSION=x; saml_gatex=1"),
        (b' q="a b" ;  c=caf\xe9 ', b'q="a b" ;  c=caf\xe9'),  # nothing to remove: as sent
    ],
)
def test_what_an_upstream_sees_of_a_cookie_header(header: bytes, kept: bytes) -> None:
    """Proxy mode and the forward-auth answer: the gate's cookies out, the rest byte for byte."""
    from saml_gate.session.cookies import without_cookies

    assert without_cookies(header, "saml_gate_") == kept


@pytest.mark.parametrize(
    "text", ["", "YQ", "YWI", "YWJj", "-_-_", "+/+/", "YQ=", "Y", "YW!J", "Y W", "é", "YQ\n"]
)
def test_signed_values_base64_reads_as_urlsafe_b64decode(text: str) -> None:
    """The compact signer's base64 reader (binascii in one step) gives what
    ``base64.urlsafe_b64decode`` gives for the padded text, or fails where it fails."""
    padded = text + "=" * (-len(text) % 4)
    try:
        expected: bytes | None = base64.urlsafe_b64decode(padded)
    except ValueError:
        expected = None
    try:
        got: bytes | None = _unb64(text)
    except ValueError:
        got = None
    assert got == expected
