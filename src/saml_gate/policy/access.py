"""The access decision: which rule(s) decide a request, and whether a signed-in person meets them.

Rules are tried in order and the first whose host, path (and method) match decides; a request no
rule matches needs any signed-in user. The request's host is one the gate serves
(:class:`~saml_gate.policy.hosts.KnownHosts`: others are refused before any rule).
``public_paths`` come first, as public rules. ``authorized_groups`` is a floor under every
non-public rule: a rule can narrow access, never widen it. Paths are matched in canonical form
(``//`` collapsed, ``\\`` read as ``/``) and a path with dot segments (``/a/../b``,
``/a/..;/b``) is refused, so that a public prefix cannot be used to reach a protected path on an
upstream that normalises paths differently
(:func:`~saml_gate.policy.request_line.canonical_path`). A path with a format suffix
(``/admin.json``) must meet the rule of the path without it as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from saml_gate.errors import GateError, members_of
from saml_gate.policy.hosts import AppHost, KnownHosts, app_host
from saml_gate.policy.request_line import (
    canonical_path,
    check_raw_path,
    checked_method,
    format_stems,
    methods_overridden,
    override_values,
    posts_a_body,
    query_may_override,
    without_parameters,
)
from saml_gate.policy.rules import Rule, email_matches

if TYPE_CHECKING:
    from starlette.types import Scope

    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.response import VerifiedLogin
    from saml_gate.user import SamlUser

#: Every method no rule names (no rule can name "*"), as a ``_method`` in a POST's body may be.
ANY_OTHER_METHOD: Final = "*"
_CACHE_SIZE, _CACHED_KEY = 4096, 256  # decisions kept, for requests of at most that many bytes


@dataclass(frozen=True)
class AllOf:
    """Several rules that must all allow a request: its own method's and each override's, on
    its path and on the path without a format suffix."""

    rules: tuple[Rule, ...]

    @property
    def public(self) -> bool:
        return all(rule.public for rule in self.rules)

    @property
    def needs_fresh_sign_in(self) -> bool:
        return any(rule.needs_fresh_sign_in for rule in self.rules)

    @property
    def accepts_tokens(self) -> bool:
        """A token passes only where every rule that is not public takes one."""
        return all(rule.public or rule.accepts_tokens for rule in self.rules)

    @property
    def accepts_sessions(self) -> bool:
        return all(rule.public or rule.accepts_sessions for rule in self.rules)

    @property
    def audience(self) -> str | None:
        return next((rule.audience for rule in self.rules if rule.audience), None)

    def __str__(self) -> str:
        return " + ".join(str(rule) for rule in self.rules)


Decision = Rule | AllOf
#: The host a request is for and the rule(s) deciding it (:meth:`AccessPolicy.route`).
Route = tuple[AppHost, Decision]
#: What a decision reads of a request besides its path and host: method, raw path, the query
#: string when it may override the method, override headers' values, whether a POST has a body.
_Line = tuple[str, bytes | None, bytes, tuple[bytes, ...], bool]
#: What a route depends on besides the policy: the routed path, the host as named and the
#: scheme, then the line.
_Key = tuple[str, str | None, str | None, str, bytes | None, bytes, tuple[bytes, ...], bool]


def credential_refusal(decision: Decision, token: bool) -> GateError | None:
    """Whether the deciding rule(s) take what proves who calls (``accept``): None, else
    ``token_not_accepted`` for a bearer token (``token``) where a rule takes none, or
    ``token_required`` for anything else where a rule takes tokens only."""
    if token:
        if decision.accepts_tokens:
            return None
        rules = (decision,) if isinstance(decision, Rule) else decision.rules
        accepted = dict.fromkeys(a for rule in rules if not rule.public for a in rule.accept)
        return GateError("token_not_accepted", f"{decision}: accept={','.join(accepted)}")
    if decision.accepts_sessions:
        return None
    return GateError("token_required", f"{decision}: accept=token")


#: The decision for OPTIONS requests when ``options_passthrough`` is on.
PASS_THROUGH: Final = Rule("/", public=True)
#: The decision when no rule matches: any signed-in user (within ``authorized_groups``).
DEFAULT_RULE: Final = Rule("/")


class AccessPolicy:
    """Decides, per request, which rule applies and whether a signed-in user satisfies it."""

    def __init__(self, settings: GateSettings, places: Sequence[str | None] = ()) -> None:
        """``places``: where each rule (``public_paths``, then ``access_rules``) was written,
        such as ``[[rules]] #2 at saml-gate.toml line 9``, for the reason of a refusal."""
        public = tuple(Rule(p, public=True) for p in settings.public_paths)
        self.rules: tuple[Rule, ...] = public + settings.access_rules
        self.hosts = KnownHosts(settings.allowed_hosts, settings.base_url)
        self._api = tuple(Rule(p) for p in settings.api_paths)
        written = (*places, *((None,) * len(self.rules)))
        self._places: dict[int, str] = {id(PASS_THROUGH): "options_passthrough"}
        for n, rule in enumerate(self.rules, 1):  # a rule given twice is the first's
            where = written[n - 1]
            self._places.setdefault(id(rule), f"rule {n}" + (f", {where}" if where else ""))
        self._authorized = settings.authorized_groups
        self._groups_attribute = settings.groups_attribute
        self._options_passthrough = settings.options_passthrough
        self._skew = settings.clock_skew
        self._path_parameters = settings.allow_path_parameters
        self._routed: dict[_Key, Route] = {}
        #: What a POST with a body may become through a ``_method`` in it, which is not read.
        self._body_methods: tuple[str, ...] = (
            (*sorted({m for rule in self.rules for m in rule.methods} - {"POST"}), ANY_OTHER_METHOD)
            if settings.method_override_in_body
            else ()
        )

    def route(
        self,
        scope: Scope,
        path: str,
        host: str | None,
        scheme: str | None = None,
        overridden: tuple[bytes, ...] | None = None,
    ) -> Route:
        """The host served and the rule(s) deciding a request, in one lookup: ``host`` is the
        host as the request names it (its ``Host`` header; None: it names none), ``scheme`` the
        original URL's where a proxy says it (forward-auth); the rest as :meth:`decide`. Raises
        ``GateError`` as :meth:`~saml_gate.policy.hosts.KnownHosts.of_request` and
        :meth:`decide` do.

        The answer is a function of the key below and of this policy, which never changes (a
        reload makes a new one): it is kept for the next request with the same key, as the same
        pages are asked for again and again, and the same tuple is given again (so that a
        decision kept elsewhere can be known to still hold by identity). A refused request is
        not kept."""
        line = self._request_line(scope, overridden)
        key = (path, host, scheme) + line  # noqa: RUF005 (no list built on the hot path)
        routed = self._routed.get(key)
        if routed is None:
            served = self.hosts.of_request(host, scheme)
            routed = (served, self._decide(path, *line, served))
            if len(path) + len(line[1] or b"") + len(line[2]) <= _CACHED_KEY:
                if len(self._routed) >= _CACHE_SIZE:
                    self._routed.clear()
                self._routed[key] = routed
        return routed

    def decide(
        self,
        scope: Scope,
        path: str,
        host: AppHost | None = None,
        overridden: tuple[bytes, ...] | None = None,
    ) -> Decision:
        """The rule(s) deciding a request for the app; ``path`` is the path the app routes,
        ``host`` the host it serves (None: base_url's); ``overridden``: the values of its
        method override headers when the caller has read its headers (``()``: it has none),
        None to read them here.

        Every method the app may run (its own, the overrides, any for a POST with a body) on
        every resource the path may name (also without a format suffix) must be allowed. Raises
        ``GateError`` (``bad_method``, ``bad_path``) for requests the app could read otherwise
        than the gate (see :mod:`saml_gate.policy.request_line`). Requests go through
        :meth:`route`, which also finds the host and keeps its answers."""
        return self._decide(path, *self._request_line(scope, overridden), host)

    def _request_line(self, scope: Scope, overridden: tuple[bytes, ...] | None) -> _Line:
        """What a decision reads of the request besides its path and host."""
        method: str = scope.get("method", "GET")
        headers = scope["headers"]
        if overridden is None:
            overridden = override_values(headers)
        query: bytes = scope.get("query_string", b"")
        if query and not query_may_override(query):
            query = b""  # plays no part: not in the key
        body = (
            method == "POST"
            and bool(self._body_methods)
            and posts_a_body(method, headers, scope.get("http_version", "1.1"))
        )
        return method, scope.get("raw_path"), query, overridden, body

    def _decide(
        self,
        path: str,
        method: str,
        raw_path: bytes | None,
        query: bytes,
        overridden: tuple[bytes, ...],
        body: bool,
        host: AppHost | None,
    ) -> Decision:
        checked_method(method)
        check_raw_path(raw_path, path, self._path_parameters)
        if self._path_parameters:
            path = without_parameters(path)
        path = canonical_path(path)
        overrides = methods_overridden(overridden, query)
        if body:
            overrides += self._body_methods
        return self._decision(path, (method, *overrides), host or self.hosts.base)

    def rule_for(self, path: str, method: str, host: AppHost | None = None) -> Decision:
        """The rule(s) deciding ``method`` on ``path`` of ``host`` (None: base_url's). Raises
        ``GateError`` for refused paths."""
        if self._path_parameters:
            path = without_parameters(path)
        return self._decision(canonical_path(path), (method,), host or self.hosts.base)

    def host_of(self, return_to: str) -> AppHost | None:
        """The host a sign-in's ``return_to`` is on: its own for an absolute URL (on a host
        the sign-in allowed), base_url's for a path."""
        scheme, sep, rest = return_to.partition("://")
        if not sep:
            return self.hosts.base
        return app_host(rest.split("/", 1)[0].split("?", 1)[0], scheme.lower())

    def is_api(self, path: str) -> bool:
        """Whether ``path`` is one of ``api_paths``: a sign-in there is always 401 JSON."""
        if not self._api:
            return False
        try:
            path = canonical_path(path)
        except GateError:
            return False
        return any(rule.matches(path, "GET") for rule in self._api)

    def _decision(self, path: str, methods: tuple[str, ...], host: AppHost | None) -> Decision:
        if "." not in path and len(methods) == 1:  # no format suffix, no override
            return self._match(path, methods[0], host)
        return self._all(path, methods, host, *format_stems(path))

    def _all(
        self, path: str, methods: tuple[str, ...], host: AppHost | None, *stems: str
    ) -> Decision:
        rules = tuple(
            dict.fromkeys(self._match(p, m, host) for m in methods for p in (path, *stems))
        )
        return rules[0] if len(rules) == 1 else AllOf(rules)

    def _match(self, path: str, method: str, host: AppHost | None) -> Rule:
        if method == "OPTIONS" and self._options_passthrough:
            return PASS_THROUGH
        name, port = (host.name, host.port) if host is not None else ("", 0)
        for rule in self.rules:
            if rule.matches(path, method, name, port):
                return rule
        return DEFAULT_RULE

    def refusal(self, decision: Decision, user: SamlUser, now: float) -> GateError | None:
        """None when ``user`` may pass; else ``forbidden`` or ``step_up_required``, its reason
        naming the deciding rule's place (:meth:`place_of`) and the condition that failed."""
        if isinstance(decision, Rule):
            refusal = self._refusal(decision, user, now)
            return None if refusal is None else self._placed(refusal, decision)
        for rule in decision.rules:
            refusal = None if rule.public else self._refusal(rule, user, now)
            if refusal is not None:
                return self._placed(refusal, rule)
        return None

    def place_of(self, rule: Rule) -> str:
        """Which rule it is: ``rule 3`` (its place in the policy, ``public_paths`` first) and
        where it was written, when known; the default rule when none matched."""
        return self._places.get(id(rule), "no rule matched: any signed-in person")

    def _placed(self, refusal: GateError, rule: Rule) -> GateError:
        place = self.place_of(rule)
        needed = refusal.hint_values.get("access_needed")
        hints = dict(refusal.hint_values)
        if needed is not None:
            hints["access_needed"] = f"{needed} (Deciding rule: {place}.)"
        return GateError(refusal.code, f"{refusal.detail} [{place}]", hint_values=hints)

    def _refusal(self, rule: Rule, user: SamlUser, now: float) -> GateError | None:
        if self._authorized and not user.in_group(*self._authorized):
            return GateError(
                "forbidden",
                f"authorized_groups: {user.name_id} is in none of the groups"
                f" {', '.join(self._authorized)}",
                hint_values={"access_needed": members_of(self._authorized, "authorized_groups")},
            )
        if rule.groups and not user.in_group(*rule.groups):
            return GateError(
                "forbidden",
                f"{rule}: {user.name_id} is in none of the groups {', '.join(rule.groups)}",
                hint_values={"access_needed": members_of(rule.groups)},
            )
        if rule.emails and not email_matches(user.email, rule.emails):
            return GateError(
                "forbidden",
                f"{rule}: the email of {user.name_id} is not one of {', '.join(rule.emails)}",
                hint_values={
                    "access_needed": "This page is for the email addresses its access rule"
                    " names, exactly as the IdP sends them."
                },
            )
        for name, allowed in rule.attributes:
            if not any(value in allowed for value in user.attributes.get(name, ())):
                return GateError(
                    "forbidden",
                    f"{rule}: attribute {name} is not one of {', '.join(allowed)}",
                    hint_values={
                        "access_needed": f"This page needs a value of your {name!r} attribute"
                        " that its access rule allows."
                    },
                )
        if rule.max_authn_age is not None and now > self._fresh_until(rule, user):
            age = int(now - user.authenticated_at)
            return GateError(
                "step_up_required",
                f"{rule}: signed in at the IdP {age} s ago, at most {int(rule.max_authn_age)} s",
            )
        if rule.authn_contexts and user.authn_context not in rule.authn_contexts:
            return GateError(
                "step_up_required",
                f"{rule}: authentication context {user.authn_context} is not one of"
                f" {', '.join(rule.authn_contexts)}",
            )
        return None

    def allowed_until(self, decision: Decision, user: SamlUser) -> float:
        """Until when :meth:`refusal` keeps allowing ``user`` whom it allows now: the
        ``max_authn_age`` of the decision's rules is the only condition that time changes."""
        rules = (decision,) if isinstance(decision, Rule) else decision.rules
        return min(
            (self._fresh_until(r, user) for r in rules if r.max_authn_age is not None),
            default=math.inf,
        )

    def _fresh_until(self, rule: Rule, user: SamlUser) -> float:
        """When the sign-in at the IdP becomes too old for ``rule``'s ``max_authn_age``."""
        assert rule.max_authn_age is not None
        return user.authenticated_at + rule.max_authn_age + self._skew

    def fresh_sign_in_for(self, path: str, host: AppHost | None = None) -> bool:
        """Whether a sign-in that returns to ``path`` (of ``host``) should carry ForceAuthn."""
        try:
            return self.rule_for(path, "GET", host).needs_fresh_sign_in
        except GateError:
            return False

    def groups_missing(self, login: VerifiedLogin) -> GateError | None:
        """``groups_missing`` when ``authorized_groups`` is set and the assertion has no groups
        attribute at all (the IdP application does not send groups: a setup error, told apart
        from a person in none of the groups)."""
        if self._authorized and self._groups_attribute not in login.attributes:
            return GateError(
                "groups_missing",
                f"the assertion for {login.name_id} has no {self._groups_attribute!r} attribute",
            )
        return None

    def unmet_step_up(
        self, path: str, user: SamlUser, now: float, host: AppHost | None = None
    ) -> GateError | None:
        """After a sign-in the gate requested for ``path``: ``step_up_failed`` when the new
        session still needs a step-up there (the IdP ignored ForceAuthn or used another
        authentication context), so that the gate refuses instead of looping through the IdP."""
        try:
            refusal = self.refusal(self.rule_for(path, "GET", host), user, now)
        except GateError:
            return None
        if refusal is None or refusal.code != "step_up_required":
            return None
        return GateError("step_up_failed", refusal.detail)
