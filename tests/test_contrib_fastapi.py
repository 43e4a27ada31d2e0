"""FastAPI dependencies (saml_gate.contrib.fastapi), Starlette's auth conventions, the example.

The dependencies answer 401 where there is no identity and 403 for missing groups, appear in
the OpenAPI schema as the session cookie with the groups as roles, and refuse WebSockets with
a policy close. Starlette's ``request.user``, ``request.auth.scopes`` and ``@requires`` work
unchanged behind the gate. The FastAPI example is driven through the gate, its WebSocket
through uvicorn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.fastapi_app.main import create_app
from fastapi import Depends, FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.contrib.fastapi import (
    GATE_RESPONSES,
    CurrentUser,
    OptionalUser,
    SamlSession,
    require_groups,
    require_user,
)
from saml_gate.user import SamlUser
from tests.support import BASE_URL, FrozenClock, Harness, decode_redirect_request, gate_options
from tests.test_websocket_uvicorn import serve, session_cookie

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}
BOB = {
    "name_id": "bob@example.com",
    "attributes": {"email": ["bob@example.com"], "displayName": ["Bob"], "groups": ["users"]},
}


def api_app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"name_id": user.name_id}

    @app.get("/plain", dependencies=[Depends(require_user)])
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/admins", dependencies=[Depends(require_groups("admins"))], responses=GATE_RESPONSES)
    async def admins() -> dict[str, str]:
        return {"ok": "admins"}

    @app.get("/finance-or-legal")
    async def finance(
        user: SamlUser = Depends(require_groups("finance", "legal")),  # noqa: B008
    ) -> dict[str, str]:
        return {"ok": user.name_id}

    @app.get("/public/me")
    async def public_me(user: CurrentUser) -> dict[str, Any]:
        return {"name_id": user.name_id}

    @app.get("/public/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"user": user.name_id if user else None}

    @app.websocket("/public/ws")
    async def public_ws(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()

    return app


def starlette_app() -> Starlette:
    @requires("group:admins")
    async def admins(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name, "scopes": request.auth.scopes})

    @requires("group:finance")
    async def finance(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @requires("authenticated")
    async def anyone(request: Request) -> JSONResponse:
        return JSONResponse({"authenticated": request.user.is_authenticated})

    return Starlette(
        routes=[
            Route("/admins", admins),
            Route("/finance", finance),
            Route("/anyone", anyone),
            Route("/public/anyone", anyone),
        ]
    )


@pytest.fixture
async def make_gate(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Callable[..., Harness]]:
    clients: list[httpx.AsyncClient] = []

    def factory(app: Any, **options: Any) -> Harness:
        gate = SamlGate(app, **gate_options(idp_keys, sp_keys, clock, str(tmp_path), **options))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        clients.append(client)
        return Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)

    yield factory
    for client in clients:
        await client.aclose()


# ---------------------------------------------------------------------- dependencies
async def test_dependencies_answer_401_and_403(make_gate: Callable[..., Harness]) -> None:
    h = make_gate(api_app(), public_paths=["/public/"])
    r = await h.client.get("/public/me?x=1", headers=JSON)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'SAML realm="saml-gate"'
    detail = r.json()["detail"]
    assert detail["error"] == "not_authenticated"
    assert detail["login_url"] == "/saml/login?return_to=%2Fpublic%2Fme%3Fx%3D1"
    assert (await h.client.get("/public/maybe")).json() == {"user": None}

    await h.login()
    assert (await h.client.get("/me", headers=JSON)).json() == {"name_id": "alice@example.com"}
    assert (await h.client.get("/plain", headers=JSON)).json() == {"ok": "yes"}
    assert (await h.client.get("/admins", headers=JSON)).json() == {"ok": "admins"}
    # a public path tells who is signed in (anonymous above, without a session)
    assert (await h.client.get("/public/maybe")).json() == {"user": "alice@example.com"}
    assert (await h.client.get("/public/me", headers=JSON)).status_code == 200
    denied = await h.client.get("/finance-or-legal", headers=JSON)
    assert denied.status_code == 403 and denied.json()["detail"]["error"] == "forbidden"


async def test_groups_are_any_of(make_gate: Callable[..., Harness]) -> None:
    h = make_gate(api_app())
    legal = {"email": ["bob@example.com"], "groups": ["legal"]}
    await h.login(name_id="bob@example.com", attributes=legal)
    assert (await h.client.get("/finance-or-legal", headers=JSON)).status_code == 200
    assert (await h.client.get("/admins", headers=JSON)).status_code == 403


async def test_require_groups_needs_a_group() -> None:
    with pytest.raises(ValueError, match="at least one group"):
        require_groups()


def test_openapi_shows_the_session_cookie_and_the_groups() -> None:
    schema = api_app().openapi()
    scheme = schema["components"]["securitySchemes"]["saml-gate"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "cookie"
    assert scheme["name"] == "saml_gate_session"
    paths = schema["paths"]
    assert paths["/me"]["get"]["security"] == [{"saml-gate": []}]
    assert paths["/plain"]["get"]["security"] == [{"saml-gate": []}]
    assert paths["/admins"]["get"]["security"] == [{"saml-gate": ["group:admins"]}]
    assert paths["/finance-or-legal"]["get"]["security"] == [
        {"saml-gate": ["group:finance", "group:legal"]}
    ]
    assert {"401", "403"} <= set(paths["/admins"]["get"]["responses"])
    assert "security" not in paths["/public/maybe"]["get"]


def test_custom_cookie_name_and_prefix() -> None:
    scheme = SamlSession(cookie_name="acme_session", prefix="/sso", scheme_name="sso")
    assert scheme.model.model_dump(by_alias=True)["name"] == "acme_session"
    assert scheme.login_path == "/sso/login" and scheme.scheme_name == "sso"


async def test_websocket_dependency_refuses_with_a_policy_close(
    make_gate: Callable[..., Harness],
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    h = make_gate(api_app(), public_paths=["/public/"])
    async with serve(h.gate) as address:
        with pytest.raises(InvalidStatus) as info:  # closed before accept: uvicorn answers 403
            async with connect(f"ws://{address}/public/ws"):
                pass
    assert info.value.response.status_code == 403


# ---------------------------------------------------------------------- Starlette
async def test_starlette_auth_conventions_work_unchanged(
    make_gate: Callable[..., Harness],
) -> None:
    h = make_gate(starlette_app(), public_paths=["/public/"])
    assert (await h.client.get("/public/anyone")).status_code == 403  # @requires: anonymous
    await h.login()
    admins = await h.client.get("/admins")
    assert admins.status_code == 200
    assert admins.json() == {
        "user": "Alice Admin",
        "scopes": ["authenticated", "group:admins", "group:users"],
    }
    assert (await h.client.get("/finance")).status_code == 403
    assert (await h.client.get("/anyone")).json() == {"authenticated": True}


# ---------------------------------------------------------------------- the example
@pytest.fixture
async def example(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Harness]:
    app = create_app(**gate_options(idp_keys, sp_keys, clock, str(tmp_path)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield Harness(gate=app, client=c, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)  # type: ignore[arg-type]


async def test_example_page_api_and_public_health(example: Harness) -> None:
    assert (await example.client.get("/healthz")).text == "ok"
    assert (await example.client.get("/api/me", headers=JSON)).status_code == 401
    await example.login("/")
    page = await example.client.get("/", headers=HTML)
    assert page.status_code == 200 and "Hello, Alice Admin" in page.text
    me = (await example.client.get("/api/me", headers=JSON)).json()
    assert me["email"] == "alice@example.com" and me["groups"] == ["admins", "users"]
    stats = await example.client.get("/api/admin/stats", headers=JSON)
    assert stats.json() == {"requested_by": "alice@example.com", "groups": ["admins", "users"]}
    assert (await example.client.get("/admin", headers=HTML)).status_code == 200


async def test_example_admin_is_for_admins_only(example: Harness) -> None:
    await example.login("/", **BOB)
    assert (await example.client.get("/", headers=HTML)).status_code == 200
    page = await example.client.get("/admin", headers=HTML)
    assert page.status_code == 403
    api = await example.client.get("/api/admin/stats", headers=JSON)
    assert api.status_code == 403 and api.json()["detail"]["error"] == "forbidden"


async def test_example_admin_needs_a_recent_sign_in(example: Harness) -> None:
    await example.login("/")
    example.clock.advance(700)
    assert (await example.client.get("/", headers=HTML)).status_code == 200
    r = await example.client.get("/admin", headers=HTML)
    assert r.status_code == 303
    request, _ = decode_redirect_request(r.headers["location"])
    assert request.get("ForceAuthn") == "true"


async def test_example_websocket_through_uvicorn(example: Harness) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    await example.login("/")
    async with serve(example.gate) as address:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{address}/ws"):
                pass
        assert info.value.response.status_code == 401
        headers = [("Cookie", session_cookie(example))]
        async with connect(f"ws://{address}/ws", additional_headers=headers) as ws:
            hello = json.loads(await ws.recv())
            assert hello == {"hello": "alice@example.com", "groups": ["admins", "users"]}
            await ws.send("ping")
            assert await ws.recv() == "Alice Admin: ping"
