"""Test harness: a gate around a small Starlette app, a test IdP, a frozen clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from saml_gate import SamlGate
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml.keys import KeyPair

BASE_URL = "http://127.0.0.1:8000"
ACS_URL = BASE_URL + "/saml/acs"
ENTITY_ID = BASE_URL + "/saml/metadata"
IDP_ENTITY_ID = "http://www.okta.com/exkTESTIDP0000000001"
IDP_SSO_URL = "https://idp.example.test/app/sso/saml"
SECRET = "test-secret-0123456789-abcdefghijklmnop"
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC).timestamp()


class FrozenClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT MACed with HS256 by hand (PyJWT refuses a PEM key as an HMAC secret): the
    algorithm-confusion attack, with an RSA public key as ``secret``."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    if not user.is_authenticated:
        return JSONResponse({"anonymous": True})
    return JSONResponse(
        {"email": user.email, "groups": list(user.groups), "scopes": request.auth.scopes}
    )


async def echo_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.scope["user"].name_id})
    await websocket.close()


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", whoami),
            Route("/private/{rest:path}", whoami, methods=["GET", "POST", "HEAD"]),
            Route("/public/{rest:path}", whoami),
            Route("/health", lambda r: PlainTextResponse("ok")),
            WebSocketRoute("/ws", echo_ws),
        ]
    )


def decode_redirect_request(location: str) -> tuple[etree._Element, str | None]:
    """(AuthnRequest element, RelayState) from an HTTP-Redirect binding URL."""
    query = parse_qs(urlsplit(location).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    relay = query.get("RelayState", [None])[0]
    return etree.fromstring(xml), relay


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r"name=['\"]?([A-Za-z_]+)['\"]? value=['\"]([^'\"]*)['\"]", html))


@dataclass
class Harness:
    gate: SamlGate
    client: httpx.AsyncClient
    idp_keys: KeyPair
    sp_keys: KeyPair
    clock: FrozenClock
    defaults: dict[str, Any] = field(default_factory=dict)

    async def start_login(self, path: str = "/private/page") -> tuple[str, str]:
        """(request ID, RelayState) after a browser GET to a protected page."""
        r = await self.client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 303, r.text
        request, relay = decode_redirect_request(r.headers["location"])
        assert relay is not None
        return request.get("ID"), relay

    def spec(self, **overrides: Any) -> ResponseSpec:
        base = dict(
            issuer=IDP_ENTITY_ID,
            destination=ACS_URL,
            audience=ENTITY_ID,
            name_id="alice@example.com",
            attributes={
                "email": ["alice@example.com"],
                "displayName": ["Alice Admin"],
                "groups": ["admins", "users"],
            },
            now=self.clock.datetime,
        )
        base.update(self.defaults)
        base.update(overrides)
        return ResponseSpec(**base)

    def response_b64(self, spec: ResponseSpec, **issue: Any) -> str:
        keys = issue.pop("keys", self.idp_keys)
        return base64.b64encode(issue_response(spec, keys, **issue)).decode()

    async def post_acs(
        self, saml_response: str, relay_state: str | None = None, **extra: str
    ) -> httpx.Response:
        data = {"SAMLResponse": saml_response, **extra}
        if relay_state is not None:
            data["RelayState"] = relay_state
        return await self.client.post("/saml/acs", data=data)

    async def login(self, path: str = "/private/page", **spec: Any) -> httpx.Response:
        request_id, relay = await self.start_login(path)
        r = await self.post_acs(
            self.response_b64(self.spec(in_response_to=request_id, **spec)), relay
        )
        return r


def idp_metadata(keys: KeyPair, entity_id: str = IDP_ENTITY_ID) -> str:
    return idp_metadata_xml(
        entity_id=entity_id, sso_url=IDP_SSO_URL, slo_url=None, keypair=keys
    ).decode()


def gate_options(
    idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp: str, **overrides: Any
) -> dict[str, Any]:
    options: dict[str, Any] = dict(
        idp_metadata=idp_metadata(idp_keys),
        base_url=BASE_URL,
        secret_key=SECRET,
        sp_key=sp_keys.key_pem.decode(),
        sp_cert=sp_keys.cert_pem.decode(),
        clock=clock,
        state_dir=tmp,
    )
    options.update(overrides)
    return options


def started(gate: SamlGate) -> SamlGate:
    """``gate`` after its start-up work (what the lifespan startup runs), its background work
    stopped again: for tests that look at what start-up loads. Done in an event loop of its own
    on a thread, so that a test may call it from its own running loop. Raises ConfigError as the
    start-up does."""

    async def start_and_stop() -> None:
        await gate.start()
        await gate.stop()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, start_and_stop).result()
    return gate


def with_spec(spec: ResponseSpec, **changes: Any) -> ResponseSpec:
    return replace(spec, **changes)


class KitSite:
    """A gate trusting the test kit's IdP (``saml_idp``), the auth events it emits, and
    browsers for it (each an ``httpx.AsyncClient`` with its own cookie jar)."""

    def __init__(self, saml_idp: Any, **options: Any) -> None:
        from saml_gate.ops.events import AuthEvent

        self.idp = saml_idp
        self.events: list[AuthEvent] = []
        self.gate = SamlGate(
            make_app(), **saml_idp.gate_options(on_event=self.events.append, **options)
        )
        self.clients: list[httpx.AsyncClient] = []

    def browser(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.gate), base_url="http://testserver"
        )
        self.clients.append(client)
        return client

    async def signed_in(self, email: str, **person: Any) -> httpx.AsyncClient:
        """A new browser with ``email`` signed in through the gate's login and ACS."""
        client = self.browser()
        await self.idp.sign_in_async(client, email=email, **person)
        return client

    async def events_of(self, kind: str) -> list[Any]:
        """The ``kind`` events so far (the hooks run in the background: waited for)."""
        await self.gate.core.events.drain()
        return [e for e in self.events if e.event == kind]

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.gate.stop()
