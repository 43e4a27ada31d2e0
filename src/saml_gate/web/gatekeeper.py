"""THE request decision, one object for the three modes.

The middleware, the reverse proxy (the middleware around :class:`~saml_gate.proxy.ReverseProxy`)
and forward-auth (``/saml/auth``) all ask :meth:`Gatekeeper.decide` about the request as the app
(or the upstream) will act on it — its method with overrides, the path it routes, its host — and
only carry the answer out, as oauth2-proxy's ``Proxy`` and ``AuthOnly`` handlers both do with one
session check. The answer is a typed verdict:

* :class:`Public` — a public rule: the app serves the request to anyone, and is told who is
  signed in when a live session comes with it (``user``, ``jwt``: never a refusal nor a cookie
  cleared on a public path, whatever the cookie; a request with a bearer token is anonymous
  there, its cookie not read); ``unclaimed_form`` marks a form POST no live session sent, whose
  body (only) may be read for an IdP's SAMLResponse posted to the wrong address;
* :class:`Admit` — a live session whose person the rule allows, or a bearer token (where the
  rule's ``accept`` takes tokens) whose service it allows: who (``user.kind`` says which), the
  identity JWT for the app, and the refreshed session cookie when one is due (never for a
  token);
* :class:`SignIn` — no live session, or a step-up (``force_authn``): sign in first;
  ``clear_cookie`` removes a session cookie that came and is no good (expired, idle, revoked,
  not this gate's, garbage), the same way in every mode; ``is_passive``: a live session whose
  IdP has not vouched for its person for ``reassert_interval`` — a page load asks the IdP again
  without a prompt (``IsPassive``), anything else gets 401 ``reassertion_required``;
* :class:`Refuse` — a host the gate does not serve or cannot read plainly (``unknown_host``,
  ``bad_host``: before any rule), what the app could read otherwise (``bad_method``,
  ``bad_path``), the store
  unreachable (``store_unavailable``), two session cookies (``duplicate_session``: the answer
  deletes them), or a person the access policy refuses (``forbidden``).

A request with ``Authorization: Bearer`` is decided on the token alone
(:mod:`saml_gate.web.machine_access`): the session cookie is not read, a refused token never
falls back to it, and every token use is a ``token_auth`` event (success or failure).

The decision emits its own auth events — ``policy_denied``, ``request_refused``,
``session_expired``, ``token_auth`` — so every mode logs, hooks and counts them alike, and it
turns an unreachable store into ``Refuse(store_unavailable)`` here, in one place.

The host is an input like the path: :attr:`AppRequest.host` (the one ``Host`` header in
middleware and proxy mode, the original URL's in forward-auth) must be one the gate serves, and
rules with a host decide only for it — before any token is read. The identity JWT names the app
it is for (:mod:`saml_gate.identity.tokens`): the origin of the host served unless it is
base_url's (forward-auth: always), or the deciding rule's ``audience``, for a person and a
service alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import Scope

from saml_gate.errors import ErrorCode, GateError
from saml_gate.identity.tokens import IdentityTokens
from saml_gate.ip_addresses import ClientAddresses
from saml_gate.ops.events import AuthEvent, EventKind, EventSink, Outcome
from saml_gate.policy import DEFAULT_RULE, AccessPolicy, Decision, Route
from saml_gate.policy.access import credential_refusal
from saml_gate.policy.hosts import AppHost
from saml_gate.policy.live import LivePolicy
from saml_gate.policy.request_line import OVERRIDE_HEADERS
from saml_gate.session.cookies import cookie_header_of
from saml_gate.session.decision import Authenticator, DuplicateSession, reassertion_deadline
from saml_gate.session.sessions import SessionCodec
from saml_gate.store import StoreUnavailable
from saml_gate.user import SamlUser
from saml_gate.web.kept_admits import KeptAdmits, Line
from saml_gate.web.machine_access import MachineAccess, bearer_token, token_in_query
from saml_gate.web.misdirected import may_be_misdirected
from saml_gate.web.request import RequestView

#: The headers :class:`AppRequest` reads in its one pass over them.
_NOTED: Final = frozenset({b"host", b"cookie", b"authorization", *OVERRIDE_HEADERS})
#: Refusals that are the access policy's (counted as ``policy_denied``).
POLICY_DENIALS: Final = frozenset({"forbidden", "step_up_failed", "groups_missing"})


class AppRequest:
    """The request as the app (or the upstream) will act on it: what the decision reads.

    ``scope``: its type, method, raw path, query string, headers and client (in forward-auth, a
    scope built from the proxy's description of the original request); ``path``: the path the
    app routes (without ``root_path``). ``host`` and ``return_to`` default to what the scope
    says (the ``Host`` header; the path and query): forward-auth gives the original URL's, its
    ``scheme``, and ``own_origin`` (the identity JWT is always for the origin served)."""

    __slots__ = (
        "_addresses",
        "_cookie_header",
        "_cookies",
        "_host",
        "_return_to",
        "_view",
        "authorization",
        "cookie_bytes",
        "hosts_named",
        "jwt_named",
        "line",
        "overridden",
        "own_origin",
        "path",
        "policy",
        "route",
        "scheme",
        "scope",
    )

    policy: AccessPolicy
    """The policy in force (set by :meth:`Gatekeeper.decide_at_once` when it leaves the
    verdict to the rest)."""
    route: Route
    """The host and the deciding rule(s), as :attr:`policy` found them (set with it)."""
    line: Line | None
    """A plain request's line, by which its admission is kept (None: not kept; set by
    :meth:`Gatekeeper.decide_at_once` when it leaves the verdict to the rest)."""

    def __init__(
        self,
        scope: Scope,
        path: str,
        addresses: ClientAddresses,
        host: str | None = None,
        return_to: str | None = None,
        scheme: str | None = None,
        own_origin: bool = False,
        jwt_size: int = 0,
    ) -> None:
        """``jwt_size``: the length of the identity JWT header's name (0: none), for
        :attr:`jwt_named`."""
        self.scope = scope
        self.path = path
        self._addresses = addresses
        self._return_to = return_to
        self._view: RequestView | None = None
        self.scheme = scheme
        self.own_origin = own_origin
        # One pass over the headers for everything the decision reads (the hot path walked
        # them once per question): the rare cases (two Cookie headers, override headers) are
        # read again by the readers that know them.
        headers = scope["headers"]
        found_host = cookie = None
        hosts = cookies = 0
        authorization = jwt_named = False
        overridden: tuple[bytes, ...] | None = ()
        for key, value in headers:
            if key in _NOTED:
                if key == b"cookie":
                    cookie, cookies = value, cookies + 1
                elif key == b"host":
                    found_host, hosts = value, hosts + 1
                elif key == b"authorization":
                    authorization = True
                else:  # a method override header: the policy reads their values
                    overridden = None
            if len(key) == jwt_size:  # lower() and the _ swap keep a name's length
                jwt_named = True
        self.authorization = authorization
        """Whether the request has an ``Authorization`` header (read only then)."""
        self.jwt_named = jwt_named
        """Whether a header may be the identity JWT's, spelled any way (see the middleware)."""
        self.overridden = overridden
        """``()``: no method override header; None: some (the policy reads their values)."""
        self.cookie_bytes = cookie if cookies == 1 else None
        """The request's one Cookie header as sent (None: none, or several)."""
        self._cookies = cookies
        self._cookie_header: str | None = None
        if host is None and found_host is not None:
            host = found_host.decode("latin-1")
        else:
            hosts = 1 if host is not None else 0  # forward-auth: the original URL's
        self._host = host
        self.hosts_named = hosts
        """How many hosts the request names (``Host`` headers; forward-auth: 1)."""

    @property
    def view(self) -> RequestView:
        """The request read lazily (headers, client address, request id...)."""
        view = self._view
        if view is None:
            view = self._view = RequestView(self.scope, self._addresses)
        return view

    @property
    def cookie_header(self) -> str | None:
        """The request's Cookie headers joined (HTTP/2 may split them), or None."""
        cookies = self._cookies
        if not cookies or self._cookie_header is not None:
            return self._cookie_header
        raw = self.cookie_bytes
        self._cookie_header = (
            raw.decode("latin-1") if raw is not None else cookie_header_of(self.scope["headers"])
        )
        return self._cookie_header

    @property
    def host(self) -> str | None:
        """The host the app will serve as the request names it: its one ``Host`` header (None
        when it has none); raises ``GateError`` ``bad_host`` for more than one."""
        if self.hosts_named > 1:
            raise GateError("bad_host", "more than one Host header")
        return self._host

    @property
    def return_to(self) -> str:
        """Where a sign-in comes back to: this request's page."""
        if self._return_to is None:
            self._return_to = self.view.path_and_query
        return self._return_to


# The verdicts are values nobody changes; not frozen=True, which would double what building
# one costs on the hot path (every admitted request builds an Admit).
@dataclass(slots=True)
class Public:
    """A public rule: the app serves the request to anyone; ``user`` and ``jwt`` (as in
    :class:`Admit`) when a live session came with it, else None (anonymous).
    ``unclaimed_form``: a form POST from a page that no live session sent, which may be an IdP's
    SAMLResponse posted to the wrong address: a mode that sees the body may read a bounded
    prefix of it to tell (:mod:`saml_gate.web.misdirected`); forward-auth sees no body."""

    user: SamlUser | None = None
    jwt: bytes | None = None
    unclaimed_form: bool = False


@dataclass(slots=True)
class Admit:
    """A signed-in person, or a service with a bearer token, the rule allows: ``jwt`` is the
    identity JWT (None when ``jwt_header`` is off), ``refresh_cookie`` the Set-Cookie value of
    the refreshed session when one is due (never for a token)."""

    user: SamlUser
    jwt: bytes | None
    refresh_cookie: bytes | None


@dataclass(slots=True)
class SignIn:
    """Sign in first: ``error`` says why (``not_authenticated``, ``step_up_required``,
    ``reassertion_required``); ``force_authn`` asks the IdP to authenticate again;
    ``clear_cookie`` removes a session cookie that is no good; ``is_passive`` asks the IdP to
    vouch again for ``user``, the live session's person, without a prompt; ``api``: one of
    ``api_paths``, which always answers 401 JSON rather than redirect."""

    error: GateError
    force_authn: bool
    clear_cookie: bytes | None
    is_passive: bool = False
    user: SamlUser | None = None
    api: bool = False


@dataclass(slots=True)
class Refuse:
    """Refused: ``error`` says why (its status is the answer's); ``user``: who, when signed in."""

    error: GateError
    user: SamlUser | None = None


Verdict = Public | Admit | SignIn | Refuse
PUBLIC: Final = Public()
UNCLAIMED_FORM: Final = Public(unclaimed_form=True)


class Gatekeeper:
    """Decides each request for the app (see the module docstring)."""

    def __init__(
        self,
        policy: LivePolicy,
        authenticator: Authenticator,
        sessions: SessionCodec,
        tokens: IdentityTokens | None,
        events: EventSink,
        clock: Callable[[], float],
        reassert_interval: float | None = None,
        machine: MachineAccess | None = None,
        kept: KeptAdmits[Admit] | None = None,
    ) -> None:
        """``tokens``: None when no identity JWT is sent (``jwt_header`` empty);
        ``reassert_interval``: how long the IdP's word on a session holds (None: its life);
        ``machine``: bearer tokens (None: every token is refused); ``kept``: admissions kept
        for a person's next requests (None: every request is decided in full)."""
        self._policy = policy
        self._authenticate = authenticator.authenticate
        self._sessions = sessions
        self._tokens = tokens
        self._events = events
        self._clock = clock
        self._reassert_after = reassert_interval
        self._machine = machine
        self._kept = kept

    async def decide(self, request: AppRequest) -> Verdict:
        """The verdict on ``request``, its auth event emitted: :meth:`decide_at_once`, then,
        when it cannot tell, :meth:`decide_rest`."""
        verdict = self.decide_at_once(request)
        return verdict if verdict is not None else await self.decide_rest(request)

    def decide_at_once(self, request: AppRequest) -> Verdict | None:
        """The verdict when it needs no I/O, its auth event emitted: a host, method, path or
        credential refused, or the admission kept for a signed-in person's Cookie header and
        this request line (the hot path: nothing awaited, nothing logged). None:
        :meth:`decide_rest` decides, with what this step found (``request.policy``,
        ``request.route``, ``request.line``)."""
        policy = self._policy.current  # once: a reload swaps it between requests, never within
        kept, raw = self._kept, request.cookie_bytes
        line = None
        if (  # a plain request (see kept_admits): its line is all its decision reads
            kept is not None
            and raw is not None
            and not request.authorization
            and request.overridden == ()
            and request.hosts_named == 1
        ):
            scope = request.scope
            method = scope.get("method")
            if method != "POST":
                line = (
                    request.path,
                    request.host,
                    request.scheme,
                    request.own_origin,
                    method,
                    scope.get("raw_path"),
                    scope.get("query_string"),
                )
                verdict = kept.get(raw, line, policy, self._clock())
                if verdict is not None:
                    return verdict
        request.line = line
        try:  # the host first: no rule decides for a host the gate does not serve
            route = policy.route(
                request.scope, request.path, request.host, request.scheme, request.overridden
            )
        except GateError as error:  # a host, method or path the app could read otherwise
            return self._refused(request, error)
        request.policy, request.route = policy, route
        rule = route[1]
        if rule.public:
            return None
        scope = request.scope
        try:
            bearer = bearer_token(scope["headers"]) if request.authorization else None
            query = scope.get("query_string")
            if query and token_in_query(query):
                raise GateError("token_in_query", "access_token in the query string")
        except GateError as error:
            return self._refused(request, error, kind="token_auth")
        if bearer is not None:  # decided on the token alone: the cookie is not read
            return None
        if not rule.accepts_sessions:  # accept=token: no session is read
            unaccepted = credential_refusal(rule, token=False)
            if unaccepted is not None:
                return self._refused(request, unaccepted)
        return None

    async def decide_rest(self, request: AppRequest) -> Verdict:
        """The verdict :meth:`decide_at_once` (which ran first) could not give: a public page,
        a bearer token or a session to read."""
        policy = request.policy
        host, rule = request.route
        if rule.public:
            return await self._public(request, policy, rule, host)
        if request.authorization:
            bearer = bearer_token(request.scope["headers"])  # checked by decide_at_once
            if bearer is not None:
                return await self._decide_token(request, policy, rule, host, bearer)
        now = self._clock()
        cookies = request.cookie_header
        kept = self._kept
        try:
            session, outcome = await self._authenticate(cookies, now)
        except StoreUnavailable as exc:  # the session needs the store, which is unreachable
            down = GateError("store_unavailable", f"checking a session: {exc}")
            return self._refused(request, down)
        except DuplicateSession as error:  # two session cookies: neither is picked
            return self._refused(request, error)
        if session is None or outcome != "valid":
            if session is not None and (outcome == "expired" or outcome == "idle"):
                why = (
                    "idle (inactivity_timeout)" if outcome == "idle" else "maximum_duration reached"
                )
                self._emit(request, "session_expired", session.user, reason=why, outcome="success")
            clear = None if outcome == "absent" else self._sessions.clear_cookie()
            api = policy.is_api(request.path)
            return SignIn(GateError("not_authenticated"), rule.needs_fresh_sign_in, clear, api=api)
        user = session.user
        reassert_after = self._reassert_after
        if reassert_after is not None and now >= reassertion_deadline(user, reassert_after):
            # before the policy: the IdP's new word on the groups decides, not the old one
            api = policy.is_api(request.path)
            return SignIn(GateError("reassertion_required"), False, None, True, user, api)
        refusal = policy.refusal(rule, user, now)
        if refusal is not None:
            if refusal.code == "step_up_required":  # back to the IdP, never a 403
                return SignIn(refusal, True, None, api=policy.is_api(request.path))
            return self._refused(request, refusal, user)
        sessions = self._sessions
        jwt, jwt_until = self._token_until(request, policy, rule, host, user, now)
        if sessions.needs_refresh(session, now):
            return Admit(user, jwt, sessions.cookie(sessions.touched(session, now), now))
        admit = Admit(user, jwt, None)
        raw, line = request.cookie_bytes, request.line
        if kept is not None and raw is not None and line is not None:
            until = min(
                sessions.quiet_until(session),
                policy.allowed_until(rule, user),
                jwt_until,
                math.inf if reassert_after is None else reassertion_deadline(user, reassert_after),
            )
            kept.keep(raw, line, admit, user, policy, until)
        return admit

    async def _decide_token(
        self, request: AppRequest, policy: AccessPolicy, rule: Decision, host: AppHost, bearer: str
    ) -> Verdict:
        """A bearer token's verdict: the rule must take tokens, the token must stand for a
        service, and the access policy must allow it (``authorized_groups`` too)."""
        machine = self._machine
        unaccepted = credential_refusal(rule, token=True)
        if unaccepted is not None or machine is None:
            error = unaccepted or GateError("token_not_accepted", f"{rule}: no token is checked")
            return self._refused(request, error, kind="token_auth")
        try:
            user = await machine.principal(bearer)
        except GateError as error:
            return self._refused(request, error, kind="token_auth")
        except StoreUnavailable as exc:
            down = GateError("store_unavailable", f"checking a service token: {exc}")
            return self._refused(request, down, kind="token_auth")
        now = self._clock()
        refusal = policy.refusal(rule, user, now)
        if refusal is not None:
            return self._refused(request, refusal, user)
        self._emit(request, "token_auth", user, reason="bearer token", outcome="success")
        return Admit(user, self._token_until(request, policy, rule, host, user, now)[0], None)

    async def _public(
        self, request: AppRequest, policy: AccessPolicy, rule: Decision, host: AppHost
    ) -> Public:
        """Anyone may pass; who is signed in, when a live session allowed past
        ``authorized_groups`` came with the request. Nothing else: a cookie that is no good,
        two of them, a store down or a re-assertion due make the request anonymous, never
        refused, and its cookie is neither cleared nor refreshed here. A request with a bearer
        token is anonymous too: its cookie is not read (one credential per request) and the
        token is not checked (nothing here needs it). A form POST no live session sent is
        ``unclaimed_form``; when who sent it is unknown (the store unreachable, two session
        cookies) it is not, and its body is left to the app unread."""
        form = request.scope.get("method") == "POST" and may_be_misdirected(request.view)
        cookies = request.cookie_header
        if cookies is None:  # the hot path of public files: nothing to read
            return UNCLAIMED_FORM if form else PUBLIC
        try:
            if request.authorization and bearer_token(request.scope["headers"]) is not None:
                return PUBLIC
        except GateError:  # a malformed Authorization: still a token's request, anonymous
            return PUBLIC
        now = self._clock()
        try:
            session, outcome = await self._authenticate(cookies, now)
        except (StoreUnavailable, DuplicateSession):
            return PUBLIC
        if session is None or outcome != "valid":
            return UNCLAIMED_FORM if form else PUBLIC
        user = session.user
        reassert_after = self._reassert_after
        if (
            reassert_after is not None and now >= reassertion_deadline(user, reassert_after)
        ) or policy.refusal(DEFAULT_RULE, user, now) is not None:
            return PUBLIC
        return Public(user, self._token_until(request, policy, rule, host, user, now)[0])

    def _token_until(
        self,
        request: AppRequest,
        policy: AccessPolicy,
        rule: Decision,
        host: AppHost,
        user: SamlUser,
        now: float,
    ) -> tuple[bytes | None, float]:
        """The identity JWT for the app served (see the module docstring), and until when it
        stays the token given (no JWT: forever)."""
        tokens = self._tokens
        if tokens is None:
            return None, math.inf
        audience = rule.audience
        if audience is None and (request.own_origin or not policy.hosts.is_base(host)):
            audience = host.origin
        return tokens.token_until(user, now, audience)

    def _refused(
        self,
        request: AppRequest,
        error: GateError,
        user: SamlUser | None = None,
        kind: EventKind | None = None,
    ) -> Refuse:
        if kind is None:
            kind = "policy_denied" if error.code in POLICY_DENIALS else "request_refused"
        reason = error.detail or error.info.title
        self._emit(request, kind, user, reason=reason, error_code=error.code)
        return Refuse(error, user)

    def _emit(
        self,
        request: AppRequest,
        kind: EventKind,
        user: SamlUser | None,
        *,
        reason: str,
        outcome: Outcome = "failure",
        error_code: ErrorCode | None = None,
    ) -> None:
        fields = request.view.event_fields()
        if user is None:
            event = AuthEvent(kind, outcome, error_code=error_code, reason=reason, **fields)
        else:
            event = AuthEvent.about(
                user, kind, outcome, error_code=error_code, reason=reason, **fields
            )
        self._events.emit(event)
