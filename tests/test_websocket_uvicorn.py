"""WebSockets through a real uvicorn server, with a real WebSocket client (``websockets``).

uvicorn offers the ``websocket.http.response`` extension, so the gate's refusals before accept
arrive as real HTTP 401 / 403 answers to the handshake; a signed-in handshake reaches the app
with ``scope["user"]``. ``serve`` is shared with the reverse-proxy tests.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import uvicorn
from starlette.types import ASGIApp

from tests.support import Harness

pytestmark = pytest.mark.anyio

websockets = pytest.importorskip(
    "websockets", reason="needs the websockets package: pip install -e '.[test]'"
)
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402


@asynccontextmanager
async def serve(app: ASGIApp, *, lifespan: str = "auto") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in this event loop: ``host:port``.

    Like ``saml-gate run`` / ``proxy``, without uvicorn's proxy-header rewriting."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else Nagle adds 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", ws="websockets-sansio", lifespan=lifespan, proxy_headers=False
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(30):  # a server that cannot start fails the test, not hangs it
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


def session_cookie(h: Harness) -> str:
    return "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))


async def refused_status(url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **options):
            pass
    return info.value.response.status_code


async def test_unauthenticated_handshake_gets_http_401(harness: Harness) -> None:
    async with serve(harness.gate) as address:
        assert await refused_status(f"ws://{address}/ws") == 401
        forged = [("Cookie", "saml_gate_session=forged.value")]
        assert await refused_status(f"ws://{address}/ws", additional_headers=forged) == 401


async def test_signed_in_handshake_reaches_the_app_with_the_user(harness: Harness) -> None:
    await harness.login()
    async with serve(harness.gate) as address:
        headers = [("Cookie", session_cookie(harness))]
        async with connect(f"ws://{address}/ws", additional_headers=headers) as ws:
            assert json.loads(await ws.recv()) == {"user": "alice@example.com"}


async def test_signed_in_but_not_allowed_gets_http_403(make_harness: Any) -> None:
    h: Harness = make_harness(authorized_groups=["finance"])
    await h.login()
    async with serve(h.gate) as address:
        headers = [("Cookie", session_cookie(h))]
        assert await refused_status(f"ws://{address}/ws", additional_headers=headers) == 403
