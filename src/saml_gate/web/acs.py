"""The assertion consumer service: the IdP posts a SAMLResponse, the browser gets a session.

The answer to a passive sign-in (a session due for re-assertion, ``reassert_interval``) is
told apart by its RelayState: a success replaces the session with one carrying the IdP's new
groups, attributes and expiry; any failure (``NoPassive``: the IdP has no session for the
person any more, or anything else the verifier refuses) ends every session of that person, on
every gate sharing the store, and starts a normal sign-in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ops.events import AuthEvent, EventSink
from saml_gate.ops.metrics import GateMetrics
from saml_gate.policy.live import LivePolicy
from saml_gate.runtime.engine import Engine
from saml_gate.saml.response import VerifiedLogin
from saml_gate.session.relay import PendingLogin, RelayTracker, safe_return_path
from saml_gate.session.return_to import ReturnTargets
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.store import Store, StoreUnavailable
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import (
    RequestView,
    names_base_url,
    read_form,
    require_method,
    saml_form_limit,
)
from saml_gate.web.responses import see_other, with_cookies
from saml_gate.web.sign_in import login_url_for

log = logging.getLogger("saml_gate")


@dataclass(frozen=True)
class AssertionConsumer:
    """``/acs``: verify the posted SAMLResponse, check it against the pending sign-in and the
    replay cache, issue the session and send the browser back where it started."""

    settings: GateSettings
    engine: Engine
    relay: RelayTracker
    sessions: SessionCodec
    revocations: Revocations
    store: Store
    events: EventSink
    metrics: GateMetrics | None
    policy: LivePolicy
    refusals: Refusals

    async def acs(self, view: RequestView, receive: Receive) -> Response:
        require_method(view, "POST")
        settings, sessions = self.settings, self.sessions
        form = await read_form(
            view, receive, limit=saml_form_limit(settings), encoded=("SAMLResponse",)
        )
        saml_response = form.get("SAMLResponse")  # decoded by the verification worker
        if not saml_response:
            raise GateError("missing_saml_response")
        policy = self.policy.current  # once: the return path's hosts and the rules agree
        pending = self.relay.pending(view.cookies, ReturnTargets(policy.hosts))
        now = settings.clock()
        relay_state = form.get("RelayState")
        # the key in the RelayState, unsigned once: both the passive check and the return path
        key = self.relay.relay_key(relay_state) if relay_state else None
        passive = self._passive(key, pending)
        try:
            login, verify_seconds = await self._verify(view, saml_response, pending, now)
            return_path, clear = self._return_path(login, relay_state, key, pending)
            refusal = policy.groups_missing(login)
            if refusal is not None:
                raise refusal
            await self._check_replay(login, now)
        except GateError as error:
            if passive is None:
                raise
            return await self._reassertion_failed(view, passive, error, now)
        replaces = passive.reasserting if passive is not None else None
        session, cookie, writes = sessions.issue(sessions.new_session(login, now), now)
        registration = self.revocations.registration(
            session.user, now, replaces.session_id if replaces is not None else None
        )
        await self.store.write([*writes, *registration])
        # an answer to our request, not to a passive one: where it returns, read once
        requested = login.in_response_to is not None and replaces is None
        app_path = view.app_path(return_path) if requested else ""
        host = policy.host_of(return_path) if requested else None
        self.events.emit(
            AuthEvent.about(
                session.user,
                "reassertion" if replaces is not None else "login",
                "success",
                idp_initiated=login.in_response_to is None,
                step_up=requested  # we asked for ForceAuthn
                and (settings.force_authn or policy.fresh_sign_in_for(app_path, host)),
                duration_ms=round(verify_seconds * 1000, 3),
                **view.event_fields(),
            )
        )
        response = see_other(return_path)
        # answered our (ForceAuthn) request: never loop on a step-up. A passive answer could not
        # authenticate anyone again: the page then asks for the step-up itself.
        if requested:
            unmet = policy.unmet_step_up(app_path, session.user, now, host)
            if unmet is not None:
                response = self.refusals.error(view, unmet, event="policy_denied")
        return with_cookies(response, [cookie, *clear])

    @staticmethod
    def _passive(key: str | None, pending: list[PendingLogin]) -> PendingLogin | None:
        """The passive sign-in this answer's RelayState (its ``key``) belongs to, if it is one:
        read before the Response is (a NoPassive answer says nothing else of which sign-in it
        ends)."""
        if key is None:
            return None
        return next((p for p in pending if p.key == key and p.reasserting is not None), None)

    async def _reassertion_failed(
        self, view: RequestView, passive: PendingLogin, error: GateError, now: float
    ) -> Response:
        """The IdP did not vouch for the person again: every session of theirs ends, on every
        gate sharing the store, and this browser starts a normal sign-in (``/login``)."""
        person = passive.reasserting
        assert person is not None
        ended: int | None = None
        try:
            ended = await self.revocations.revoke_person(person.issuer, person.name_id, now)
        except StoreUnavailable as exc:  # the session is past its re-assertion anyway
            log.error(
                "saml-gate could not end the sessions of %s after a failed re-assertion: %s",
                person.name_id,
                exc,
                extra={"event": "reassertion_revocation_failed", "name_id": person.name_id},
            )
        self.events.emit(
            AuthEvent(
                "reassertion",
                "failure",
                error_code=error.code,
                reason=f"the IdP did not vouch again ({error.detail or error.info.title});"
                f" {'?' if ended is None else ended} session(s) of this person ended",
                name_id=person.name_id,
                issuer=person.issuer,
                extra={"sessions": ended},
                **view.event_fields(),
            )
        )
        again = login_url_for(self.settings.login_url, passive.return_path)
        cookies = [self.sessions.clear_cookie(), *self.relay.clear_cookies(passive.key)]
        return see_other(again, cookies)

    async def _verify(
        self, view: RequestView, saml_response: str, pending: list[PendingLogin], now: float
    ) -> tuple[VerifiedLogin, float]:
        """The verified login and how long verifying it took (observed in the metrics)."""
        started = time.perf_counter()
        try:
            expected = {p.request_id for p in pending}
            login = await self.engine.verify_response(
                saml_response, expected, now, view.client_host
            )
        except GateError as error:
            seen = view.public_host
            if (
                error.code == "unknown_request"
                and not pending
                and not names_base_url(self.settings, seen)
            ):
                raise GateError(
                    "base_url_mismatch",
                    f"the browser posted to {seen!r} but base_url is"
                    f" {self.settings.base_url!r}, so no sign-in cookie from this browser"
                    " matches",
                ) from error
            raise
        except Exception as exc:  # a parser or crypto failure we did not map: still a 400
            log.exception("saml-gate: unexpected error while verifying a Response")
            raise GateError("malformed_response", type(exc).__name__) from exc
        finally:
            verify_seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.verify_seconds.observe(verify_seconds)
        return login, verify_seconds

    def _return_path(
        self,
        login: VerifiedLogin,
        relay_state: str | None,
        key: str | None,
        pending: list[PendingLogin],
    ) -> tuple[str, list[bytes]]:
        """Where the browser goes after signing in, and the pending-login cookies to clear.
        ``key``: the one in ``relay_state`` (None: none, or not a valid token of ours)."""
        if login.in_response_to is None:  # IdP-initiated: RelayState is the return path
            unsolicited_path = safe_return_path(relay_state)
            if unsolicited_path is None:
                raise GateError("bad_relay_state", "RelayState is not a relative path on this site")
            return unsolicited_path, []
        match = next(p for p in pending if p.request_id == login.in_response_to)
        if relay_state and key != match.key:
            raise GateError("bad_relay_state", "the RelayState belongs to another sign-in")
        return match.return_path, self.relay.clear_cookies(match.key)

    async def _check_replay(self, login: VerifiedLogin, now: float) -> None:
        once = [(login.replay_key, login.replay_until - now)]
        if login.in_response_to is not None:
            s = self.settings
            once.append(("request:" + login.in_response_to, s.login_timeout + s.clock_skew))
        fresh = await self.store.add_once_each(once)  # one round trip
        if not fresh[0]:
            raise GateError("replayed", "this assertion ID was already accepted")
        if not all(fresh):
            raise GateError("replayed", "this sign-in request was already answered")
