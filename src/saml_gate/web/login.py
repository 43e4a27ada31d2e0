"""Starting a sign-in: ``/login``, and carrying out a :class:`~saml_gate.web.gatekeeper.SignIn`
for the app (middleware and proxy modes): a redirect to the IdP for a page load, 401 JSON for a
script, a refused WebSocket. A session due for re-assertion (``reassert_interval``) is sent to
the IdP with a passive AuthnRequest, from an app page or from ``/login`` (where forward-auth
sends page loads)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from starlette.responses import Response
from starlette.types import Receive, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.policy.live import LivePolicy
from saml_gate.runtime.engine import Engine
from saml_gate.session.decision import Authenticator, reassertion_deadline
from saml_gate.session.relay import Reasserting, RelayTracker
from saml_gate.session.return_to import ReturnTargets
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.address import guard_cookie, on_base_url, wrong_address
from saml_gate.web.gatekeeper import AppRequest, SignIn
from saml_gate.web.misdirected import may_be_misdirected, peek_saml_response, wrong_acs
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import (
    RequestView,
    names_base_url,
    require_method,
    saml_form_limit,
)
from saml_gate.web.responses import see_other, with_cookies
from saml_gate.web.sign_in import sign_in_needed

log = logging.getLogger("saml_gate")
_MAX_WARNED_HOSTS: Final = 32


@dataclass(frozen=True)
class Login:
    """Sends browsers to the IdP (with a pending-login cookie to match the answer by)."""

    settings: GateSettings
    policy: LivePolicy
    refusals: Refusals
    relay: RelayTracker
    engine: Engine
    authenticator: Authenticator | None = None
    """Who is signed in, for ``/login`` to re-assert a session that is due (None: never)."""
    _warned_hosts: set[str] = field(default_factory=set, init=False)

    async def login(self, view: RequestView, receive: Receive) -> Response:
        """``/login?return_to=/path``: sign in, then back to that path on this site; or to an
        absolute URL on a host of ``allowed_hosts`` (see :mod:`saml_gate.session.return_to`)."""
        require_method(view, "GET", "HEAD")
        policy = self.policy.current  # once: its hosts and its rules, never two policies
        targets = ReturnTargets(policy.hosts)
        return_path = targets.check(view.query("return_to"))
        if return_path is None:
            raise GateError(
                "bad_relay_state",
                "return_to must be a relative path on this site or a URL on a host of"
                " allowed_hosts",
            )
        reassert = await self._due_for_reassertion(view)
        force = reassert is None and policy.fresh_sign_in_for(
            view.app_path(return_path), policy.host_of(return_path)
        )
        return await self.start(
            view, return_path, force_authn=force, reassert=reassert, targets=targets
        )

    async def _due_for_reassertion(self, view: RequestView) -> SamlUser | None:
        """The person of this browser's live session when the IdP must vouch for them again."""
        interval, authenticator = self.settings.reassert_interval, self.authenticator
        if interval is None or authenticator is None:
            return None
        now = self.settings.clock()
        try:
            session = await authenticator.live_session(view.cookie_header, now)
        except StoreUnavailable:  # a plain sign-in then, which needs the store anyway
            return None
        if session is None or now < reassertion_deadline(session.user, interval):
            return None
        return session.user

    async def sign_in(
        self, request: AppRequest, verdict: SignIn, receive: Receive, send: Send
    ) -> None:
        """Carry ``verdict`` out for the app: a page load goes to the IdP (with ForceAuthn when
        the verdict says so), anything else gets 401 JSON with the login URL, a WebSocket is
        refused; a session cookie that is no good is cleared either way."""
        view = request.view
        scope = view.scope
        if scope["type"] == "websocket":
            code = verdict.error.code if verdict.is_passive else "not_authenticated"
            await self.refusals.deny_websocket(scope, receive, send, code)
            return
        clear = [verdict.clear_cookie] if verdict.clear_cookie is not None else []
        settings = self.settings
        if may_be_misdirected(view):  # refused anyway (no session): its body is nobody else's
            refusal, receive = await self.misdirected(view, receive)
            if refusal is not None:
                await with_cookies(refusal, clear)(scope, receive, send)
                return
        if view.is_navigation and not verdict.api:
            response = await self.start(
                view,
                request.return_to,
                extra_cookies=clear,
                force_authn=verdict.force_authn,
                reassert=verdict.user if verdict.is_passive else None,
            )
        else:
            response = sign_in_needed(settings.login_url, request.return_to, verdict.error, clear)
        await response(scope, receive, send)

    async def misdirected(
        self, view: RequestView, receive: Receive
    ) -> tuple[Response | None, Receive]:
        """The ``wrong_acs_url`` page when ``view`` posts a SAMLResponse (at most
        ``saml_form_limit`` bytes read), else None; and a ``receive`` that replays what was
        read, for the app to read the body as it came."""
        settings = self.settings
        found, receive = await peek_saml_response(view, receive, limit=saml_form_limit(settings))
        if not found:
            return None, receive
        return self.refusals.error(view, wrong_acs(view, settings), event="login_refused"), receive

    async def start(
        self,
        view: RequestView,
        return_path: str,
        *,
        extra_cookies: Iterable[bytes] = (),
        force_authn: bool = False,
        reassert: SamlUser | None = None,
        targets: ReturnTargets | None = None,
    ) -> Response:
        """A 303 to the IdP with a pending-login cookie; a refusal if this is not a navigation.
        ``reassert``: the person of a live session the IdP is asked about without a prompt;
        ``targets``: where ``return_path`` was found safe (None: the hosts in force now)."""
        refusal = _not_a_navigation(view)
        if refusal is not None:
            return with_cookies(self.refusals.error(view, refusal), extra_cookies)
        self._warn_if_foreign(view.public_host)
        settings = self.settings
        readdress = wrong_address(view, settings)
        if isinstance(readdress, GateError):
            there = ("Open " + settings.base_url, on_base_url(view, settings))
            page = self.refusals.error(view, readdress, links=[there])
            return with_cookies(page, extra_cookies)
        if readdress is not None:
            return see_other(readdress, [*extra_cookies, guard_cookie(settings)])
        relay = self.relay
        targets = targets or relay.targets
        key, relay_state = relay.start(return_path, view.cookie_header, targets)
        passive = reassert is not None
        request_id, location = await self.engine.authn_request_url(
            relay_state, force_authn, is_passive=passive
        )
        reasserting = Reasserting.of(reassert) if reassert is not None else None
        pending = relay.pending_cookies(key, request_id, return_path, reasserting, targets)
        return see_other(location, [*pending, *extra_cookies])

    def _warn_if_foreign(self, seen: str) -> None:
        """Log (once per host, for a few hosts) a sign-in started away from base_url."""
        if names_base_url(self.settings, seen) or seen in self._warned_hosts:
            return
        if len(self._warned_hosts) < _MAX_WARNED_HOSTS:
            self._warned_hosts.add(seen)
        log.warning(
            "saml-gate: a sign-in starts from %r but base_url is %s (base_url_mismatch): the"
            " browser is sent to base_url first, since the IdP answers there; set base_url to"
            " the public URL people open",
            seen,
            self.settings.base_url,
            extra={"event": "base_url_mismatch"},
        )


def _not_a_navigation(view: RequestView) -> GateError | None:
    """Why this request may not start a sign-in, or None. Only a top-level page load may
    (each start sets a pending cookie): not a fetch, image, script or frame, as far as the
    browser's Sec-Fetch headers tell, nor a speculative prefetch."""
    h = view.headers
    dest, purpose = h.get("sec-fetch-dest", ""), h.get("sec-purpose", "")
    if view.is_navigation and dest in ("", "document") and "prefetch" not in purpose:
        return None
    told = ("sec-fetch-mode", "sec-fetch-dest", "sec-purpose", "accept", "x-requested-with")
    return GateError("not_a_navigation", ", ".join(f"{n}: {h[n][:40]!r}" for n in told if n in h))
