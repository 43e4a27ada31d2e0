"""WebSockets through a real uvicorn server, with a real WebSocket client (``websockets``).

uvicorn offers the ``websocket.http.response`` extension, so the gate's refusals before accept
arrive as real HTTP 401 / 403 answers to the handshake; a signed-in handshake reaches the app
with ``scope["user"]``. ``serve`` is shared with the reverse-proxy tests.
"""

from __future__ import annotations

import importlib.util
import json
import logging
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
async def serve(
    app: ASGIApp, *, lifespan: str = "auto", ws: str = "websockets-sansio"
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in this event loop: ``host:port``.

    Like ``saml-gate run`` / ``proxy``, without uvicorn's proxy-header rewriting. ``ws``: uvicorn's
    WebSocket implementation (``auto``, what those commands use, picks ``websockets-sansio``)."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else Nagle adds 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # h11: the parser of a default install (httptools, in the test environment for the
    # benchmark's fast stack, would otherwise be picked and refuse some requests itself).
    config = uvicorn.Config(
        app, log_level="warning", ws=ws, lifespan=lifespan, proxy_headers=False, http="h11"
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


# ---------------------------------------------------------------------- what the server logs
LEGACY_WARNINGS = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::uvicorn.config.UvicornDeprecationWarning"
)
WS_IMPLEMENTATIONS = [
    "websockets-sansio",  # the tests' choice, and what "auto" (saml-gate run / proxy) picks
    pytest.param("websockets", marks=LEGACY_WARNINGS),
    pytest.param(
        "wsproto",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("wsproto") is None, reason="wsproto is not installed"
        ),
    ),
]


@asynccontextmanager
async def serve_watched(
    app: ASGIApp, caplog: pytest.LogCaptureFixture, **options: Any
) -> AsyncIterator[str]:
    """``serve``, with uvicorn's error log (and the gate's, from DEBUG) in ``caplog`` until the
    server has stopped: uvicorn reports an app's failure when its task ends, and stopping waits
    for every task, so nothing is missed once this exits."""
    caplog.set_level(logging.DEBUG, logger="saml_gate")
    uvicorn_log = logging.getLogger("uvicorn.error")
    try:
        async with serve(app, **options) as address:
            uvicorn_log.addHandler(caplog.handler)  # after uvicorn's logging config reset it
            yield address
    finally:
        uvicorn_log.removeHandler(caplog.handler)


def server_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What uvicorn or the gate logged at ERROR or with a traceback."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("uvicorn", "saml_gate"))
        and (record.levelno >= logging.ERROR or record.exc_info)
    ]


@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_refused_handshakes_log_no_error(
    make_harness: Any, caplog: pytest.LogCaptureFixture, ws: str
) -> None:
    """uvicorn 0.54's websockets-sansio logged "ASGI callable returned without completing
    handshake." at ERROR after every refusal sent as an HTTP answer (saml_gate.web.ws_refusal)."""
    h: Harness = make_harness(authorized_groups=["finance"])
    await h.login()
    signed_in = [("Cookie", session_cookie(h))]
    async with serve_watched(h.gate, caplog, ws=ws) as address:
        assert await refused_status(f"ws://{address}/ws") == 401
        assert await refused_status(f"ws://{address}/ws", additional_headers=signed_in) == 403
        assert await refused_status(f"ws://{address}/saml/acs") == 403
    assert server_problems(caplog) == []
