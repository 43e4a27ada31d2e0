"""Signing out: ``/logout`` (local sign-out, then SAML Single Logout at the IdP) and ``/slo``
(the IdP's LogoutRequest, or its LogoutResponse to ours)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable

from itsdangerous import BadSignature
from starlette.responses import Response
from starlette.types import Receive

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ops.events import AuthEvent, EventSink
from saml_gate.policy.live import LivePolicy
from saml_gate.runtime.engine import Engine
from saml_gate.runtime.saml_state import LiveSaml
from saml_gate.saml.logout import IdpLogoutMessage, IdpLogoutRequest, IdpLogoutResponse
from saml_gate.session.decision import Authenticator
from saml_gate.session.pending_logout import PendingLogout
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.session.signing import signer
from saml_gate.store import Store, StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.pages import IDP_LOGOUT_NOTES, sign_out_form, signed_out_page
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView, read_form, require_method, saml_form_limit
from saml_gate.web.responses import see_other, with_cookies
from saml_gate.web.sign_out import SignOutOrigins

log = logging.getLogger("saml_gate")


class Logout:
    """Ends sessions: ours on ``/logout`` (then at the IdP), or those the IdP names on ``/slo``."""

    def __init__(
        self,
        settings: GateSettings,
        *,
        saml: LiveSaml,
        engine: Engine,
        authenticator: Authenticator,
        sessions: SessionCodec,
        revocations: Revocations,
        store: Store,
        events: EventSink,
        refusals: Refusals,
        policy: LivePolicy,
    ) -> None:
        """``policy``: the access policy in force, whose hosts a one-click sign-out's
        ``Origin`` may be on."""
        self._settings = s = settings
        self._saml = saml  # its IdP changes when the metadata is refreshed
        self._engine = engine
        self._authenticator = authenticator
        self._sessions = sessions
        self._revocations = revocations
        self._store = store
        self._events = events
        self._refusals = refusals
        self._signer = signer(s.secret_key, "logout")
        self._origins = SignOutOrigins(s, policy.known_hosts)
        self._pending = PendingLogout(s)

    async def logout(self, view: RequestView, receive: Receive) -> Response:
        """Local sign-out, then SAML Single Logout at the IdP when it has an SLO endpoint.
        Not a CSRF target: GET only shows a form; the POST needs its session-bound token, or
        to come from a page of this site (an app's one-click "Sign out",
        :mod:`saml_gate.web.sign_out`), else it is sent to the GET's form."""
        require_method(view, "GET", "POST")
        try:
            return await self._logout(view, receive)
        except StoreUnavailable as exc:  # the cookie goes anyway; say the revocation failed
            error = GateError("store_unavailable", f"sign-out: {exc}")
            return with_cookies(self._refusals.error(view, error), [self._clear_session()])

    async def _logout(self, view: RequestView, receive: Receive) -> Response:
        s = self._settings
        try:
            session = await self._authenticator.live_session(view.cookie_header, s.clock())
        except StoreUnavailable:  # who it is suffices: the sign-out then holds here at once
            session = self._authenticator.identity(view.cookie_header)
        user = session.user if session is not None else None
        if view.method == "GET":
            if user is None:
                note = IDP_LOGOUT_NOTES.get(view.query("done") or "")
                return signed_out_page(s.login_url, note) if note else signed_out_page(s.login_url)
            token = self._signer.sign(user.session_id).decode()
            return sign_out_form(s.public_path("/logout"), user.display_name, token)
        form = await read_form(view, receive, limit=4096)
        token = form.get("token", "")
        if not (self._signed_for(token, user) or self._origins.posted_from_site(view.headers)):
            if token and user is not None:
                raise GateError("bad_request", "the sign-out form has expired; try again")
            # Another site's form, or a browser that does not say where it posts from: nothing
            # is ended nor cleared (its session cookie may just not have been sent: SameSite);
            # the GET asks the person, with the session-bound form.
            return see_other(s.public_path("/logout"))
        response = signed_out_page(s.login_url)
        if user is not None:
            await self._revocations.revoke(user, s.clock())
            self._events.emit(AuthEvent.about(user, "logout", "success", **view.event_fields()))
            if s.idp_logout:
                response = await self._logout_at_idp(user) or response
        return with_cookies(response, [self._clear_session()])

    def _signed_for(self, token: str, user: SamlUser | None) -> bool:
        """Whether ``token`` is the confirmation form's token for ``user``'s session."""
        if not token or user is None:
            return False
        try:
            return self._signer.unsign(token).decode() == user.session_id
        except BadSignature:
            return False

    async def _logout_at_idp(self, user: SamlUser) -> Response | None:
        """A redirect carrying a signed LogoutRequest to the IdP, or None if it has no SLO."""
        found = await self._engine.logout_request_url(user)
        if found is None:
            return None
        request_id, location = found
        return see_other(location, self._pending.cookies(request_id))

    async def slo(self, view: RequestView, receive: Receive) -> Response:
        """The IdP's LogoutRequest (IdP-initiated) or LogoutResponse (answering ours), with the
        HTTP-Redirect (GET) or HTTP-POST binding."""
        require_method(view, "GET", "POST")
        engine = self._engine
        now = self._settings.clock()
        read: Awaitable[IdpLogoutMessage]
        if view.method == "GET":
            read = engine.read_logout_redirect(view.query_string, now)
        else:
            form = await read_form(view, receive, limit=saml_form_limit(self._settings))
            read = engine.read_logout_post(form, now)
        try:
            message = await read
        except GateError:
            raise
        except Exception as exc:  # a parser or crypto failure we did not map: still a 400
            log.exception("saml-gate: unexpected error while reading a logout message")
            raise GateError("slo_invalid", type(exc).__name__) from exc
        if isinstance(message, IdpLogoutResponse):
            return self._logout_answered(view, message)
        return await self._logout_requested(view, message, now)

    def _logout_answered(self, view: RequestView, answer: IdpLogoutResponse) -> Response:
        expected = self._pending.request_id(view.cookies)
        if expected is None or answer.in_response_to != expected:
            raise GateError(
                "slo_unexpected",
                f"InResponseTo {answer.in_response_to!r}, pending logout {expected!r}",
            )
        self._events.emit(
            AuthEvent(
                "slo",
                "success" if answer.success else "failure",
                reason=f"the IdP answered our LogoutRequest: {answer.status}"
                + (" (partial)" if answer.partial else ""),
                issuer=self._saml.idp.entity_id,
                **view.event_fields(),
            )
        )
        done = "idp" if answer.success else "idp_failed"
        clear = self._pending.clear_cookies()
        if view.method == "GET":  # the answer is in the address bar: move on to a clean URL
            return see_other(self._settings.public_path("/logout") + "?done=" + done, clear)
        return with_cookies(
            signed_out_page(self._settings.login_url, IDP_LOGOUT_NOTES[done]), clear
        )

    async def _logout_requested(
        self, view: RequestView, request: IdpLogoutRequest, now: float
    ) -> Response:
        ended = await self._end_sessions(request, now)
        self._events.emit(
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
        location = await self._engine.logout_response_url(
            request.id, request.relay_state, success=ended >= 0
        )
        if location is not None:
            response = see_other(location)
        elif ended < 0:
            response = self._refusals.error(
                view, GateError("store_unavailable", "IdP-initiated logout")
            )
        else:
            response = signed_out_page(self._settings.login_url)
        current = self._authenticator.identity(view.cookie_header)  # who, without the store
        if current is not None and current.user.name_id == request.name_id:
            with_cookies(response, [self._clear_session()])
            if ended < 0 and _names(request, current.user):
                # The store is unreachable: the session of this very browser at least ends
                # here now, and everywhere once the store takes the revocation.
                with contextlib.suppress(StoreUnavailable):
                    await self._revocations.revoke(current.user, now)
        return response

    async def _end_sessions(self, request: IdpLogoutRequest, now: float) -> int:
        """How many sessions the IdP's LogoutRequest ended; -1 when the store is unreachable."""
        try:
            if not await self._store.add_once(
                f"logout:{request.issuer}:{request.id}", request.valid_until - now
            ):
                raise GateError("slo_invalid", "this LogoutRequest was already handled (replayed)")
            return await self._revocations.revoke_subject(
                request.issuer, request.name_id, request.session_indexes, now
            )
        except StoreUnavailable as exc:
            log.error(
                "saml-gate could not end the sessions of %s for the IdP's LogoutRequest: %s",
                request.name_id,
                exc,
                extra={"event": "slo_request_failed", "name_id": request.name_id},
            )
            return -1

    def _clear_session(self) -> bytes:
        return self._sessions.clear_cookie()


def _names(request: IdpLogoutRequest, user: SamlUser) -> bool:
    """Whether the IdP's LogoutRequest names this session (its subject, and its SessionIndex
    when the request lists any)."""
    return (
        user.issuer == request.issuer
        and user.name_id == request.name_id
        and (not request.session_indexes or user.session_index in request.session_indexes)
    )
