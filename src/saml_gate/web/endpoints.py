"""The gate's own endpoints under the prefix: metadata, login, acs, logout, slo, session, devidp.

Also the answers to unauthenticated requests (a redirect to the IdP, 401 JSON or a refused
WebSocket) and to refusals (403 and the error pages).
"""

from __future__ import annotations

import html
import logging
import re
import time
import uuid
from collections.abc import Callable
from functools import cached_property, partial
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import anyio.to_thread
from itsdangerous import BadSignature, Signer
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from saml_gate.errors import GateError
from saml_gate.ops import status as operations
from saml_gate.ops.events import AuthEvent
from saml_gate.ops.setup_sheet import SetupSheet
from saml_gate.policy import AccessPolicy
from saml_gate.runtime.core import GateCore
from saml_gate.saml.logout import IdpLogoutRequest, IdpLogoutResponse, PendingLogout
from saml_gate.saml.response import VerifiedLogin
from saml_gate.session.cookies import cookie_header, cookie_header_of, parse_cookie_header
from saml_gate.session.relay import safe_return_path
from saml_gate.session.sessions import Session
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.forms import parse_form
from saml_gate.web.forwarded import ClientAddresses
from saml_gate.web.pages import error_response, html_page
from saml_gate.web.request_line import route_path
from saml_gate.web.ws_refusal import refuse_handshake

log = logging.getLogger("saml_gate")

FORM_TYPE: Final = "application/x-www-form-urlencoded"
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Which auth event a refusal at each gate endpoint is.
_EVENT_BY_ENDPOINT: Final = {
    "/acs": "login_refused",
    "/login": "login_refused",
    "/logout": "logout",
    "/slo": "slo",
}
POLICY_DENIALS: Final = frozenset({"forbidden", "step_up_failed", "groups_missing"})


class RequestView:
    """Just what the gate needs to know about a request, read lazily from the scope."""

    def __init__(self, scope: Scope, addresses: ClientAddresses) -> None:
        self.scope = scope
        self._addresses = addresses

    @cached_property
    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope["headers"]}

    @property
    def method(self) -> str:
        return str(self.scope.get("method", "GET"))

    @cached_property
    def peer(self) -> str:
        """The address of whoever opened the connection (a proxy, or the client itself)."""
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    @cached_property
    def client_host(self) -> str:
        """The client's address, as far as ``trusted_proxies`` vouch for it."""
        return self._addresses.client(self.peer, self.scope["headers"])

    @cached_property
    def is_local(self) -> bool:
        """A loopback client not behind any proxy (ngrok's agent connects from loopback too)."""
        return self._addresses.is_local(self.peer, self.scope["headers"])

    @cached_property
    def wants_json(self) -> bool:
        h = self.headers
        accept = h.get("accept", "")
        if h.get("x-requested-with") or ("json" in accept and "text/html" not in accept):
            return True
        return h.get("sec-fetch-mode", "navigate") not in ("navigate", "nested-navigate")

    @cached_property
    def request_id(self) -> str:
        """The proxy's X-Request-ID when it looks sane, else a new one (ties log lines together)."""
        given = self.headers.get("x-request-id", "")
        return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]

    def event_fields(self) -> dict[str, Any]:
        return {
            "client": self.client_host,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.scope["path"],
        }

    @cached_property
    def public_host(self) -> str:
        """The host the browser used, as far as the request tells (for diagnostics only)."""
        forwarded = self.headers.get("x-forwarded-host")
        host = forwarded.split(",")[0] if forwarded else self.headers.get("host", "")
        return host.strip().lower()

    @property
    def is_navigation(self) -> bool:
        return self.method in ("GET", "HEAD") and not self.wants_json

    @property
    def path_and_query(self) -> str:
        raw = self.scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(self.scope["path"])
        query = self.scope.get("query_string", b"")
        return path + ("?" + query.decode("latin-1") if query else "")

    def query(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[0] if values else None


class Endpoints:
    def __init__(self, core: GateCore) -> None:
        self.core = core
        s = core.settings
        self._settings = s
        self.policy = AccessPolicy(s)
        self._routes = {
            "/metadata": self.metadata,
            "/login": self.login,
            "/acs": self.acs,
            "/logout": self.logout,
            "/session": self.session,
            "/setup": self.setup,
            "/health": self.health,
            "/ready": self.ready,
            "/status": self.status,
            "/slo": self.slo,
        }
        self._warned_hosts: set[str] = set()
        self._warned_root = False
        self._logout_signer = Signer(list(reversed(s.secret_key)), salt="saml-gate.logout")
        self._pending_logout = PendingLogout(s)
        self.addresses = ClientAddresses(s.trusted_proxies)

    def view(self, scope: Scope) -> RequestView:
        return RequestView(scope, self.addresses)

    # ------------------------------------------------------------------ routing
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        sub = route_path(scope["path"], root)[len(self._settings.prefix) :] or "/"
        if root and root != self._settings.base_path and not self._warned_root:
            self._warned_root = True
            log.warning(
                "saml-gate is served under the root path %r but base_url %s says %r: the IdP"
                " will post to the wrong address; set base_url to the public URL including %r",
                root,
                self._settings.base_url,
                self._settings.base_path,
                root,
                extra={"event": "root_path_mismatch"},
            )
        if scope["type"] == "websocket":
            await self._deny_websocket(scope, receive, send)
            return
        devidp = self.core.devidp
        if devidp is not None and (sub == "/devidp" or sub.startswith("/devidp/")):
            await devidp(scope, receive, send)
            return
        view = self.view(scope)
        handler = self._routes.get(sub)
        try:
            if handler is None:
                raise GateError("not_found", sub)
            try:
                response = await handler(view, receive)
            except StoreUnavailable as exc:
                raise GateError("store_unavailable", str(exc)) from exc
        except GateError as error:
            response = self.error(view, error)
        await response(scope, receive, send)

    def error(
        self, view: RequestView, error: GateError, *, event: str | None = None, **extra: str
    ) -> Response:
        kind = event or _EVENT_BY_ENDPOINT.get(self._sub_path(view), "request_refused")
        self.core.events.emit(
            AuthEvent(
                kind,
                "failure",
                error_code=error.code,
                reason=error.detail or error.info.title,
                issuer=self.core.idp.entity_id if kind == "login_refused" else None,
                **view.event_fields(),
            )
        )
        extra.setdefault("request_id", view.request_id)
        return error_response(
            error,
            wants_json=view.wants_json,
            show_detail=self._settings.debug or view.is_local,
            extra=dict(extra),
            hint_context=self._settings.public_values,
        )

    async def refuse(
        self, view: RequestView, error: GateError, receive: Receive, send: Send
    ) -> None:
        """Refuse a request for the app (the access policy, a bad path, the store down)."""
        event = "policy_denied" if error.code in POLICY_DENIALS else "request_refused"
        response = self.error(view, error, event=event)
        if view.scope["type"] == "websocket":
            await self._deny_websocket(view.scope, receive, send, status=error.status)
            return
        await response(view.scope, receive, send)

    # ------------------------------------------------------------------ unauthenticated
    async def unauthenticated(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        expired: bool,
        force_authn: bool = False,
        error: GateError | None = None,
    ) -> None:
        """Send a browser to the IdP, or answer 401. ``error``: why (default not_authenticated);
        ``force_authn``: the IdP must authenticate again (step-up)."""
        if scope["type"] == "websocket":
            await self._deny_websocket(scope, receive, send, status=401)
            return
        view = self.view(scope)
        clear = [self.clear_session_cookie()] if expired else []
        if view.is_navigation:
            response = await self.start_login(
                view, view.path_and_query, extra_cookies=clear, force_authn=force_authn
            )
        else:
            login_url = (
                self._settings.login_url + "?" + urlencode({"return_to": view.path_and_query})
            )
            response = error_response(
                error or GateError("not_authenticated"),
                wants_json=True,
                show_detail=False,
                extra={"login_url": login_url},
                headers={"WWW-Authenticate": 'SAML realm="saml-gate"'},
            )
            for cookie in clear:
                response.raw_headers.append((b"set-cookie", cookie))
        await response(scope, receive, send)

    async def _deny_websocket(
        self, scope: Scope, receive: Receive, send: Send, status: int = 403
    ) -> None:
        """Refuse before accept: an HTTP response where the server supports it, else 1008."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        body = b'{"error":"not_authenticated"}' if status == 401 else b'{"error":"forbidden"}'
        await refuse_handshake(scope, receive, send, status=status, body=body, close_code=1008)

    async def start_login(
        self,
        view: RequestView,
        return_path: str,
        *,
        extra_cookies: list[bytes] | None = None,
        force_authn: bool = False,
    ) -> Response:
        """A 303 to the IdP with a pending-login cookie; a refusal if this is not a navigation."""
        refusal = self._not_a_navigation(view)
        if refusal is not None:
            response = self.error(view, refusal)
            response.raw_headers.extend((b"set-cookie", c) for c in extra_cookies or ())
            return response
        core = self.core
        seen = view.public_host
        if not self._is_our_host(seen) and seen not in self._warned_hosts:
            if len(self._warned_hosts) < 32:
                self._warned_hosts.add(seen)
            log.warning(
                "saml-gate: a sign-in starts from %r but base_url is %s; the IdP will send the"
                " browser to base_url, where its sign-in cookie is unknown (base_url_mismatch)",
                seen,
                self._settings.base_url,
                extra={"event": "base_url_mismatch"},
            )
        key, relay_state = core.relay.start(return_path, cookie_header_of(view.scope["headers"]))
        request_id, location = await core.authn_request_url(relay_state, force_authn)
        response = RedirectResponse(
            location, status_code=303, headers={"Cache-Control": "no-store"}
        )
        for cookie in core.relay.pending_cookies(key, request_id, return_path):
            response.raw_headers.append((b"set-cookie", cookie))
        for cookie in extra_cookies or ():
            response.raw_headers.append((b"set-cookie", cookie))
        return response

    @staticmethod
    def _not_a_navigation(view: RequestView) -> GateError | None:
        """Why this request may not start a sign-in, or None. Only a top-level page load may
        (each start sets a pending cookie): not a fetch, image, script or frame, as far as the
        browser's Sec-Fetch headers tell, nor a speculative prefetch."""
        h = view.headers
        dest, purpose = h.get("sec-fetch-dest", ""), h.get("sec-purpose", "")
        if view.is_navigation and dest in ("", "document") and "prefetch" not in purpose:
            return None
        told = ("sec-fetch-mode", "sec-fetch-dest", "sec-purpose", "accept", "x-requested-with")
        return GateError(
            "not_a_navigation", ", ".join(f"{n}: {h[n][:40]!r}" for n in told if n in h)
        )

    # ------------------------------------------------------------------ cookies
    def session_cookie(self, session: Session, now: float) -> bytes:
        return cookie_header(
            self._settings,
            self.core.sessions.name,
            self.core.sessions.encode(session),
            max_age=int(session.expires_at - now),
        )

    def clear_session_cookie(self) -> bytes:
        return cookie_header(self._settings, self.core.sessions.name, "", max_age=0)

    async def _current_session(self, view: RequestView) -> Session | None:
        """The session of a valid cookie, revoked or not."""
        header = cookie_header_of(view.scope["headers"])
        if header is None:
            return None
        raw = parse_cookie_header(header).get(self.core.sessions.name)
        session = await self.core.sessions.load(raw) if raw else None
        if session is None:
            return None
        if self.core.sessions.state(session, self._settings.clock()) != "valid":
            return None
        return session

    async def _live_session(self, view: RequestView) -> Session | None:
        session = await self._current_session(view)
        if session is None or await self.core.revocations.is_revoked(session.user):
            return None
        return session

    # ------------------------------------------------------------------ endpoints
    async def metadata(self, view: RequestView, receive: Receive) -> Response:
        self._require(view, "GET", "HEAD")
        return Response(
            self.core.sp.metadata_xml,
            media_type="application/samlmetadata+xml",
            headers={"Content-Disposition": 'inline; filename="saml-gate-metadata.xml"'},
        )

    async def login(self, view: RequestView, receive: Receive) -> Response:
        self._require(view, "GET", "HEAD")
        return_path = safe_return_path(view.query("return_to"))
        if return_path is None:
            raise GateError("bad_relay_state", "return_to must be a relative path on this site")
        force = self.policy.fresh_sign_in_for(self._route_path(view, return_path))
        return await self.start_login(view, return_path, force_authn=force)

    async def session(self, view: RequestView, receive: Receive) -> Response:
        self._require(view, "GET", "HEAD")
        session = await self._live_session(view)
        if session is None:
            error = GateError("not_authenticated")
            return error_response(
                error,
                wants_json=True,
                show_detail=False,
                extra={"login_url": self._settings.login_url},
            )
        body = session.user.as_dict()
        body["idle_timeout_seconds"] = self._settings.inactivity_timeout
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def health(self, view: RequestView, receive: Receive) -> Response:
        """Liveness: the process answers. No dependency is consulted."""
        self._require(view, "GET", "HEAD")
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def ready(self, view: RequestView, receive: Receive) -> Response:
        """Readiness: IdP metadata loaded and, when a shared store is configured, reachable."""
        self._require(view, "GET", "HEAD")
        checks = await operations.readiness(self.core)
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def status(self, view: RequestView, receive: Receive) -> Response:
        """What an operator wants to know; loopback clients or members of ``status_group``."""
        self._require(view, "GET", "HEAD")
        group = self._settings.status_group
        if not view.is_local:
            session = await self._live_session(view) if group else None
            if session is None or group not in session.user.groups:
                raise GateError("forbidden", "status is for loopback clients or the status_group")
        return JSONResponse(operations.status(self.core), headers={"Cache-Control": "no-store"})

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Prometheus exposition at ``metrics_path``; loopback-only unless metrics_public."""
        view = self.view(scope)
        metrics = self.core.metrics
        if metrics is None or scope["type"] != "http" or view.method not in ("GET", "HEAD"):
            response = self.error(view, GateError("not_found", "metrics"))
        elif not (self._settings.metrics_public or view.is_local):
            response = self.error(view, GateError("forbidden", "metrics are loopback-only"))
        else:
            body, media_type = metrics.exposition()
            response = Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})
        await response(scope, receive, send)

    async def setup(self, view: RequestView, receive: Receive) -> Response:
        """The Okta setup sheet: public values only (they are all in the SP metadata)."""
        self._require(view, "GET", "HEAD")
        sheet = SetupSheet.build(self._settings, self.core.sp_keys.cert_pem)
        if view.wants_json:
            return JSONResponse(
                {
                    "rows": [
                        {"field": r.field, "value": r.value, "note": r.note} for r in sheet.rows
                    ],
                    "certificate": sheet.certificate_pem,
                }
            )
        return html_page("Okta setup", sheet.as_html())

    async def logout(self, view: RequestView, receive: Receive) -> Response:
        """Local sign-out, then SAML Single Logout at the IdP when it has an SLO endpoint.
        Not a CSRF target: GET only shows a form; the POST needs its session-bound token."""
        self._require(view, "GET", "POST")
        try:
            return await self._logout(view, receive)
        except StoreUnavailable as exc:  # the cookie goes anyway; say the revocation failed
            response = self.error(view, GateError("store_unavailable", f"sign-out: {exc}"))
            response.raw_headers.append((b"set-cookie", self.clear_session_cookie()))
            return response

    async def _logout(self, view: RequestView, receive: Receive) -> Response:
        session = await self._live_session(view)
        s = self._settings
        if view.method == "GET":
            if session is None:
                return self._signed_out_page()
            token = self._logout_signer.sign(session.user.session_id).decode()
            return html_page(
                "Sign out",
                f"<h1>Sign out of this application?</h1>"
                f"<p>Signed in as <b>{html.escape(session.user.display_name)}</b>.</p>"
                f"<form method=post action='{html.escape(s.public_path('/logout'))}'>"
                f"<input type=hidden name=token value='{html.escape(token)}'>"
                f"<button type=submit>Sign out</button></form>",
            )
        form = await self._read_form(view, receive, limit=4096)
        response = self._signed_out_page()
        if session is not None:
            user = session.user
            try:
                signed_for = self._logout_signer.unsign(form.get("token", "")).decode()
            except BadSignature:
                signed_for = ""
            if signed_for != user.session_id:
                raise GateError("bad_request", "the sign-out form has expired; try again")
            await self.core.revocations.revoke(user, s.clock())
            self.core.events.emit(AuthEvent.about(user, "logout", "success", **view.event_fields()))
            if s.idp_logout:
                response = await self._logout_at_idp(user) or response
        response.raw_headers.append((b"set-cookie", self.clear_session_cookie()))
        return response

    async def _logout_at_idp(self, user: SamlUser) -> Response | None:
        """A redirect carrying a signed LogoutRequest to the IdP, or None if it has no SLO."""
        core = self.core
        found = await anyio.to_thread.run_sync(
            lambda: core.sp.logout_request_url(user), limiter=core.verify_limiter
        )
        if found is None:
            return None
        request_id, location = found
        response = RedirectResponse(
            location, status_code=303, headers={"Cache-Control": "no-store"}
        )
        for cookie in self._pending_logout.cookies(request_id):
            response.raw_headers.append((b"set-cookie", cookie))
        return response

    async def slo(self, view: RequestView, receive: Receive) -> Response:
        """The IdP's LogoutRequest (IdP-initiated) or LogoutResponse (answering ours), with the
        HTTP-Redirect (GET) or HTTP-POST binding."""
        self._require(view, "GET", "POST")
        core = self.core
        now = self._settings.clock()
        verifier = core.logout_verifier
        read: Callable[[], IdpLogoutRequest | IdpLogoutResponse]
        if view.method == "GET":
            query = view.scope.get("query_string", b"").decode("latin-1")
            read = partial(verifier.read_redirect, query, now=now)
        else:
            limit = (self._settings.max_response_bytes * 4) // 3 + 16384
            form = await self._read_form(view, receive, limit=limit)
            read = partial(verifier.read_post, form, now=now)
        try:
            message = await anyio.to_thread.run_sync(read, limiter=core.verify_limiter)
        except GateError:
            raise
        except Exception as exc:  # a parser or crypto failure we did not map: still a 400
            log.exception("saml-gate: unexpected error while reading a logout message")
            raise GateError("slo_invalid", type(exc).__name__) from exc
        if isinstance(message, IdpLogoutResponse):
            return self._logout_answered(view, message)
        return await self._logout_requested(view, message, now)

    def _logout_answered(self, view: RequestView, answer: IdpLogoutResponse) -> Response:
        cookies = parse_cookie_header(cookie_header_of(view.scope["headers"]) or "")
        expected = self._pending_logout.request_id(cookies)
        if expected is None or answer.in_response_to != expected:
            raise GateError(
                "slo_unexpected",
                f"InResponseTo {answer.in_response_to!r}, pending logout {expected!r}",
            )
        self.core.events.emit(
            AuthEvent(
                "slo",
                "success" if answer.success else "failure",
                reason=f"the IdP answered our LogoutRequest: {answer.status}"
                + (" (partial)" if answer.partial else ""),
                issuer=self.core.idp.entity_id,
                **view.event_fields(),
            )
        )
        note = (
            "You are also signed out at your identity provider."
            if answer.success
            else "Your identity provider could not end every session"
            f" (status {html.escape(answer.status)}{', partial' if answer.partial else ''})."
        )
        response = self._signed_out_page(note)
        for cookie in self._pending_logout.clear_cookies():
            response.raw_headers.append((b"set-cookie", cookie))
        return response

    async def _logout_requested(
        self, view: RequestView, request: IdpLogoutRequest, now: float
    ) -> Response:
        core = self.core
        try:
            if not await core.store.add_once(
                f"logout:{request.issuer}:{request.id}", request.valid_until - now
            ):
                raise GateError("slo_invalid", "this LogoutRequest was already handled (replayed)")
            ended = await core.revocations.revoke_subject(
                request.issuer, request.name_id, request.session_indexes, now
            )
        except StoreUnavailable as exc:
            log.error(
                "saml-gate could not end the sessions of %s for the IdP's LogoutRequest: %s",
                request.name_id,
                exc,
                extra={"event": "slo_request_failed", "name_id": request.name_id},
            )
            ended = -1
        self.core.events.emit(
            AuthEvent(
                "slo",
                "success" if ended >= 0 else "failure",
                name_id=request.name_id,
                issuer=request.issuer,
                reason=f"IdP-initiated logout: {max(ended, 0)} session(s) ended",
                extra={"sessions": ended},
                **view.event_fields(),
            )
        )
        location = await anyio.to_thread.run_sync(
            lambda: core.sp.logout_response_url(
                request.id, request.relay_state, success=ended >= 0
            ),
            limiter=core.verify_limiter,
        )
        if location is not None:
            response: Response = RedirectResponse(
                location, status_code=303, headers={"Cache-Control": "no-store"}
            )
        elif ended < 0:
            response = self.error(view, GateError("store_unavailable", "IdP-initiated logout"))
        else:
            response = self._signed_out_page()
        header = cookie_header_of(view.scope["headers"])
        raw = parse_cookie_header(header).get(self.core.sessions.name) if header else None
        current = self.core.sessions.decode(raw) if raw else None  # the identity, no store
        if current is not None and current.user.name_id == request.name_id:
            response.raw_headers.append((b"set-cookie", self.clear_session_cookie()))
        return response

    def _signed_out_page(
        self, note: str = "You may still be signed in at your identity provider."
    ) -> Response:
        return html_page(
            "Signed out",
            f"<h1>You are signed out</h1><p>Your session in this application has ended. {note}</p>"
            f"<p><a href='{html.escape(self._settings.login_url)}'>Sign in again</a></p>",
        )

    async def acs(self, view: RequestView, receive: Receive) -> Response:
        self._require(view, "POST")
        s = self._settings
        core = self.core
        limit = (s.max_response_bytes * 4) // 3 + 16384
        form = await self._read_form(view, receive, limit=limit, encoded=("SAMLResponse",))
        saml_response = form.get("SAMLResponse")  # decoded by the verification worker
        if not saml_response:
            raise GateError("missing_saml_response")
        relay_state = form.get("RelayState")
        cookies = parse_cookie_header(cookie_header_of(view.scope["headers"]) or "")
        pending = core.relay.pending(cookies)
        now = s.clock()
        started = time.perf_counter()
        try:
            expected = {p.request_id for p in pending}
            login = await core.verify_response(saml_response, expected, now, view.client_host)
        except GateError as error:
            seen = view.public_host
            if error.code == "unknown_request" and not pending and not self._is_our_host(seen):
                raise GateError(
                    "base_url_mismatch",
                    f"the browser posted to {seen!r} but base_url is {s.base_url!r}, so no"
                    " sign-in cookie from this browser matches",
                ) from error
            raise
        except Exception as exc:  # a parser or crypto failure we did not map: still a 400
            log.exception("saml-gate: unexpected error while verifying a Response")
            raise GateError("malformed_response", type(exc).__name__) from exc
        finally:
            verify_seconds = time.perf_counter() - started
            if core.metrics is not None:
                core.metrics.verify_seconds.observe(verify_seconds)

        clear: list[bytes] = []
        if login.in_response_to is not None:
            match = next(p for p in pending if p.request_id == login.in_response_to)
            if relay_state and core.relay.relay_key(relay_state) != match.key:
                raise GateError("bad_relay_state", "the RelayState belongs to another sign-in")
            return_path = match.return_path
            clear.extend(core.relay.clear_cookies(match.key))
        else:
            unsolicited_path = safe_return_path(relay_state)
            if unsolicited_path is None:
                raise GateError("bad_relay_state", "RelayState is not a relative path on this site")
            return_path = unsolicited_path

        if s.authorized_groups and s.groups_attribute not in login.attributes:
            raise GateError(
                "groups_missing",
                f"the assertion for {login.name_id} has no {s.groups_attribute!r} attribute",
            )
        await self._check_replay(login, now)
        session = await core.sessions.issue(core.sessions.new_session(login, now), now)
        await core.revocations.register(session.user, now)
        core.events.emit(
            AuthEvent.about(
                session.user,
                "login",
                "success",
                idp_initiated=login.in_response_to is None,
                duration_ms=round(verify_seconds * 1000, 3),
                **view.event_fields(),
            )
        )
        response: Response = RedirectResponse(
            return_path, status_code=303, headers={"Cache-Control": "no-store"}
        )
        if login.in_response_to is not None:  # answered our request: never loop on a step-up
            path = self._route_path(view, return_path)
            unmet = self.policy.unmet_step_up(path, session.user, now)
            if unmet is not None:
                response = self.error(view, unmet, event="policy_denied")
        response.raw_headers.append((b"set-cookie", self.session_cookie(session, now)))
        for cookie in clear:
            response.raw_headers.append((b"set-cookie", cookie))
        return response

    async def _check_replay(self, login: VerifiedLogin, now: float) -> None:
        store = self.core.store
        if not await store.add_once(login.replay_key, login.replay_until - now):
            raise GateError("replayed", "this assertion ID was already accepted")
        if login.in_response_to is not None and not await store.add_once(
            "request:" + login.in_response_to,
            self._settings.login_timeout + self._settings.clock_skew,
        ):
            raise GateError("replayed", "this sign-in request was already answered")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _route_path(view: RequestView, return_path: str) -> str:
        """The path the app routes for a return path (which the browser sees whole)."""
        return route_path(unquote(urlsplit(return_path).path), view.scope.get("root_path", ""))

    def _sub_path(self, view: RequestView) -> str:
        path = route_path(view.scope["path"], view.scope.get("root_path", ""))
        prefix = self._settings.prefix
        return (path[len(prefix) :] or "/") if path.startswith(prefix) else path

    def _is_our_host(self, host: str) -> bool:
        """Whether ``host`` (from Host / X-Forwarded-Host) names base_url, default ports aside."""
        if not host:
            return True
        default = ":443" if self._settings.is_https else ":80"
        ours = urlsplit(self._settings.base_url).netloc
        return host.removesuffix(default) == ours.removesuffix(default)

    @staticmethod
    def _require(view: RequestView, *methods: str) -> None:
        if view.method not in methods:
            raise GateError("method_not_allowed", f"use {' or '.join(methods)}")

    @staticmethod
    async def _read_form(
        view: RequestView, receive: Receive, *, limit: int, encoded: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """The posted form's fields; those named in ``encoded`` still percent-encoded."""
        content_type = view.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            raise GateError("bad_request", f"expected {FORM_TYPE}")
        declared = view.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise GateError("response_too_large", f"{declared} bytes posted")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GateError("bad_request", "the client went away")
            body += message.get("body", b"")
            if len(body) > limit:
                raise GateError("response_too_large", f"more than {limit} bytes posted")
            if not message.get("more_body", False):
                break
        return parse_form(bytes(body), max_fields=20, encoded=encoded)
