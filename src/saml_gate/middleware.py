"""SamlGate: the ASGI entry point. Routes gate endpoints, checks sessions, passes the rest on."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Unpack

from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saml_gate.config.options import GateOptions
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.identity.tokens import JWT_SCOPE_KEY
from saml_gate.ops.events import AuthEvent
from saml_gate.runtime.core import GateCore
from saml_gate.session.cookies import cookie_header_of
from saml_gate.session.decision import DuplicateSession, Outcome
from saml_gate.session.sessions import Session
from saml_gate.session.watch import SessionWatch
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.request_line import route_path
from saml_gate.web.router import Endpoints

log = logging.getLogger("saml_gate")

#: The gate whose lifespan is starting the app it wraps: apps that build their own gate lazily
#: (FastAPI's middleware stack, the Django example) build it there, so a nested gate is caught
#: at start-up.
_STARTING: ContextVar[SamlGate | None] = ContextVar("saml_gate_starting", default=None)


class NestedGateError(ConfigError):
    """A SamlGate inside a SamlGate: two sessions, two sets of settings, and the inner one's
    missing settings break every page after sign-in."""

    def __init__(self, where: str) -> None:
        super().__init__("app", where)
        self.args = (
            f"a SamlGate inside a SamlGate ({where}): the app already puts the gate in front of"
            " itself, and a second gate signs people in twice, the inner one without the outer"
            " one's settings."
            " Put one gate in front: give `saml-gate run` (or SamlGate(...)) the app without"
            " its own gate (examples.fastapi_app.main:app, not create_app), or serve the gated"
            " app as it is with uvicorn",
        )


def behind_gate() -> bool:
    """Whether a SamlGate is starting this code (inside its ``lifespan``): an app that adds its
    own gate can then leave it out (see examples/django_asgi/demo_site/asgi.py)."""
    return _STARTING.get() is not None


def _inner_gate(app: Any) -> str | None:
    """Where a SamlGate sits inside ``app``, looking through middleware (``.app``), Starlette's
    ``user_middleware`` and routes, and wrappers such as Django's static-files handler."""
    seen: set[int] = set()
    todo = [app]
    while todo and len(seen) < 200:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SamlGate):
            return f"{type(node).__name__} wraps {type(node.app).__name__}"
        for middleware in getattr(node, "user_middleware", None) or ():
            cls = getattr(middleware, "cls", None)
            if isinstance(cls, type) and issubclass(cls, SamlGate):
                return f"{type(node).__name__} has add_middleware(SamlGate)"
        todo += [getattr(node, name, None) for name in ("app", "application", "_app")]
        todo += [getattr(route, "app", None) for route in getattr(node, "routes", None) or ()]
    return None


class SamlGate:
    """Put SAML single sign-on in front of an ASGI app.

    ``app.add_middleware(SamlGate, idp_metadata=..., base_url=..., secret_key=...)`` or
    ``SamlGate(asgi_app, ...)``. The keyword options are the settings (:class:`GateOptions`
    types them, :class:`GateSettings` documents them); those not given are read from
    ``SAML_GATE_*`` environment variables. ``store`` is the ``store`` setting ("memory",
    "redis://…") or an object: a ``redis.asyncio.Redis`` client or a
    :class:`~saml_gate.store.Store`. ``on_error`` builds branded error pages. Or pass ready
    ``settings`` (then no options but a ``store`` object).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GateSettings | None = None,
        **options: Unpack[GateOptions],
    ) -> None:
        if _STARTING.get() is not None:
            raise NestedGateError("a SamlGate is being built while another one starts the app")
        inner = _inner_gate(app)
        if inner is not None:
            raise NestedGateError(inner)
        store = options.pop("store", None)
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
        self._policy = self.endpoints.policy
        self._clock = s.clock
        self._sessions = self.core.sessions
        self._watch = SessionWatch(self.core.revocations, self._clock)
        self._background_started = False
        self._metrics_path = self.settings.metrics_path
        self._tokens = self.endpoints.tokens
        self._jwt_header = s.jwt_header.lower().encode()

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
            await self.endpoints.info.metrics(self.endpoints.view(scope), receive, send)
            return
        try:
            rule = self._policy.decide(scope, path)
        except GateError as error:  # a method or path the app could read otherwise
            await self._refuse(scope, error, receive, send)
            return
        if self._jwt_header:  # only the gate names the person to the app
            scope["headers"] = _without(scope["headers"], self._jwt_header)
        if rule.public:
            scope["user"] = UnauthenticatedUser()
            scope["auth"] = AuthCredentials()
            await self.app(scope, receive, send)
            return

        now = self._clock()
        try:
            session, outcome = await self.endpoints.authenticator.authenticate(
                cookie_header_of(scope["headers"]), now
            )
        except StoreUnavailable as exc:  # the session needs the store, which is unreachable
            down = GateError("store_unavailable", f"checking a session: {exc}")
            await self._refuse(scope, down, receive, send)
            return
        except DuplicateSession as error:  # two session cookies: neither is picked
            await self._refuse(scope, error, receive, send)
            return
        if session is None or outcome != "valid":
            if session is not None and (outcome == "expired" or outcome == "idle"):
                self._expired(scope, session, outcome)
            await self.endpoints.login.unauthenticated(
                self.endpoints.view(scope),
                receive,
                send,
                expired=outcome != "absent",
                force_authn=rule.needs_fresh_sign_in,
            )
            return
        user = session.user
        refusal = self._policy.refusal(rule, user, now)
        if refusal is not None:
            if refusal.code == "step_up_required":  # back to the IdP, never a 403
                await self.endpoints.login.unauthenticated(
                    self.endpoints.view(scope),
                    receive,
                    send,
                    expired=False,
                    force_authn=True,
                    error=refusal,
                )
            else:
                view = self.endpoints.view(scope)
                await self.endpoints.refusals.refuse(view, refusal, receive, send, user=user)
            return
        scope["user"] = user
        scope["auth"] = AuthCredentials(_scopes(user))
        if self._jwt_header:
            token = scope[JWT_SCOPE_KEY] = self._tokens.token(user, now)
            scope["headers"].append((self._jwt_header, token))
        if kind == "websocket":  # closed (1008) when its session is revoked or expires
            await self._watch.run(self.app, scope, receive, send, user)
            return
        if self._sessions.needs_refresh(session, now):
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

        starting = _STARTING.set(self)
        try:
            await self.app(scope, receive_and_stop, send)
        except NestedGateError as exc:  # built lazily by the app: fail the start, say why
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
        finally:
            _STARTING.reset(starting)

    async def _refuse(self, scope: Scope, error: GateError, receive: Receive, send: Send) -> None:
        await self.endpoints.refusals.refuse(self.endpoints.view(scope), error, receive, send)

    def _expired(self, scope: Scope, session: Session, outcome: Outcome) -> None:
        user = session.user
        reason = "idle (inactivity_timeout)" if outcome == "idle" else "maximum_duration reached"
        fields = self.endpoints.view(scope).event_fields()
        self.core.events.emit(
            AuthEvent.about(user, "session_expired", "success", reason=reason, **fields)
        )

    def _refreshing(self, send: Send, session: Session, now: float) -> Send:
        """Re-issue the cookie with a new last-seen time on this response only."""
        header = self._sessions.cookie(self._sessions.touched(session, now), now)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", header)]
            await send(message)

        return send_with_cookie


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    """A copy of ``headers`` without ``name``, also spelled with ``_`` (Django's ASGI handler
    reads ``X_Saml_Gate_Jwt`` as ``X-Saml-Gate-Jwt``)."""
    return [(k, v) for k, v in headers if k.lower().replace(b"_", b"-") != name]


def _scopes(user: SamlUser) -> list[str]:
    return ["authenticated", *("group:" + g for g in user.groups)]
