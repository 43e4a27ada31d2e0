"""A WebSocket opened before its session ends is closed (1008) when it ends: sign-out, IdP logout,
an admin revoke seen through Redis, or the session's expiry; in the gate and in proxy mode.

Through uvicorn with a real WebSocket client. The gate's watcher waits on the revocation view
(told at once on this process, through Redis pub/sub on the others), so nothing here is timed:
each test waits (with a generous hang guard) for the close and checks its code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from saml_gate import SamlGate
from saml_gate.proxy import ReverseProxy, build_proxy_app
from tests.conftest import TEST_REDIS_URL
from tests.support import BASE_URL, FrozenClock, Harness, gate_options
from tests.test_websocket_uvicorn import serve, session_cookie

pytestmark = pytest.mark.anyio

websockets = pytest.importorskip("websockets", reason="pip install -e '.[test]'")
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.asyncio.server import ServerConnection  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

HANG_GUARD = 30.0  # far above any propagation; a guard against hangs, not a timing assertion
app_ends: list[str] = []


async def hold(websocket: WebSocket) -> None:
    """Accept, say hello, echo until the client (or the gate) ends it."""
    await websocket.accept()
    await websocket.send_text("hello")
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect as end:
        app_ends.append(f"disconnect {end.code}")


HOLD_APP = Starlette(routes=[WebSocketRoute("/hold", hold)])


@pytest.fixture
async def gates(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Callable[..., Harness]]:
    build = lambda options: SamlGate(HOLD_APP, **options)  # noqa: E731
    async for factory in _factory(idp_keys, sp_keys, clock, tmp_path, build):
        yield factory


@asynccontextmanager
async def _closing(harnesses: list[Harness]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for h in harnesses:
            await h.client.aclose()
            await h.gate.stop()
            if isinstance(h.gate.app, ReverseProxy):
                await h.gate.app.aclose()


async def _factory(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path, build: Callable[..., Any]
) -> AsyncIterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def factory(**overrides: Any) -> Harness:
        gate = build(gate_options(idp_keys, sp_keys, clock, str(tmp_path), **overrides))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        h = Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)
        harnesses.append(h)
        return h

    async with _closing(harnesses):
        yield factory


async def opened(address: str, h: Harness, cookie: str | None = None) -> ClientConnection:
    headers = [("Cookie", cookie or session_cookie(h))]
    ws = await connect(f"ws://{address}/hold", additional_headers=headers)
    assert await ws.recv() == "hello"
    await ws.send("ping")
    assert await ws.recv() == "ping"
    return ws


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the server to close ``ws``; its close code and reason."""
    with anyio.fail_after(HANG_GUARD):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
    return ws.close_code, ws.close_reason


async def sign_out(h: Harness) -> None:
    page = await h.client.get("/saml/logout")
    token = page.text.split("name=token value='")[1].split("'")[0]
    out = await h.client.post("/saml/logout", data={"token": token})
    assert out.status_code in (200, 303)


async def test_sign_out_closes_an_open_websocket(gates: Callable[..., Harness]) -> None:
    h = gates()
    await h.login()
    app_ends.clear()
    async with serve(h.gate) as address:
        ws = await opened(address, h)
        other = await opened(address, h)
        cookie = session_cookie(h)
        await sign_out(h)
        assert await closed_with(ws) == (1008, "session ended")
        assert await closed_with(other) == (1008, "session ended")
        with pytest.raises(InvalidStatus) as refused:  # and a new handshake is refused
            await opened(address, h, cookie)
        assert refused.value.response.status_code == 401
    assert app_ends == ["disconnect 1008", "disconnect 1008"]  # the app saw the end


async def test_expiry_closes_an_open_websocket(
    gates: Callable[..., Harness], clock: FrozenClock
) -> None:
    h = gates()
    await h.login()
    async with serve(h.gate) as address:
        ws = await opened(address, h)
        h.clock.advance(8 * 3600 + 1)  # past maximum_duration
        assert await closed_with(ws) == (1008, "session ended")


async def test_a_websocket_of_a_live_session_stays_open(gates: Callable[..., Harness]) -> None:
    h = gates()
    await h.login()
    async with serve(h.gate) as address:
        ws = await opened(address, h)
        bystander = gates()
        await bystander.login(name_id="bob@example.com")
        await sign_out(bystander)  # another person's sign-out
        await ws.send("still here")
        assert await ws.recv() == "still here"
        await ws.close()
        assert ws.close_code == 1000


async def test_revocation_on_another_gate_closes_the_websocket_through_redis(
    gates: Callable[..., Harness], redis_prefix: str
) -> None:
    """Two gates sharing Redis: the session is ended on one, the WebSocket is open on the other
    (which learns it through pub/sub)."""
    one = gates(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    other = gates(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    await one.login()
    other.client.cookies.set("saml_gate_session", one.client.cookies["saml_gate_session"])
    async with serve(other.gate) as address:
        ws = await opened(address, other)
        await sign_out(one)
        assert await closed_with(ws) == (1008, "session ended")


# ---------------------------------------------------------------------- proxy mode
@pytest.fixture
async def proxies(
    idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Callable[..., Harness]]:
    def build(options: dict[str, Any]) -> Any:
        upstream = options.pop("upstream")
        return build_proxy_app(upstream, **options)

    async for factory in _factory(idp_keys, sp_keys, clock, tmp_path, build):
        yield factory


@asynccontextmanager
async def echo_upstream() -> AsyncIterator[tuple[str, list[int | None]]]:
    """A WebSocket server that says hello, echoes, and records how each connection ended."""
    ends: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        await connection.send("hello")
        try:
            async for message in connection:
                await connection.send(message)
        finally:
            ends.append(connection.close_code)

    async with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}", ends


async def test_proxy_mode_closes_both_sides_when_the_session_ends(
    proxies: Callable[..., Harness],
) -> None:
    async with echo_upstream() as (upstream, ends):
        h = proxies(upstream=upstream)
        await h.login()
        async with serve(h.gate, lifespan="on") as address:
            ws = await opened(address, h)
            await sign_out(h)
            assert await closed_with(ws) == (1008, "session ended")
            with anyio.fail_after(HANG_GUARD):
                while not ends:
                    await anyio.sleep(0.01)
    assert ends == [1008]  # the upstream was told too


async def test_a_websocket_closes_when_its_session_is_due_for_reassertion(
    gates: Callable[..., Harness],
) -> None:
    """Only a page load can ask the IdP again (reassert_interval): nothing is served on an
    older word, so an open WebSocket ends at the deadline and a new handshake is refused."""
    h = gates(reassert_interval=900)
    await h.login()
    async with serve(h.gate) as address:
        ws = await opened(address, h)
        h.clock.advance(899)
        await ws.send("within the interval")
        assert await ws.recv() == "within the interval"
        h.clock.advance(2)
        assert await closed_with(ws) == (1008, "session ended")
        with pytest.raises(InvalidStatus) as refused:
            await opened(address, h)
        assert refused.value.response.status_code == 401
