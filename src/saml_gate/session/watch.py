"""Sessions end where they are used: a WebSocket outlives no revocation and no expiry.

A WebSocket is authenticated once, at its handshake; it can stay open for hours. While the app
serves it, :class:`SessionWatch` waits for its session to be revoked (the revocation view is
told at once, on this process or through the store's feed) or to reach its ``expires_at`` (or,
with ``reassert_interval``, the moment the IdP's word on it runs out: only a page load can ask
the IdP again, and nothing is served on an older word). Then
it closes the socket with 1008 (policy violation) and, from then on, the app's ``receive`` says
the client disconnected (code 1008) and its ``send`` raises :class:`SessionEnded` (an
``OSError``, as uvicorn's ``ClientDisconnected``), so an app or the reverse proxy ends as it
does when a client leaves. While the feed is down the store is asked every ``POLL`` seconds; an
unreachable store never closes a socket (``store_outage`` is about new requests).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Final

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saml_gate.session.decision import reassertion_deadline
from saml_gate.session.revocation import Revocations
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate")

POLL: Final = 1.0
CLOSE_REASON: Final = "session ended"


class SessionEnded(OSError):
    """The app sent on a WebSocket the gate closed because its session ended."""


class SessionWatch:
    def __init__(
        self,
        revocations: Revocations,
        clock: Callable[[], float],
        reassert_interval: float | None = None,
    ) -> None:
        self._revocations = revocations
        self._clock = clock
        self._reassert_interval = reassert_interval

    async def run(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, user: SamlUser
    ) -> None:
        """Serve the WebSocket with ``app`` until it ends; close it (1008) when ``user``'s
        session does first."""
        socket = _WatchedSocket(receive, send)
        view = self._revocations.view
        revoked = view.watch(user.session_id)
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    why = await self._until_ended(user, revoked)
                    log.info(
                        "saml-gate closed a WebSocket of %s: the session was %s",
                        user.name_id,
                        why,
                        extra={"event": "websocket_session_ended", "name_id": user.name_id},
                    )
                    await socket.end()

                group.start_soon(watch)
                await app(scope, socket.receive, socket.send)
                group.cancel_scope.cancel()
        finally:
            view.unwatch(user.session_id, revoked)

    async def _until_ended(self, user: SamlUser, revoked: anyio.Event) -> str:
        """Wait until the session is revoked, expires or is due for re-assertion; which."""
        end, why = user.expires_at, "expired"
        interval = self._reassert_interval
        if interval is not None and reassertion_deadline(user, interval) < end:
            end, why = reassertion_deadline(user, interval), "due for re-assertion"
        while True:
            remaining = end - self._clock()
            if remaining <= 0:
                return why
            with anyio.move_on_after(min(remaining, POLL)):
                await revoked.wait()
            if revoked.is_set():
                return "revoked"
            if not self._revocations.view.live:  # no feed (or it is down): ask the store
                try:
                    if await self._revocations.is_revoked(user):
                        return "revoked"
                except StoreUnavailable:
                    pass


class _WatchedSocket:
    """The app's receive and send, until the gate ends the socket."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._ended = anyio.Event()
        self._closed = False  # the client was sent a close (by the app or by the gate)

    async def end(self) -> None:
        self._ended.set()
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):  # the client is gone already
                await self._send({"type": "websocket.close", "code": 1008, "reason": CLOSE_REASON})

    async def receive(self) -> Message:
        if self._ended.is_set():
            return _DISCONNECT
        message: Message | None = None
        async with anyio.create_task_group() as group:

            async def next_message() -> None:
                nonlocal message
                message = await self._receive()
                group.cancel_scope.cancel()

            group.start_soon(next_message)
            await self._ended.wait()
            group.cancel_scope.cancel()
        return message if message is not None else _DISCONNECT

    async def send(self, message: Message) -> None:
        if self._ended.is_set():
            raise SessionEnded("the session ended; the gate closed this WebSocket")
        if message["type"] == "websocket.close":
            self._closed = True
        await self._send(message)


_DISCONNECT: Final[Message] = {"type": "websocket.disconnect", "code": 1008, "reason": CLOSE_REASON}
