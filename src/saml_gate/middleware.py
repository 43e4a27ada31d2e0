"""SamlGate: the ASGI entry point. Routes gate endpoints, checks sessions, passes the rest on."""

from __future__ import annotations

import logging
from typing import Any

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ops.events import AuthEvent
from saml_gate.runtime.core import GateCore
from saml_gate.session.cookies import cookie_header_of, find_cookie
from saml_gate.session.sessions import Session
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.endpoints import Endpoints
from saml_gate.web.request_line import route_path

log = logging.getLogger("saml_gate")


class SamlGate:
    """Put SAML single sign-on in front of an ASGI app.

    ``app.add_middleware(SamlGate, idp_metadata=..., base_url=..., secret_key=...)`` or
    ``SamlGate(asgi_app, ...)``. Keyword arguments are :class:`GateSettings` fields; missing ones
    are read from ``SAML_GATE_*`` environment variables. ``store`` is the ``store`` setting
    ("memory", "redis://…") or an object: a ``redis.asyncio.Redis`` client or a
    :class:`~saml_gate.store.Store`.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GateSettings | None = None,
        *,
        store: Any = None,
        **options: Any,
    ) -> None:
        if isinstance(store, str):
            options["store"], store = store, None
        if settings is not None and options:
            raise TypeError("pass either settings= or keyword options, not both")
        self.app = app
        self.settings = settings if settings is not None else GateSettings.load(**options)
        self.core = GateCore(self.settings, store=store)
        self.endpoints = Endpoints(self.core)
        s = self.settings
        self._prefix = s.prefix
        self._prefix_len = len(s.prefix)
        self._cookie = self.core.sessions.name
        self._policy = self.endpoints.policy
        self._clock = s.clock
        self._sessions = self.core.sessions
        self._revocations = self.core.revocations
        self._background_started = False
        self._metrics_path = self.settings.metrics_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not self._background_started:
            self._background_started = True
            self.core.start_background()
        path = route_path(scope["path"], scope.get("root_path", ""))
        if path.startswith(self._prefix) and (
            len(path) == self._prefix_len or path[self._prefix_len] == "/"
        ):
            await self.endpoints(scope, receive, send)
            return
        if path == self._metrics_path:
            await self.endpoints.metrics(scope, receive, send)
            return
        try:
            rule = self._policy.decide(scope, path)
        except GateError as error:  # a method or path the app could read otherwise
            await self.endpoints.refuse(self.endpoints.view(scope), error, receive, send)
            return
        if rule.public:
            scope["user"] = UnauthenticatedUser()
            scope["auth"] = AuthCredentials()
            await self.app(scope, receive, send)
            return

        now = self._clock()
        try:
            session, had_cookie = await self._session(scope, now)
        except GateError as error:  # the store is unreachable and the session needs it
            await self.endpoints.refuse(self.endpoints.view(scope), error, receive, send)
            return
        if session is None:
            await self.endpoints.unauthenticated(
                scope, receive, send, expired=had_cookie, force_authn=rule.needs_fresh_sign_in
            )
            return
        user = session.user
        refusal = self._policy.refusal(rule, user, now)
        if refusal is not None:
            if refusal.code == "step_up_required":  # back to the IdP, never a 403
                await self.endpoints.unauthenticated(
                    scope, receive, send, expired=False, force_authn=True, error=refusal
                )
            else:
                await self.endpoints.refuse(self.endpoints.view(scope), refusal, receive, send)
            return
        scope["user"] = user
        scope["auth"] = AuthCredentials(_scopes(user))
        if kind == "http" and self._sessions.needs_refresh(session, now):
            await self.app(scope, receive, self._refreshing(send, session, now))
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass lifespan through, running the gate's background work alongside the app."""
        self._background_started = True
        self.core.start_background()

        async def receive_and_stop() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.core.stop_background()
            return message

        await self.app(scope, receive_and_stop, send)

    async def _session(self, scope: Scope, now: float) -> tuple[Session | None, bool]:
        """(the valid session, whether a session cookie was presented at all)."""
        header = cookie_header_of(scope["headers"])
        if header is None:
            return None, False
        raw = find_cookie(header, self._cookie)
        if not raw:
            return None, False
        try:
            session = await self._sessions.load(raw)
            if session is None:
                return None, True
            state = self._sessions.state(session, now)
            if state != "valid":
                self._expired(scope, session, state)
                return None, True
            if await self._revocations.is_revoked(session.user):
                return None, True
        except StoreUnavailable as exc:
            raise GateError("store_unavailable", f"checking a session: {exc}") from exc
        return session, True

    def _expired(self, scope: Scope, session: Session, state: str) -> None:
        user = session.user
        reason = "idle (inactivity_timeout)" if state == "idle" else "maximum_duration reached"
        fields = self.endpoints.view(scope).event_fields()
        self.core.events.emit(
            AuthEvent.about(user, "session_expired", "success", reason=reason, **fields)
        )

    def _refreshing(self, send: Send, session: Session, now: float) -> Send:
        """Re-issue the cookie with a new last-seen time on this response only."""
        header = self.endpoints.session_cookie(self._sessions.touched(session, now), now)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", header)]
            await send(message)

        return send_with_cookie


def _scopes(user: SamlUser) -> list[str]:
    return ["authenticated", *("group:" + g for g in user.groups)]
