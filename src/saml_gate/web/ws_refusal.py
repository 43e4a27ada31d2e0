"""Refusing a WebSocket handshake before accept: shared by the gate and the reverse proxy."""

from __future__ import annotations

from typing import Final

import anyio
from starlette.types import Receive, Scope, Send

DENIAL_EXTENSION: Final = "websocket.http.response"
"""The ASGI extension that lets an app answer a handshake with any HTTP response."""
SETTLE_SECONDS: Final = 2.0
"""How long a refusal waits for the server to report the connection closed (see below)."""


async def refuse_handshake(
    scope: Scope, receive: Receive, send: Send, *, status: int, body: bytes, close_code: int
) -> None:
    """Answer a handshake whose ``websocket.connect`` was received: an HTTP ``status`` with a
    JSON ``body`` where the server offers :data:`DENIAL_EXTENSION`, else a close before accept
    with ``close_code`` (the server then answers 403, as the core ASGI spec says).

    After an HTTP answer the app waits until the server has dropped the connection. uvicorn
    0.54's ``websockets-sansio`` protocol (``websockets_sansio_impl.py``: ``send()`` finishing a
    ``websocket.http.response.body`` sets ``close_sent`` but never ``handshake_complete``) marks
    the handshake complete only in ``connection_lost``; an app that returns before that gets
    "ASGI callable returned without completing handshake." logged at ERROR by ``run_asgi``
    (Kludex/uvicorn PR #3138). That protocol reports two ``websocket.disconnect``: one queued
    with the response, one from ``connection_lost``. Waiting for the second costs a turn of the
    event loop (uvicorn's ``wsproto`` protocol reports the end twice too, its legacy
    ``websockets`` one on every call); the bound keeps a server that reports it once from
    holding the app longer.
    """
    if DENIAL_EXTENSION not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": close_code})
        return
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
    disconnects = 0
    with anyio.move_on_after(SETTLE_SECONDS):
        while disconnects < 2:
            if (await receive())["type"] == "websocket.disconnect":
                disconnects += 1


__all__ = ["DENIAL_EXTENSION", "refuse_handshake"]
