"""Okta Universal Logout (Global Token Revocation) through the real endpoint, in process.

Every request is the test kit's (``saml_idp.universal_logout``: a JWT shaped and signed as
Okta's, a ``sub_id`` body) or one it makes wrong on purpose; every refusal is checked for its
status, stable code and RFC 6750 challenge, and for having ended nothing. Two gates sharing
Redis in two processes, WebSockets and the time to the last refusing worker are in
tests/test_universal_logout_hosts.py and benchmarks/bench_universal_logout.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from saml_gate import SamlGate
from saml_gate.errors import ConfigError
from saml_gate.ops.events import AuthEvent
from saml_gate.testing import SamlTestIdp, gate_error_code
from saml_gate.testing.access_tokens import KeyServer
from saml_gate.testing.universal_logout import ORG_URL, LogoutTokens
from tests.support import KitSite, hmac_signed, make_app
from tests.test_store_outage import free_port

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
ANN, BOB = "ann@example.com", "bob@example.com"


class Site(KitSite):
    """A gate trusting the test IdP, and browsers signed in to it."""

    async def signed_in(self, email: str, **person: Any) -> httpx.AsyncClient:
        client = await super().signed_in(email, **person)
        assert await in_(client)
        return client

    async def logout(self, **request: Any) -> httpx.Response:
        return await self.idp.universal_logout_async(self.browser(), **request)


async def in_(client: httpx.AsyncClient) -> bool:
    """Whether the browser's session still lets it in (an API call: 200 or 401)."""
    r = await client.get("/private/x", headers=JSON)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
async def site(saml_idp: SamlTestIdp) -> Any:
    made = Site(saml_idp)
    yield made
    await made.close()


async def ulo_events(site: Site) -> list[AuthEvent]:
    return await site.events_of("universal_logout")


# ---------------------------------------------------------------------- who is signed out
async def test_an_email_ends_every_session_of_that_person_and_nobody_else(site: Site) -> None:
    laptop, phone, bob = (
        await site.signed_in(ANN),
        await site.signed_in(ANN),
        await site.signed_in(BOB),
    )
    answer = await site.logout(email=ANN)
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    assert not await in_(laptop) and not await in_(phone)
    assert await in_(bob)
    page = await laptop.get("/private/x", headers={"accept": "text/html"})
    assert page.status_code == 303  # a page load signs in again, at the IdP
    [event] = await ulo_events(site)
    assert (event.outcome, event.email, event.extra["sessions"]) == ("success", ANN, 2)


async def test_the_email_is_matched_whatever_its_case(site: Site) -> None:
    ann = await site.signed_in("Ann.Lee@Example.com")
    assert (await site.logout(email="ann.lee@EXAMPLE.COM")).status_code == 204
    assert not await in_(ann)


async def test_iss_sub_names_the_idp_and_the_name_id_verbatim(site: Site) -> None:
    ann = await site.signed_in(ANN, name_id="00u1ann")
    near = await site.logout(name_id="00u1ann ")  # another NameID: nobody's
    assert near.status_code == 204 and await in_(ann)
    assert (await site.logout(name_id="00u1ann")).status_code == 204
    assert not await in_(ann)
    assert (await ulo_events(site))[-1].name_id == "00u1ann"


async def test_iss_sub_of_another_idp_ends_nothing(site: Site, saml_idp: SamlTestIdp) -> None:
    ann = await site.signed_in(ANN)
    body = {"sub_id": {"format": "iss_sub", "iss": "https://other.example", "sub": ANN}}
    answer = await post(site, body)
    assert answer.status_code == 204
    assert await in_(ann)


async def test_an_unknown_person_gets_the_same_answer_as_a_known_one(site: Site) -> None:
    """Nobody learns who has a session: a person without one is signed out already."""
    await site.signed_in(ANN)
    known, unknown = await site.logout(email=ANN), await site.logout(email="nobody@example.com")
    assert (
        (known.status_code, known.content) == (unknown.status_code, unknown.content) == (204, b"")
    )


async def test_the_02_drafts_member_name_subject_is_read_too(site: Site) -> None:
    """Okta's guide (and the draft's -02 revision) call it ``subject``; -03 on, ``sub_id``."""
    ann = await site.signed_in(ANN)
    assert (await post(site, {"subject": {"format": "email", "email": ANN}})).status_code == 204
    assert not await in_(ann)


async def test_the_sessions_a_revoked_person_had_stay_out_after_a_restart_of_nothing(
    site: Site,
) -> None:
    """The same cookie comes back: still out (the revocation lasts as long as the session)."""
    ann = await site.signed_in(ANN)
    await site.logout(email=ANN)
    site.idp.clock.advance(3600)
    assert not await in_(ann)


# ---------------------------------------------------------------------- refusals
def tokens(site: Site) -> LogoutTokens:
    return site.idp.logout_tokens


def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def forged(site: Site) -> str:
    """Okta's token with its payload changed (another app): the signature no longer holds."""
    head, _, sig = make(site).split(".")
    other = make(site, claims={"sub": "0oaother"}).split(".")[1]
    return f"{head}.{other}.{sig}"


def make(site: Site, **changes: Any) -> str:
    return tokens(site).token(site.idp.universal_logout_url, site.idp.clock(), **changes)


def public_pem(site: Site) -> bytes:
    return (
        tokens(site)
        .key.private.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )


REFUSED: dict[str, tuple[Any, int, str]] = {
    "forged": (forged, 401, "universal_logout_token_invalid"),
    "signed with another key, same kid": (
        lambda s: make(s, signing_key=other_rsa_key()),
        401,
        "universal_logout_token_invalid",
    ),
    "a kid the org never published": (
        lambda s: make(s, header={"kid": "not-published"}),
        401,
        "universal_logout_token_invalid",
    ),
    "expired": (
        lambda s: make(
            s, claims={"exp": int(s.idp.clock()) - 200, "iat": int(s.idp.clock()) - 500}
        ),
        401,
        "universal_logout_expired",
    ),
    "issued in the future": (
        lambda s: make(
            s, claims={"iat": int(s.idp.clock()) + 600, "exp": int(s.idp.clock()) + 900}
        ),
        401,
        "universal_logout_expired",
    ),
    "living a day": (
        lambda s: make(s, claims={"exp": int(s.idp.clock()) + 86400}),
        401,
        "universal_logout_token_invalid",
    ),
    "for another endpoint": (
        lambda s: make(s, claims={"aud": "https://other.example/global-token-revocation"}),
        401,
        "universal_logout_wrong_audience",
    ),
    "for this endpoint and another": (
        lambda s: make(s, claims={"aud": [s.idp.universal_logout_url, "https://other.example"]}),
        401,
        "universal_logout_wrong_audience",
    ),
    "from another org": (
        lambda s: make(s, claims={"iss": "https://evil.okta.com"}),
        401,
        "universal_logout_wrong_issuer",
    ),
    "an ID token's type": (
        lambda s: make(s, header={"typ": "JWT"}),
        401,
        "universal_logout_token_invalid",
    ),
    "no type": (lambda s: make(s, header={"typ": ""}), 401, "universal_logout_token_invalid"),
    "alg none": (
        lambda s: jwt.encode(
            {"iss": ORG_URL, "aud": s.idp.universal_logout_url, "jti": "x", "sub": "a"},
            None,
            algorithm="none",
            headers={"typ": "global-token-revocation+jwt", "kid": tokens(s).key.kid},
        ),
        401,
        "universal_logout_token_invalid",
    ),
    "HS256 keyed with the public key": (
        lambda s: _hmac_with(s, public_pem(s)),
        401,
        "universal_logout_token_invalid",
    ),
    "no jti": (lambda s: make(s, claims={"jti": None}), 401, "universal_logout_token_invalid"),
    "no exp": (lambda s: make(s, claims={"exp": None}), 401, "universal_logout_token_invalid"),
    "garbage": (lambda s: "not.a.jwt", 401, "universal_logout_token_invalid"),
}


def _hmac_with(site: Site, secret: bytes) -> str:
    """The algorithm-confusion attack: HS256 with the RSA public key as the HMAC secret."""
    now = int(site.idp.clock())
    header = {"alg": "HS256", "typ": "global-token-revocation+jwt", "kid": tokens(site).key.kid}
    claims = {
        "iss": ORG_URL,
        "sub": "0oatestapp0saml0gate",
        "aud": site.idp.universal_logout_url,
        "jti": "hmac",
        "iat": now,
        "exp": now + 300,
    }
    return hmac_signed(header, claims, secret)


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_tokens_end_nothing(site: Site, case: str) -> None:
    make_token, status, code = REFUSED[case]
    ann = await site.signed_in(ANN)
    answer = await site.logout(email=ANN, token=make_token(site))
    assert (answer.status_code, gate_error_code(answer)) == (status, code), answer.text
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert await in_(ann)
    [event] = await ulo_events(site)
    assert (event.outcome, event.error_code) == ("failure", code)


async def test_a_token_is_accepted_once(site: Site) -> None:
    """The same jti twice (a replay): refused the second time, by code."""
    token = make(site)
    first = await site.logout(email="nobody@example.com", token=token)
    ann = await site.signed_in(ANN)
    again = await site.logout(email=ANN, token=token)
    assert first.status_code == 204
    assert (again.status_code, gate_error_code(again)) == (401, "universal_logout_replayed")
    assert await in_(ann)


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YTpi", "Bearer", "bearer  a b", "Bearer a, Bearer b"],
    ids=["none", "basic", "empty", "two words", "two tokens"],
)
async def test_a_request_without_one_bearer_token_is_unauthenticated(
    site: Site, authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = json.dumps({"sub_id": {"format": "email", "email": ANN}})
    answer = await site.browser().post(site.idp.universal_logout_url, content=body, headers=headers)
    assert answer.status_code == 401
    assert gate_error_code(answer) == "universal_logout_unauthenticated"
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_token_of_another_app_is_forbidden(saml_idp: SamlTestIdp) -> None:
    site = Site(saml_idp, universal_logout_app_id="0oaotherapp")
    try:
        ann = await site.signed_in(ANN)
        answer = await site.logout(email=ANN)
        assert (answer.status_code, gate_error_code(answer)) == (403, "universal_logout_wrong_app")
        assert await in_(ann)
        site.gate = SamlGate(
            make_app(), **saml_idp.gate_options(universal_logout_app_id=tokens(site).app_id)
        )
        assert (await site.logout(email=ANN)).status_code == 204
    finally:
        await site.close()


BAD_BODIES: dict[str, tuple[str, bytes]] = {
    "not JSON": ("application/json", b"{sub_id"),
    "not an object": ("application/json", b"[]"),
    "a form": ("application/x-www-form-urlencoded", b"sub_id=x"),
    "no subject": ("application/json", b'{"user": "ann"}'),
    "an opaque id": ("application/json", b'{"sub_id": {"format": "opaque", "id": "00u1"}}'),
    "an empty email": ("application/json", b'{"sub_id": {"format": "email", "email": ""}}'),
    "a number for sub": (
        "application/json",
        b'{"sub_id": {"format": "iss_sub", "iss": "x", "sub": 12}}',
    ),
    "both member names": (
        "application/json",
        b'{"sub_id": {"format": "email", "email": "a@b"},'
        b' "subject": {"format": "email", "email": "c@d"}}',
    ),
    "too large": ("application/json", b'{"pad": "' + b"x" * 9000 + b'"}'),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_a_malformed_request_is_400(site: Site, case: str) -> None:
    content_type, body = BAD_BODIES[case]
    answer = await post(site, body, content_type=content_type)
    assert (answer.status_code, gate_error_code(answer)) == (400, "universal_logout_bad_request")


async def test_only_post(site: Site) -> None:
    answer = await site.browser().get(site.idp.universal_logout_url)
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")


async def test_without_universal_logout_issuer_there_is_no_endpoint(
    saml_idp: SamlTestIdp,
) -> None:
    options = dict(saml_idp.gate_options())
    del options["universal_logout_issuer"], options["universal_logout_keys"]
    gate = SamlGate(make_app(), **options)
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await saml_idp.universal_logout_async(client, email=ANN)
    assert (answer.status_code, gate_error_code(answer)) == (404, "not_found")


async def test_a_store_it_cannot_reach_is_422(saml_idp: SamlTestIdp, unused_port: int) -> None:
    site = Site(saml_idp, store=f"redis://127.0.0.1:{unused_port}/0", store_timeout=0.2)
    try:
        answer = await site.logout(email=ANN)
        assert (answer.status_code, gate_error_code(answer)) == (422, "universal_logout_failed")
    finally:
        await site.close()


async def post(site: Site, body: Any, *, content_type: str = "application/json") -> httpx.Response:
    """A request with a valid token and this body."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type, "authorization": f"Bearer {make(site)}"}
    return await site.browser().post(
        site.idp.universal_logout_url, content=content, headers=headers
    )


# ---------------------------------------------------------------------- the org's keys by URL
@pytest.fixture
def key_server(saml_idp: SamlTestIdp) -> Iterator[KeyServer]:
    server = KeyServer(saml_idp.logout_tokens.jwks)
    yield server
    server.close()


async def test_keys_come_from_the_url_and_a_rollover_is_fetched_once_a_minute(
    saml_idp: SamlTestIdp, key_server: KeyServer
) -> None:
    site = Site(saml_idp, universal_logout_keys=key_server.url)
    try:
        ann = await site.signed_in(ANN)
        assert key_server.fetches == 1  # at start-up
        rolled = _tokens_with(other_rsa_key())
        unknown = rolled.token(saml_idp.universal_logout_url, saml_idp.clock())
        first = await site.logout(email=ANN, token=unknown)
        assert gate_error_code(first) == "universal_logout_token_invalid"
        assert key_server.fetches == 2  # the unknown kid made it look again, at once
        again = await site.logout(
            email=ANN, token=rolled.token(site.idp.universal_logout_url, saml_idp.clock())
        )
        assert gate_error_code(again) == "universal_logout_token_invalid"
        assert key_server.fetches == 2  # not again within a minute
        key_server.jwks = rolled.jwks  # the org publishes its new key
        saml_idp.clock.advance(61)
        ann_token = rolled.token(saml_idp.universal_logout_url, saml_idp.clock())
        answer = await site.logout(email=ANN, token=ann_token)
        assert answer.status_code == 204, answer.text
        assert key_server.fetches == 3
        assert not await in_(ann)
    finally:
        await site.close()


def _tokens_with(key: rsa.RSAPrivateKey) -> LogoutTokens:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    from saml_gate.saml.keys import KeyPair

    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return LogoutTokens(KeyPair(pem, b""))


async def test_keys_that_cannot_be_fetched_are_503_and_do_not_stop_the_gate(
    saml_idp: SamlTestIdp, unused_port: int
) -> None:
    site = Site(
        saml_idp,
        universal_logout_keys=f"http://127.0.0.1:{unused_port}/oauth2/v1/keys",
        metadata_timeout=1,
    )
    try:
        ann = await site.signed_in(ANN)  # sign-ins work without the org's keys
        answer = await site.logout(email=ANN)
        assert (answer.status_code, gate_error_code(answer)) == (
            503,
            "universal_logout_keys_unavailable",
        )
        assert await in_(ann)
    finally:
        await site.close()


# ---------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"universal_logout_issuer": "http://acme.okta.com"}, "universal_logout_issuer"),
        ({"universal_logout_issuer": "acme.okta.com"}, "universal_logout_issuer"),
        (
            {"universal_logout_keys": "https://acme.okta.com/oauth2/v1/keys"},
            "universal_logout_issuer",
        ),
        ({"universal_logout_app_id": "0oa1"}, "universal_logout_issuer"),
        (
            {"universal_logout_issuer": ORG_URL, "universal_logout_keys": "http://keys.example/k"},
            "universal_logout_keys",
        ),
    ],
)
def test_bad_settings_stop_the_gate_naming_them(
    saml_idp: SamlTestIdp, options: dict[str, str], setting: str
) -> None:
    given = dict(saml_idp.gate_options())
    del given["universal_logout_issuer"], given["universal_logout_keys"]
    with pytest.raises(ConfigError) as caught:
        SamlGate(make_app(), **{**given, **options})
    assert caught.value.setting == setting


async def test_a_key_set_that_is_none_stops_the_start_naming_it(saml_idp: SamlTestIdp) -> None:
    gate = SamlGate(make_app(), **saml_idp.gate_options(universal_logout_keys='{"keys": []}'))
    with pytest.raises(ConfigError) as caught:
        await gate.start()
    assert caught.value.setting == "universal_logout_keys"


def test_the_default_key_set_is_the_orgs() -> None:
    from saml_gate.config.settings import GateSettings

    settings = GateSettings.load(
        environ={},
        dev_idp=True,
        base_url="http://127.0.0.1:8000",
        secret_key="x" * 40,
        universal_logout_issuer="https://acme.okta.com/",
    )
    assert settings.universal_logout_issuer == "https://acme.okta.com"
    assert settings.universal_logout_keys_source == "https://acme.okta.com/oauth2/v1/keys"
    assert settings.universal_logout_url == "http://127.0.0.1:8000/saml/global-token-revocation"


# ---------------------------------------------------------------------- what to enter in Okta
def test_saml_gate_setup_lists_the_universal_logout_values(tmp_path: Any) -> None:
    from tests.test_cli import saml_gate

    result = saml_gate(
        "setup",
        "--base-url",
        "https://acme.ngrok.app",
        "--state-dir",
        str(tmp_path),
        "--universal-logout-issuer",
        "https://acme.okta.com",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Universal Logout endpoint" in out
    assert "https://acme.ngrok.app/saml/global-token-revocation" in out
    assert "'Okta system or admin initiates logout'; Logout endpoint URL" in out
    assert "Signed JWT" in out and "https://acme.okta.com/oauth2/v1/keys" in out
    assert "Email Identifier, or Issuer and Subject Identifier" in out


async def test_the_setup_page_lists_them_too(site: Site) -> None:
    page = await site.browser().get("/saml/setup")
    assert page.status_code == 200
    assert "http://testserver/saml/global-token-revocation" in page.text
    assert "Endpoint authentication type Signed JWT" in page.text
    assert "the key set configured" in page.text  # never the inline JSON itself
    assert site.idp.logout_tokens.key.public_jwk["n"] not in page.text


def test_saml_gate_check_fetches_the_orgs_keys(
    saml_idp: SamlTestIdp, key_server: KeyServer, tmp_path: Any
) -> None:
    from tests.test_cli import check_env, saml_gate

    env = check_env(saml_idp.keys, tmp_path, SAML_GATE_UNIVERSAL_LOGOUT_ISSUER=ORG_URL)
    base = ("check", "--base-url", "https://acme.ngrok.app", "--universal-logout-keys")
    reached = saml_gate(*base, key_server.url, env=env)
    assert "ok    Universal Logout at https://acme.ngrok.app/saml/global-token-revocation" in (
        reached.stdout
    ), reached.stdout
    dead = saml_gate(*base, f"http://127.0.0.1:{free_port()}/oauth2/v1/keys", env=env)
    assert "FAIL  universal_logout_keys: cannot fetch" in dead.stdout, dead.stdout
