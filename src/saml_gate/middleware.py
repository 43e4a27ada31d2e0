"""SamlGate: the ASGI entry point.

Building a gate checks its settings and wires its parts (:func:`~saml_gate.web.assembly.assemble`)
and does no I/O. The start-up work runs in the lifespan startup (:meth:`SamlGate.start`), or on
the first request where no lifespan runs; a configuration error found there fails the startup
(``lifespan.startup.failed`` with the message naming the setting: the server stops), or, without
lifespan, answers every request with the ``misconfigured`` page.

Then each request: the gate's endpoints under its prefix; the rest goes to the request decision
(:class:`~saml_gate.web.gatekeeper.Gatekeeper`) and its verdict is carried out for the app —
``Public`` and ``Admit`` reach the app (with ``scope["user"]``, ``scope["auth"]`` and the
identity JWT), ``SignIn`` goes to the IdP or gets 401, ``Refuse`` gets the error page.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from types import FrameType
from typing import Any, Unpack

import anyio
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saml_gate.config.options import GateOptions
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.identity.tokens import JWT_SCOPE_KEY, jwt_header_name
from saml_gate.ip_addresses import ClientAddresses
from saml_gate.policy.request_line import route_path
from saml_gate.runtime.core import GateCore
from saml_gate.web.address import away_from_unknown_host
from saml_gate.web.assembly import GateParts, assemble
from saml_gate.web.gatekeeper import Admit, AppRequest, Public, SignIn
from saml_gate.web.pages import error_response
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView, gate_subpath

log = logging.getLogger("saml_gate")
#: ``AuthCredentials`` built without calling its ``__init__`` on the hot path (it only sets
#: ``scopes``: tests/test_gate_flow.py holds the two to the same ``vars``); half its cost.
_new = object.__new__

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

    A bad setting raises :class:`ConfigError` here, except where a framework builds the gate
    inside its first ASGI call (Starlette's ``add_middleware``): there the error fails the
    lifespan startup instead, which stops the server with the message.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: GateSettings | None = None,
        **options: Unpack[GateOptions],
    ) -> None:
        self.app = app
        self._started = False
        self._failure: Exception | None = None
        self._start_lock = anyio.Lock()
        try:
            self._build(app, settings, options)
        except ConfigError as exc:
            if not _built_inside_a_call():
                raise
            self._failed(exc)  # said at the lifespan startup, or on every request

    def _build(self, app: ASGIApp, settings: GateSettings | None, options: GateOptions) -> None:
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
        self.settings = s = settings if settings is not None else GateSettings.load(**options)
        self.parts: GateParts = assemble(
            s, store, given=dict(options) if settings is None else None
        )
        self.core: GateCore = self.parts.core
        self._prefix = s.prefix
        self._metrics_path = s.metrics_path
        self._jwt_header = jwt_header_name(s)
        self._jwt_size = len(self._jwt_header)
        self._decide_at_once = self.parts.gatekeeper.decide_at_once
        self._decide_rest = self.parts.gatekeeper.decide_rest
        self._addresses = self.parts.addresses

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """The start-up work (IdP metadata, keys, store feed, workers, process-wide policies);
        idempotent. The lifespan startup runs it, or the first request where no lifespan runs.
        Raises :class:`ConfigError` naming the setting at fault."""
        if self._failure is not None:
            raise self._failure
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.core.start()
                self._started = True

    async def load(self) -> None:
        """The start-up loading alone (IdP metadata, keys), in any event loop: for a command that
        wants a bad setting said before it serves (``saml-gate run``); :meth:`start` then only
        starts the background work. Raises :class:`ConfigError` naming the setting."""
        if self._failure is not None:
            raise self._failure
        await self.core.load()

    async def stop(self) -> None:
        """Stop the background work and close the store (the lifespan shutdown runs it)."""
        if self._started:
            self._started = False
            await self.core.stop()

    def _failed(self, exc: Exception) -> None:
        """Remember why the gate cannot serve, and say it once."""
        self._failure = exc
        if isinstance(exc, ConfigError):
            log.error("saml-gate cannot start: %s", exc, extra={"event": "misconfigured"})
        else:
            log.error(
                "saml-gate cannot start: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exc,
                extra={"event": "misconfigured"},
            )

    async def _start_safely(self) -> Exception | None:
        """Start; the error that prevents it, if any (remembered: the gate then serves only its
        ``misconfigured`` page)."""
        try:
            await self.start()
        except Exception as exc:
            if exc is not self._failure:
                self._failed(exc)
            return exc
        return None

    # ------------------------------------------------------------------ requests
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not self._started and await self._start_safely() is not None:
            await self._misconfigured(scope, receive, send)  # no lifespan ran to stop the server
            return
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path:  # most servers send "": no call then
            path = route_path(path, root_path)
        parts = self.parts
        prefix = self._prefix  # startswith first: the hot path pays no call for app paths
        if path.startswith(prefix) and gate_subpath(path, prefix) is not None:
            await parts.endpoints(scope, receive, send)
            return
        if path == self._metrics_path:
            await parts.info.metrics(parts.endpoints.view(scope), receive, send)
            return
        jwt_header = self._jwt_header
        request = AppRequest(scope, path, self._addresses, jwt_size=self._jwt_size)
        verdict = self._decide_at_once(request)  # the hot path: no await
        if verdict is None:
            verdict = await self._decide_rest(request)
        if isinstance(verdict, Admit):
            user = verdict.user
            if jwt_header:  # only the gate names the person to the app
                _name_to_app(scope, jwt_header, verdict.jwt, request.jwt_named)
            scope["user"] = user
            auth = _new(AuthCredentials)  # its __init__ alone, without the Python call
            auth.scopes = list(user.auth_scopes)  # each request's own list
            scope["auth"] = auth
            if kind == "websocket":  # closed (1008) when its session is revoked or expires
                await parts.watch.run(self.app, scope, receive, send, user)
            elif verdict.refresh_cookie is not None:  # re-issued on this response only
                await self.app(scope, receive, _with_cookie(send, verdict.refresh_cookie))
            else:
                await self.app(scope, receive, send)
        elif isinstance(verdict, Public):
            if verdict.unclaimed_form:  # an IdP's SAMLResponse posted here, or the app's form
                refusal, receive = await parts.login.misdirected(request.view, receive)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
            person = verdict.user
            if jwt_header:
                jwt = None if person is None else verdict.jwt
                _name_to_app(scope, jwt_header, jwt, request.jwt_named)
            if person is None:
                scope["user"] = UnauthenticatedUser()
                scope["auth"] = AuthCredentials()
            else:  # a public page told who is signed in
                scope["user"] = person
                scope["auth"] = AuthCredentials(person.auth_scopes)
            await self.app(scope, receive, send)
        elif isinstance(verdict, SignIn):
            await parts.login.sign_in(request, verdict, receive, send)
        elif kind == "websocket":
            await Refusals.deny_websocket(scope, receive, send, verdict.error.code)
        else:  # Refuse: its event is logged already
            page = None
            if verdict.error.code == "unknown_host":  # localhost for 127.0.0.1: to base_url
                page = away_from_unknown_host(request.view, self.settings)
            if page is None:
                page = parts.refusals.page(request.view, verdict.error, user=verdict.user)
            await page(scope, receive, send)

    async def _misconfigured(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ``misconfigured`` page: what to fix for a loopback client (or with ``debug``)."""
        failure = self._failure
        detail = str(failure) if isinstance(failure, ConfigError) else repr(failure)
        if scope["type"] == "websocket":
            await Refusals.deny_websocket(scope, receive, send, "misconfigured")
            return
        view = RequestView(scope, ClientAddresses(()))
        debug = getattr(getattr(self, "settings", None), "debug", False)
        response = error_response(
            GateError("misconfigured", detail),
            wants_json=view.wants_json,
            show_detail=bool(debug) or view.is_local,
        )
        await response(scope, receive, send)

    # ------------------------------------------------------------------ lifespan
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start the gate before the app, stop it after; a gate that cannot start fails the
        startup with its message (uvicorn then exits, in lifespan "auto" as in "on")."""
        first = await receive()
        if first["type"] == "lifespan.startup":
            failure = await self._start_safely()
            if failure is not None:
                await send({"type": "lifespan.startup.failed", "message": _message(failure)})
                return
        pending = [first]

        async def app_receive() -> Message:
            return pending.pop() if pending else await receive()

        async def app_send(message: Message) -> None:
            if message["type"] in _LIFESPAN_ENDS:
                await self.stop()
            await send(message)

        starting = _STARTING.set(self)
        try:
            await self.app(scope, app_receive, app_send)
        except NestedGateError as exc:  # built lazily by the app: fail the start, say why
            await self.stop()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
        finally:
            _STARTING.reset(starting)


#: What the app sends when its lifespan ends (the gate stops then, after the app).
_LIFESPAN_ENDS = frozenset(
    {"lifespan.startup.failed", "lifespan.shutdown.complete", "lifespan.shutdown.failed"}
)


def _message(failure: Exception) -> str:
    """A start-up failure as the server prints it: a ConfigError names the setting."""
    if isinstance(failure, ConfigError):
        return str(failure)
    return f"saml-gate could not start: {type(failure).__name__}: {failure}"


def _built_inside_a_call() -> bool:
    """Whether a framework is building this gate inside an ASGI call. Starlette and FastAPI
    build an ``add_middleware`` stack in ``build_middleware_stack`` during the app's first call
    (under uvicorn, the lifespan's), where a raised error reads as "lifespan unsupported" and
    then as a 500 with a traceback on every request: the gate defers it to its lifespan."""
    frame: FrameType | None = sys._getframe(2)  # the caller of SamlGate(...)
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code.co_name == "build_middleware_stack":
            return True
        frame = frame.f_back
    return False


def _with_cookie(send: Send, header: bytes) -> Send:
    """``send`` adding a Set-Cookie header to the response."""

    async def send_with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"set-cookie", header)]
        await send(message)

    return send_with_cookie


def _name_to_app(scope: Scope, name: bytes, jwt: bytes | None, named: bool) -> None:
    """The request's headers without a client-sent ``name`` header, also spelled with ``_``
    (Django's ASGI handler reads ``X_Saml_Gate_Jwt`` as ``X-Saml-Gate-Jwt``), with the gate's
    identity JWT under that name when there is one (``scope[JWT_SCOPE_KEY]`` too). The server's
    list is never changed in place. ``lower`` and the ``_`` swap keep a name's length, so only
    names of ``name``'s length are compared, and none when no header has it (``named``, from
    :attr:`AppRequest.jwt_named`'s one pass over the headers: the hot path)."""
    headers = scope["headers"]
    if named:
        size = len(name)
        kept = [
            (k, v) for k, v in headers if len(k) != size or k.lower().replace(b"_", b"-") != name
        ]
        if len(kept) != len(headers):
            headers = kept
    if jwt is not None:
        scope[JWT_SCOPE_KEY] = jwt
        headers = [*headers, (name, jwt)]
    scope["headers"] = headers
