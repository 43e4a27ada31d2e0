"""The gate's endpoints under its prefix (``/saml/...``): which handler answers which path.

Each flow is its own handler, given only what it needs (:func:`saml_gate.web.assembly.assemble`
builds them): :mod:`~saml_gate.web.login`, :mod:`~saml_gate.web.acs`,
:mod:`~saml_gate.web.logout`, :mod:`~saml_gate.web.info` (``/jwks.json`` too), and
:mod:`~saml_gate.web.forward_auth` (``/auth``, where forward-auth is configured). A store that
fails mid-request becomes a ``store_unavailable`` refusal here, for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ip_addresses import ClientAddresses
from saml_gate.policy.request_line import route_path
from saml_gate.store import StoreUnavailable
from saml_gate.web.misdirected import peek_saml_response, wrong_acs
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import (
    RequestView,
    gate_subpath,
    saml_form_limit,
)

log = logging.getLogger("saml_gate")

#: The endpoints that read a posted body themselves.
_POSTED_TO = frozenset({"/acs", "/slo", "/logout", "/global-token-revocation"})

Handler = Callable[[RequestView, Receive], Awaitable[Response]]


class Endpoints:
    """Routes a request under the prefix to its handler (``routes``: sub-path → handler)."""

    def __init__(
        self,
        settings: GateSettings,
        routes: Mapping[str, Handler],
        refusals: Refusals,
        addresses: ClientAddresses,
        devidp: Callable[[], ASGIApp | None],
    ) -> None:
        """``devidp``: the development IdP once started (None without ``dev_idp``)."""
        self._settings = settings
        self._routes = dict(routes)
        self.refusals = refusals
        self.addresses = addresses
        self._devidp = devidp
        self._warned_root = False

    def view(self, scope: Scope) -> RequestView:
        return RequestView(scope, self.addresses)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request under the prefix."""
        root = scope.get("root_path", "")
        sub = gate_subpath(route_path(scope["path"], root), self._settings.prefix) or "/"
        self._check_root_path(root)
        if scope["type"] == "websocket":
            await self.refusals.deny_websocket(scope, receive, send)
            return
        devidp = self._devidp()
        if devidp is not None and (sub == "/devidp" or sub.startswith("/devidp/")):
            await devidp(scope, receive, send)
            return
        view = self.view(scope)
        handler = self._routes.get(sub)
        try:
            if sub not in _POSTED_TO:  # the endpoint takes no form: an IdP's Response, posted here?
                found, receive = await peek_saml_response(
                    view, receive, limit=saml_form_limit(self._settings)
                )
                if found:
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
