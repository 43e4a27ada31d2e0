"""WebSockets: refused before accept without a session, identity attached with one.

Driven with raw ASGI messages so that both server capabilities are covered: with the
``websocket.http.response`` extension the refusal is a real HTTP 401/403, without it a close
with code 1008 before accept.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message

from tests.support import Harness

pytestmark = pytest.mark.anyio


async def ws_call(
    h: Harness, cookie: str | None, *, denial_extension: bool, path: str = "/ws"
) -> list[Message]:
    inbox: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
        "subprotocols": [],
        "asgi": {"version": "3.0"},
        "extensions": {"websocket.http.response": {}} if denial_extension else {},
    }
    await h.gate(scope, receive, send)
    return sent


async def test_refused_with_close_1008_before_accept(harness: Harness) -> None:
    sent = await ws_call(harness, None, denial_extension=False)
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_refused_with_http_401_where_supported(harness: Harness) -> None:
    sent = await ws_call(harness, None, denial_extension=True)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
    assert all(m["type"] != "websocket.accept" for m in sent)


async def test_forged_cookie_is_refused(harness: Harness) -> None:
    sent = await ws_call(harness, "saml_gate_session=forged.value", denial_extension=False)
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_accepted_with_a_session(harness: Harness) -> None:
    await harness.login()
    cookie = "saml_gate_session=" + str(harness.client.cookies.get("saml_gate_session"))
    sent = await ws_call(harness, cookie, denial_extension=True)
    assert sent[0]["type"] == "websocket.accept"
    assert b"alice@example.com" in sent[1]["text"].encode()


async def test_forbidden_group_is_refused_with_403(make_harness: Any) -> None:
    h = make_harness(authorized_groups=["finance"])
    await h.login()
    cookie = "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))
    sent = await ws_call(h, cookie, denial_extension=True)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 403


async def test_gate_paths_refuse_websockets(harness: Harness) -> None:
    sent = await ws_call(harness, None, denial_extension=False, path="/saml/acs")
    assert sent == [{"type": "websocket.close", "code": 1008}]
