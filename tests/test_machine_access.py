"""Machine access through the real endpoint, in process: bearer tokens beside single sign-on.

A gate trusting the test kit's IdP and its authorization server (``saml_idp.access_token``),
with Redis as its store (gate service tokens live there), and three kinds of routes: an API
that takes sessions and tokens (``accept=session,token``, for deployers), a browser-only page
(the default, ``accept=session``) and a machine-only hook (``accept=token``). Every refusal is
checked for its status and stable code; tokens through real servers, in every mode and on
gates sharing Redis, are in tests/test_machine_access_hosts.py and tests/test_mode_parity.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from saml_gate import Rule, SamlGate
from saml_gate.errors import ConfigError
from saml_gate.ops.events import AuthEvent
from saml_gate.session.gate_tokens import GateTokens, new_token
from saml_gate.testing import SamlTestIdp, gate_error_code
from saml_gate.testing.access_tokens import AUDIENCE, ISSUER
from tests.conftest import TEST_REDIS_URL
from tests.support import hmac_signed

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
ANN = "ann@example.com"
RULES = (
    "/api/ accept=session,token groups=deployers",
    "/hooks/ accept=token",
)


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "kind": user.kind,
            "name_id": user.name_id,
            "token_name": user.token_name,
            "groups": list(user.groups),
            "jwt": jwt.decode(
                request.headers["x-saml-gate-jwt"], options={"verify_signature": False}
            ),
        }
    )


class Site:
    """The gate, its auth events, clients, and gate tokens made in its store."""

    def __init__(self, idp: SamlTestIdp, prefix: str, **options: Any) -> None:
        self.idp = idp
        self.events: list[AuthEvent] = []
        app = Starlette(routes=[Route("/{rest:path}", whoami, methods=["GET", "POST"])])
        self.gate = SamlGate(
            app,
            **idp.gate_options(
                on_event=self.events.append,
                access_rules=RULES,
                store=TEST_REDIS_URL,
                store_prefix=prefix,
                jwt_header="X-Saml-Gate-Jwt",
                **options,
            ),
        )
        self.clients: list[httpx.AsyncClient] = []

    def client(self) -> httpx.AsyncClient:
        made = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.gate), base_url="http://testserver"
        )
        self.clients.append(made)
        return made

    async def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**JSON, **({"authorization": f"Bearer {token}"} if token else {})}
        return await self.client().get(path, headers=headers, **kw)

    def gate_tokens(self) -> GateTokens:
        core = self.gate.core
        return GateTokens(core.store, core.revocations, self.idp.clock, 90.0)

    async def gate_token(
        self, name: str = "ci-deploy", groups: tuple[str, ...] = ("deployers",)
    ) -> str:
        await self.gate.core.start()
        return await self.gate_tokens().create(name, groups, 90 * 86400)

    async def token_events(self) -> list[AuthEvent]:
        await self.gate.core.events.drain()
        return [e for e in self.events if e.event == "token_auth"]

    async def close(self) -> None:
        for made in self.clients:
            await made.aclose()
        await self.gate.stop()


@pytest.fixture
async def site(saml_idp: SamlTestIdp, redis_prefix: str) -> AsyncIterator[Site]:
    made = Site(saml_idp, redis_prefix)
    yield made
    await made.close()


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert (answer.status_code, gate_error_code(answer)) == (status, code), answer.text


# ------------------------------------------------------------------------ who gets in, where
async def test_an_idp_access_token_reaches_a_token_route_as_a_service(site: Site) -> None:
    token = site.idp.access_token(groups=["deployers"])
    answer = await site.get("/api/deploy", token)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["kind"] == "service" and seen["name_id"] == "0oatestclient0ci"
    assert seen["token_name"] == "0oatestclient0ci" and seen["groups"] == ["deployers"]
    assert seen["jwt"]["principal"] == "service" and seen["jwt"]["token_name"] == "0oatestclient0ci"
    refused(await site.get("/browser/page", token), 403, "token_not_accepted")
    assert (await site.get("/hooks/build", token)).status_code == 200
    events = await site.token_events()  # the hooks run in the background: in any order
    assert sorted((e.outcome, e.error_code or "", e.name_id or "") for e in events) == [
        ("failure", "token_not_accepted", ""),
        ("success", "", "0oatestclient0ci"),
        ("success", "", "0oatestclient0ci"),
    ]
    assert all(e.extra["token_name"] == "0oatestclient0ci" for e in events if e.name_id)


async def test_scopes_map_to_groups_and_the_groups_decide(
    saml_idp: SamlTestIdp, redis_prefix: str
) -> None:
    site = Site(saml_idp, redis_prefix, access_token_scope_groups=("deploy:write=deployers",))
    try:
        scoped = site.idp.access_token(scopes=["deploy:write"])
        assert (await site.get("/api/x", scoped)).json()["groups"] == ["deployers"]
        refused(await site.get("/api/x", site.idp.access_token(scopes=["read"])), 403, "forbidden")
    finally:
        await site.close()


async def test_a_gate_token_reaches_a_token_route_until_revoked(site: Site) -> None:
    token = await site.gate_token()
    assert token.startswith("sgt_") and len(token) == 47
    answer = await site.get("/api/deploy", token)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert (seen["kind"], seen["name_id"], seen["token_name"]) == (
        "service",
        "ci-deploy",
        "ci-deploy",
    )
    assert seen["jwt"]["principal"] == "service" and seen["jwt"]["sub"] == "ci-deploy"
    refused(await site.get("/browser/page", token), 403, "token_not_accepted")
    assert [r.name for r in await site.gate_tokens().live(site.idp.clock())] == ["ci-deploy"]

    assert await site.gate_tokens().revoke("ci-deploy") == 1
    refused(await site.get("/api/deploy", token), 401, "token_revoked")
    assert await site.gate_tokens().live(site.idp.clock()) == []


async def test_a_gate_token_expires(site: Site) -> None:
    await site.gate.core.start()
    token = await site.gate_tokens().create("short", ("deployers",), 3600)
    assert (await site.get("/api/x", token)).status_code == 200
    site.idp.clock.advance(3601)
    refused(await site.get("/api/x", token), 401, "token_expired")


async def test_the_store_keeps_only_a_hash(site: Site, redis_prefix: str) -> None:
    redis = pytest.importorskip("redis.asyncio")
    token = await site.gate_token()
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
        values = b"".join([await client.dump(k) or b"" for k in keys])
    finally:
        await client.aclose()
    assert keys and token.encode() not in values and token[4:].encode() not in values


async def test_a_person_still_signs_in_and_the_machine_route_wants_a_token(site: Site) -> None:
    browser = site.client()
    await site.idp.sign_in_async(browser, email=ANN, groups=["deployers"], path="/api/x")
    page = await browser.get("/api/x", headers=JSON)
    assert page.status_code == 200 and page.json()["kind"] == "person"
    assert page.json()["jwt"]["principal"] == "person"
    refused(await browser.get("/hooks/build", headers=JSON), 401, "token_required")


# ------------------------------------------------------------------------ a cookie and a token
async def test_a_bearer_token_is_decided_alone_never_falling_back_to_the_cookie(site: Site) -> None:
    browser = site.client()
    await site.idp.sign_in_async(browser, email=ANN, groups=["deployers"], path="/api/x")
    assert (await browser.get("/browser/page", headers=JSON)).status_code == 200
    bad = {**JSON, "authorization": "Bearer sgt_" + "A" * 43}
    refused(await browser.get("/api/x", headers=bad), 401, "token_invalid")
    good = {**JSON, "authorization": f"Bearer {site.idp.access_token(groups=['deployers'])}"}
    assert (await browser.get("/api/x", headers=good)).json()["kind"] == "service"
    refused(await browser.get("/browser/page", headers=good), 403, "token_not_accepted")


async def test_another_authorization_scheme_is_the_apps(site: Site) -> None:
    browser = site.client()
    await site.idp.sign_in_async(browser, email=ANN, groups=["deployers"], path="/api/x")
    answer = await browser.get("/api/x", headers={**JSON, "authorization": "Basic dXNlcjpwdw=="})
    assert answer.status_code == 200 and answer.json()["kind"] == "person"


# ------------------------------------------------------------------------ refused tokens
def _public_pem(idp: SamlTestIdp) -> bytes:
    public = idp.access_tokens.key.private.public_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _forged(idp: SamlTestIdp) -> str:
    head, _, sig = idp.access_token(groups=["deployers"]).split(".")
    other = idp.access_token(groups=["deployers", "admins"]).split(".")[1]
    return f"{head}.{other}.{sig}"


def _confused(idp: SamlTestIdp) -> str:
    now = int(idp.clock())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "x",
        "iat": now,
        "exp": now + 300,
        "groups": ["deployers"],
    }
    return hmac_signed({"alg": "HS256", "kid": idp.access_tokens.key.kid}, claims, _public_pem(idp))


REFUSED: dict[str, tuple[Any, int, str]] = {
    "forged signature": (_forged, 401, "token_invalid"),
    "another key": (
        lambda i: i.access_token(
            groups=["deployers"],
            signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ),
        401,
        "token_invalid",
    ),
    "expired": (
        lambda i: i.access_token(groups=["deployers"], claims={"exp": int(i.clock()) - 3600}),
        401,
        "token_expired",
    ),
    "wrong audience": (
        lambda i: i.access_token(groups=["deployers"], claims={"aud": "api://other"}),
        401,
        "token_wrong_audience",
    ),
    "wrong issuer": (
        lambda i: i.access_token(
            groups=["deployers"], claims={"iss": "https://evil.test/oauth2/default"}
        ),
        401,
        "token_wrong_issuer",
    ),
    "alg none": (
        lambda i: jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": "x",
                "exp": int(i.clock()) + 300,
                "groups": ["deployers"],
            },
            None,
            algorithm="none",
            headers={"kid": i.access_tokens.key.kid},
        ),
        401,
        "token_invalid",
    ),
    "HS256 keyed with the public key": (_confused, 401, "token_invalid"),
    "unknown gate token": (lambda i: new_token(), 401, "token_invalid"),
    "garbage": (lambda i: "not.a.jwt", 401, "token_invalid"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_tokens(site: Site, case: str) -> None:
    make, status, code = REFUSED[case]
    refused(await site.get("/api/x", make(site.idp)), status, code)
    [event] = await site.token_events()
    assert (event.outcome, event.error_code) == ("failure", code)
    assert make(site.idp)[:12] not in repr(event)  # the token is never in an event


@pytest.mark.parametrize(
    "query", ["access_token={token}", "a=1&ACCESS_TOKEN={token}", "access_token="]
)
async def test_a_token_in_the_query_string_is_refused_even_with_a_session(
    site: Site, query: str
) -> None:
    browser = site.client()
    await site.idp.sign_in_async(browser, email=ANN, groups=["deployers"], path="/api/x")
    token = site.idp.access_token(groups=["deployers"])
    answer = await browser.get("/api/x?" + query.format(token=token), headers=JSON)
    refused(answer, 400, "token_in_query")


async def test_a_token_in_a_cookie_is_not_read(site: Site) -> None:
    client = site.client()
    client.cookies.set("access_token", site.idp.access_token(groups=["deployers"]))
    answer = await client.get("/api/x", headers=JSON)
    refused(answer, 401, "not_authenticated")


@pytest.mark.parametrize(
    "header",
    [
        [
            ("authorization", "Bearer"),
        ],
        [("authorization", "Bearer a b")],
        [("authorization", "Bearer x"), ("authorization", "Bearer y")],
    ],
    ids=["no token", "two words", "two headers"],
)
async def test_malformed_authorization_is_refused(
    site: Site, header: list[tuple[str, str]]
) -> None:
    answer = await site.client().get("/api/x", headers=[("accept", "application/json"), *header])
    refused(answer, 401, "token_invalid")


# ------------------------------------------------------------------------ rules
def test_accept_in_rules_and_their_text_form() -> None:
    assert Rule("/a/").accept == ("session",)
    assert Rule.parse("/a/ accept=session,token").accept == ("session", "token")
    assert Rule.parse("/a/ accept=token groups=ci").accept == ("token",)
    for bad in (
        "/a/ accept=cookie",
        "/a/ accept=token max_authn_age=60",
        "/a/ public accept=token",
    ):
        with pytest.raises(ConfigError, match=r"accept|step-up|public"):
            Rule.parse(bad)
    with pytest.raises(ConfigError, match="step-up"):
        Rule("/a/", accept=("token",), authn_contexts="urn:x")


async def test_without_a_token_rule_nothing_changes(saml_idp: SamlTestIdp) -> None:
    gate = SamlGate(Starlette(routes=[Route("/{rest:path}", whoami)]), **saml_idp.gate_options())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://testserver"
    ) as c:
        answer = await c.get(
            "/x", headers={**JSON, "authorization": f"Bearer {saml_idp.access_token()}"}
        )
    await gate.stop()
    refused(answer, 403, "token_not_accepted")


async def test_a_service_is_never_due_for_reassertion(site: Site) -> None:
    """``reassert_interval`` is the IdP's word on a person: a token older than it still works,
    and a service's WebSocket is not closed for it (the watch reads the same deadline)."""
    from saml_gate.session.decision import reassertion_deadline

    token = await site.gate_token()
    site.idp.clock.advance(7 * 86400)
    answer = await site.get("/api/x", token)
    assert answer.status_code == 200 and answer.json()["kind"] == "service"
    user = await site.gate_tokens().principal(token)
    assert reassertion_deadline(user, 900) == float("inf")
