"""Saying no: the error page or JSON for a refused request, its auth event, a refused WebSocket.

Every handler refuses through :class:`Refusals`, so each refusal is logged as one event and
shown the same way (details only to loopback clients or with ``debug``). The request decision
(:mod:`saml_gate.web.gatekeeper`) emits its refusals' events itself; the modes then only show
them (:meth:`Refusals.page`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ERRORS, ErrorCode, GateError
from saml_gate.ops.events import AuthEvent, EventKind, EventSink
from saml_gate.policy.request_line import route_path
from saml_gate.session.decision import DuplicateSession
from saml_gate.session.sessions import SessionCodec
from saml_gate.user import SamlUser
from saml_gate.web.pages import Link, error_response
from saml_gate.web.request import RequestView, gate_subpath
from saml_gate.web.responses import with_cookies
from saml_gate.web.sign_in import login_url_for
from saml_gate.web.ws_refusal import refuse_handshake

#: Which auth event a refusal at each gate endpoint is.
_EVENT_BY_ENDPOINT: Final[dict[str, EventKind]] = {
    "/acs": "login_refused",
    "/login": "login_refused",
    "/logout": "logout",
    "/slo": "slo",
}
log = logging.getLogger("saml_gate")


class Refusals:
    """Answers refused requests, each as one auth event and one error page or JSON body."""

    def __init__(
        self,
        settings: GateSettings,
        events: EventSink,
        sessions: SessionCodec,
        issuer: Callable[[], str],
    ) -> None:
        """``sessions``: to delete every session cookie of a ``duplicate_session`` refusal;
        ``issuer``: the current IdP's entity ID (for refused sign-ins' events)."""
        self._settings = settings
        self._events = events
        self._sessions = sessions
        self._issuer = issuer

    def error(
        self,
        view: RequestView,
        error: GateError,
        *,
        event: EventKind | None = None,
        user: SamlUser | None = None,
        links: Sequence[Link] = (),
        **extra: str,
    ) -> Response:
        """The answer to a refused request, after emitting its auth event (by default the
        one of the endpoint it was refused at). A page shows ``links`` and the usual ones,
        and the groups of the signed-in ``user``."""
        kind = event or _EVENT_BY_ENDPOINT.get(
            view.gate_path(self._settings.prefix), "request_refused"
        )
        if kind == "login_refused" and error.code == "method_not_allowed":
            kind = "request_refused"  # GET /acs (a bookmark, a crawler) is no failed sign-in
        self._events.emit(
            AuthEvent(
                kind,
                "failure",
                error_code=error.code,
                reason=error.detail or error.info.title,
                issuer=self._issuer() if kind == "login_refused" else None,
                **view.event_fields(),
            )
        )
        return self.page(view, error, user=user, links=links, **extra)

    def page(
        self,
        view: RequestView,
        error: GateError,
        *,
        user: SamlUser | None = None,
        links: Sequence[Link] = (),
        **extra: str,
    ) -> Response:
        """The error page or JSON body of a refusal whose event was emitted already."""
        s = self._settings
        response = self._branded(view, error)
        if response is None:
            extra.setdefault("request_id", view.request_id)
            response = error_response(
                error,
                wants_json=view.wants_json,
                show_detail=s.debug or view.is_local,
                extra=dict(extra),
                hint_context=s.public_values,
                links=[*links, *self._links(view, signed_in=user is not None)],
                groups=user.groups if user is not None else None,
            )
        if isinstance(error, DuplicateSession):  # delete them all: the person signs in again
            asked = (view.public_host, view.headers.get("host", "")), view.raw_path
            hosts, path = error.target or asked
            base_host = urlsplit(s.base_url).netloc
            with_cookies(response, self._sessions.clear_everywhere((*hosts, base_host), path))
        return response

    def _links(self, view: RequestView, *, signed_in: bool) -> list[Link]:
        """Sign in again (back to this page when it is an app page), the app, and sign out."""
        s = self._settings
        routed = route_path(view.scope["path"], view.scope.get("root_path", ""))
        is_page = view.method in ("GET", "HEAD") and gate_subpath(routed, s.prefix) is None
        return_to = view.path_and_query if is_page else s.base_path + "/"
        links: list[Link] = [
            ("Sign in again", login_url_for(s.login_url, return_to)),
            ("Back to the application", s.base_url + "/"),
        ]
        if signed_in:
            links.append(("Sign out", s.base_url + s.prefix + "/logout"))
        return links

    def _branded(self, view: RequestView, error: GateError) -> Response | None:
        """The ``on_error`` hook's page for an HTTP request, if it gives one. A hook that fails
        or returns something else is logged, and the gate's own page is sent."""
        hook = self._settings.on_error
        if hook is None or view.scope["type"] != "http":
            return None
        try:
            page = hook(HTTPConnection(view.scope), error)
        except Exception:
            log.exception("saml-gate on_error hook %r failed for %s", hook, error.code)
            return None
        if page is not None and not isinstance(page, Response):
            log.error("saml-gate on_error hook %r returned %r, not a Response", hook, page)
            return None
        if page is not None:
            page.headers.setdefault("cache-control", "no-store")
        return page

    @staticmethod
    async def deny_websocket(
        scope: Scope, receive: Receive, send: Send, code: ErrorCode = "forbidden"
    ) -> None:
        """Refuse before accept: an HTTP response (the code's status, ``{"error": code}``) where
        the server supports it, else 1008 (1011 for a failure of the gate's own)."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        status = ERRORS[code].status
        body = b'{"error":"' + code.encode() + b'"}'
        close_code = 1011 if status >= 500 else 1008
        await refuse_handshake(
            scope, receive, send, status=status, body=body, close_code=close_code
        )
