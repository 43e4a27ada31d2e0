"""The gate's endpoints under its prefix (``/saml/...``): which handler answers which path.

Each flow is its own handler, given only what it needs: :mod:`~saml_gate.web.login`,
:mod:`~saml_gate.web.acs`, :mod:`~saml_gate.web.logout`, :mod:`~saml_gate.web.info`,
:mod:`~saml_gate.web.forward_auth` (``/auth``, ``/jwks.json``). A store
that fails mid-request becomes a ``store_unavailable`` refusal here, for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from saml_gate.errors import GateError
from saml_gate.identity.keys import load_jwt_keys
from saml_gate.identity.tokens import IdentityTokens
from saml_gate.policy import AccessPolicy
from saml_gate.runtime.core import GateCore
from saml_gate.session.decision import Authenticator
from saml_gate.store import StoreUnavailable
from saml_gate.web.acs import AssertionConsumer
from saml_gate.web.forward_auth import ForwardAuth
from saml_gate.web.forwarded import ClientAddresses
from saml_gate.web.info import Info
from saml_gate.web.login import Login
from saml_gate.web.logout import Logout
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView, posts_saml_response, saml_form_limit, wrong_acs
from saml_gate.web.request_line import route_path

log = logging.getLogger("saml_gate")

#: The endpoints that read a posted form themselves.
_POSTED_TO = frozenset({"/acs", "/slo", "/logout"})

Handler = Callable[[RequestView, Receive], Awaitable[Response]]


class Endpoints:
    """The router, and the handlers the middleware also uses (``login``, ``refusals``, ...)."""

    def __init__(self, core: GateCore) -> None:
        self.core = core
        self._settings = s = core.settings
        self.policy = AccessPolicy(s)
        self.addresses = ClientAddresses(s.trusted_proxies)
        self.authenticator = Authenticator(core.sessions, core.revocations)
        self.refusals = Refusals(core)
        self.login = Login(core, self.policy, self.refusals)
        self.info = Info(core, self.authenticator, self.refusals)
        acs = AssertionConsumer(core, self.policy, self.refusals)
        logout = Logout(core, self.authenticator, self.refusals)
        keys = load_jwt_keys(s)
        self.tokens = IdentityTokens(s, keys)
        self.forward_auth = ForwardAuth(
            core, self.policy, self.authenticator, self.refusals, self.tokens, keys
        )
        self._routes: dict[str, Handler] = {
            "/metadata": self.info.metadata,
            "/login": self.login.login,
            "/acs": acs.acs,
            "/logout": logout.logout,
            "/session": self.info.session,
            "/setup": self.info.setup,
            "/health": self.info.health,
            "/ready": self.info.ready,
            "/status": self.info.status,
            "/slo": logout.slo,
            "/auth": self.forward_auth.auth,
            "/jwks.json": self.forward_auth.jwks,
        }
        self._warned_root = False

    def view(self, scope: Scope) -> RequestView:
        return RequestView(scope, self.addresses)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request under the prefix."""
        root = scope.get("root_path", "")
        sub = route_path(scope["path"], root)[len(self._settings.prefix) :] or "/"
        self._check_root_path(root)
        if scope["type"] == "websocket":
            await self.refusals.deny_websocket(scope, receive, send)
            return
        devidp = self.core.devidp
        if devidp is not None and (sub == "/devidp" or sub.startswith("/devidp/")):
            await devidp(scope, receive, send)
            return
        view = self.view(scope)
        handler = self._routes.get(sub)
        try:
            if sub not in _POSTED_TO and await posts_saml_response(
                view, receive, limit=saml_form_limit(self._settings)
            ):
                raise wrong_acs(view, self._settings)
            if handler is None:
                raise GateError("not_found", sub)
            try:
                response = await handler(view, receive)
            except StoreUnavailable as exc:
                raise GateError("store_unavailable", str(exc)) from exc
        except GateError as error:
            response = self.refusals.error(view, error)
        await response(scope, receive, send)

    def _check_root_path(self, root: str) -> None:
        """Warn, once, when the server mounts the gate somewhere base_url does not say."""
        s = self._settings
        if root and root != s.base_path and not self._warned_root:
            self._warned_root = True
            log.warning(
                "saml-gate is served under the root path %r but base_url %s says %r: the IdP"
                " will post to the wrong address; set base_url to the public URL including %r",
                root,
                s.base_url,
                s.base_path,
                root,
                extra={"event": "root_path_mismatch"},
            )
