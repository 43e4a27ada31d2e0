"""Relaying a WebSocket to the upstream, message by message.

An upstream refusing the handshake passes its 4xx/5xx status on (other answers are a 502, as is
an unreachable upstream); close codes and reasons are relayed both ways, and an upstream that
drops its connection is closed to the client with 1014 (Bad Gateway). However a relayed
WebSocket ends, the proxy logs one line and no traceback.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio
from starlette.types import Message, Receive, Scope, Send

from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.proxy.failures import describe_exception, log
from saml_gate.proxy.headers import HeaderRules
from saml_gate.proxy.http import request_target
from saml_gate.web.ws_refusal import refuse_handshake

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

_MAX_WS_MESSAGE: Final = 16 * 1024 * 1024  # uvicorn's default for client messages


class WebSocketForwarder:
    """Opens the upstream WebSocket for each client handshake, then relays it."""

    def __init__(self, settings: ProxySettings, headers: HeaderRules) -> None:
        self._ws_origin = "ws" + settings.upstream[4:]
        self._headers = headers
        self._connect_timeout = settings.connect_timeout

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay one WebSocket from its handshake to its end."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in self._headers.request_headers(scope, websocket=True)
        ]
        path = scope["path"]
        try:
            upstream = await connect(
                self._ws_origin + request_target(scope),
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                user_agent_header=None,
                proxy=None,
                open_timeout=self._connect_timeout,
                max_size=_MAX_WS_MESSAGE,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            log.info("saml-gate proxy: WebSocket %r: the upstream refused it (%d)", path, status)
            await _refuse(scope, receive, send, status if status >= 400 else 502)
            return
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning(
                "saml-gate proxy: WebSocket %r: upstream_unavailable (%s)",
                path,
                describe_exception(exc),
                extra={"event": "proxy_error", "error_code": "upstream_unavailable"},
            )
            await _refuse(scope, receive, send, 502)
            return
        async with upstream:
            try:
                await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            except OSError:  # the client left while the upstream answered
                log.debug("saml-gate proxy: WebSocket %r: the client left before accept", path)
                return
            level, ending = await _Relay(receive, send, upstream).run()
        log.log(level, "saml-gate proxy: WebSocket %r %s", path, ending)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int) -> None:
    """Refuse the client's handshake because the upstream refused or failed it."""
    body = b'{"error":"upstream_refused"}' if status < 500 else b'{"error":"bad_gateway"}'
    close_code = 1008 if status < 500 else 1011
    await refuse_handshake(scope, receive, send, status=status, body=body, close_code=close_code)


class _Relay:
    """One accepted WebSocket, relayed message by message both ways until one side ends; the
    other side is then ended with the same close code (an upstream gone without a closing
    handshake as 1014, Bad Gateway).

    However it ends, nothing is raised: the client may be gone whenever the proxy sends to it
    (uvicorn raises ``ClientDisconnected``, an ``OSError``; its ``websocket.disconnect`` follows)
    and the upstream whenever the proxy sends upstream (``ConnectionClosed``). An exception from
    either direction would leave the task group as an exception group, which the ASGI server
    logs with a traceback.
    """

    def __init__(self, receive: Receive, send: Send, upstream: ClientConnection) -> None:
        self.receive = receive
        self.send = send
        self.upstream = upstream
        self.client_end: Message | None = None

    async def run(self) -> tuple[int, str]:
        """Relay until the end: a log level and what happened, for one log line."""
        told: int | None = None  # stays None when the client ended first
        async with anyio.create_task_group() as group:
            group.start_soon(self._from_client, group.cancel_scope)
            told = await self._from_upstream()
            if told is not None:
                group.cancel_scope.cancel()
            # else the client is gone and _from_client ends the relay on its disconnect
        if told is not None:  # the upstream ended first (any disconnect since is the echo)
            if told == 1014:
                return logging.INFO, "dropped by the upstream (told the client 1014)"
            return logging.DEBUG, f"closed by the upstream ({told})"
        if self.client_end is None:  # the upstream closed as the client left
            return logging.DEBUG, "closed by both sides"
        code = int(self.client_end.get("code", 1000))
        reason = str(self.client_end.get("reason") or "")
        if _sendable(code):
            await self.upstream.close(code, reason)
        else:  # 1005 (no code, or a dropped connection), 1006
            await self.upstream.close(1000)
        return logging.DEBUG, f"closed by the client ({code})"

    async def _from_client(self, relay: anyio.CancelScope) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                self.client_end = message
                relay.cancel()  # before anything more is sent to the client
                return
            if message["type"] == "websocket.receive":
                text = message.get("text")
                try:
                    await self.upstream.send(
                        text if text is not None else message.get("bytes") or b""
                    )
                except ConnectionClosed:  # _from_upstream reports the upstream's end
                    return

    async def _from_upstream(self) -> int | None:
        """The upstream's messages, then its close, to the client: the close code sent, or
        None when the client was gone."""
        from websockets.exceptions import ConnectionClosed

        upstream = self.upstream
        try:
            try:
                async for data in upstream:
                    key = "text" if isinstance(data, str) else "bytes"
                    await self.send({"type": "websocket.send", key: data})
            except ConnectionClosed:  # ended without a closing handshake
                pass
            code, reason = upstream.close_code, upstream.close_reason or ""
            if code is None or code == 1006:  # the connection dropped
                code, reason = 1014, ""
            elif not _sendable(code):  # 1005: closed without a code
                code, reason = 1000, ""
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:  # the client is gone (uvicorn's ClientDisconnected)
            return None
        return code


def _sendable(code: int) -> bool:
    """Close codes an endpoint may send (1005, 1006 and 1015 are reserved for reporting)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000
