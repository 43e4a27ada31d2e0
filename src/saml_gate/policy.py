"""Access policy: which requests need a sign-in, who may pass, and when a fresh sign-in is due.

Rules are tried in order and the first whose path (and method) matches decides; a request no
rule matches needs any signed-in user. ``public_paths`` come first, as public rules.
``authorized_groups`` is a floor under every non-public rule: a rule can narrow access, never
widen it. Paths are matched in canonical form (``//`` collapsed, ``\\`` read as ``/``) and a
path with dot segments (``/a/../b``, ``/a/..;/b``) is refused, so that a public prefix cannot be
used to reach a protected path on an upstream that normalises paths differently
(:func:`~saml_gate.web.request_line.canonical_path`). A path with a format suffix
(``/admin.json``) must meet the rule of the path without it as well.

Text form (environment, command line), one rule per string::

    /static/ public
    /admin/ groups=admins|ops max_authn_age=600
    re:/reports/\\d+ attribute.department=finance|legal methods=GET
    /vault/ authn_context=urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from saml_gate.errors import ConfigError, GateError, members_of
from saml_gate.web.request_line import (
    canonical_path as canonical_path,  # re-exported: config/ reads paths of rules with it
)
from saml_gate.web.request_line import (
    check_raw_path,
    checked_method,
    format_stems,
    is_method,
    override_methods,
    posts_a_body,
    without_parameters,
)

if TYPE_CHECKING:
    from starlette.types import Scope

    from saml_gate.config.settings import GateSettings
    from saml_gate.saml.response import VerifiedLogin
    from saml_gate.user import SamlUser

SETTING: Final = "access_rules"
#: Every method no rule names (no rule can name "*"), as a ``_method`` in a POST's body may be.
ANY_OTHER_METHOD: Final = "*"
_CACHE_SIZE, _CACHED_PATH = 4096, 256  # decisions kept for paths with a format suffix


def _strings(value: Iterable[str] | str, what: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(SETTING, f"{what} must be non-empty strings, not {item!r}")
    return tuple(item.strip() for item in items)


@dataclass(frozen=True, init=False)
class Rule:
    """One access rule. ``path``: ``"/admin/"`` (that prefix, and ``/admin`` itself),
    ``"/health"`` (exactly that path) or a compiled ``re.Pattern`` (must match the whole path).

    ``public`` lets anyone in without signing in. Otherwise the person must be signed in and
    be in one of ``groups`` (when given), have for each attribute in ``attributes`` one of the
    listed values, have signed in at the IdP at most ``max_authn_age`` seconds ago, and with an
    authentication context in ``authn_contexts`` (when given); the last two send the person
    back to the IdP with ForceAuthn rather than refusing. ``methods`` limits the rule to
    those methods (GET includes HEAD; a WebSocket handshake counts as GET).
    """

    path: str | re.Pattern[str]
    public: bool
    groups: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    methods: tuple[str, ...]
    max_authn_age: float | None
    authn_contexts: tuple[str, ...]

    def __init__(
        self,
        path: str | re.Pattern[str],
        *,
        public: bool = False,
        groups: Iterable[str] | str = (),
        attributes: Mapping[str, Iterable[str] | str] | None = None,
        methods: Iterable[str] | str = (),
        max_authn_age: float | None = None,
        authn_contexts: Iterable[str] | str = (),
    ) -> None:
        if isinstance(path, str):
            if not path.startswith("/"):
                raise ConfigError(SETTING, f"the path {path!r} must start with '/'")
            try:
                if canonical_path(path) != path:
                    raise ConfigError(SETTING, f"the path {path!r} must not contain '//'")
            except GateError as exc:
                raise ConfigError(SETTING, f"the path {path!r}: {exc.detail}") from exc
        elif not isinstance(path, re.Pattern):
            raise ConfigError(SETTING, f"a rule's path must be a string or re.Pattern: {path!r}")
        attrs = tuple(
            (name, _strings(values, f"values of attribute {name!r}"))
            for name, values in (attributes or {}).items()
        )
        if any(not values for _, values in attrs):
            raise ConfigError(SETTING, "each required attribute needs at least one value")
        method_list = tuple(m.upper() for m in _strings(methods, "methods"))
        for method in method_list:
            if not is_method(method):
                raise ConfigError(SETTING, f"{method!r} is not an HTTP method")
        if "GET" in method_list and "HEAD" not in method_list:
            method_list += ("HEAD",)
        if max_authn_age is not None and not (
            isinstance(max_authn_age, int | float)
            and math.isfinite(max_authn_age)
            and max_authn_age > 0
        ):
            raise ConfigError(SETTING, "max_authn_age must be a positive number of seconds")
        contexts = _strings(authn_contexts, "authn_contexts")
        group_list = _strings(groups, "groups")
        if public and (group_list or attrs or max_authn_age is not None or contexts):
            raise ConfigError(
                SETTING, f"{_path_text(path)}: a public rule cannot also require anything"
            )
        set_ = object.__setattr__
        set_(self, "path", path)
        set_(self, "public", bool(public))
        set_(self, "groups", group_list)
        set_(self, "attributes", attrs)
        set_(self, "methods", method_list)
        set_(self, "max_authn_age", None if max_authn_age is None else float(max_authn_age))
        set_(self, "authn_contexts", contexts)

    @classmethod
    def parse(cls, text: str) -> Rule:
        """A rule from its text form (see the module docstring)."""
        tokens = text.split()
        if not tokens:
            raise ConfigError(SETTING, "an empty rule")
        raw_path, options = tokens[0], tokens[1:]
        path: str | re.Pattern[str] = raw_path
        if raw_path.startswith("re:"):
            try:
                path = re.compile(raw_path[3:])
            except re.error as exc:
                raise ConfigError(SETTING, f"{text!r}: bad pattern: {exc}") from exc
        public = False
        groups: tuple[str, ...] = ()
        methods: tuple[str, ...] = ()
        contexts: tuple[str, ...] = ()
        max_age: float | None = None
        attributes: dict[str, tuple[str, ...]] = {}
        for option in options:
            key, sep, value = option.partition("=")
            values = tuple(v for v in value.split("|") if v)
            if not sep and key in ("public", "authenticated"):
                public = key == "public"
            elif sep and key == "groups" and values:
                groups = values
            elif sep and key == "methods" and values:
                methods = values
            elif sep and key == "authn_context" and values:
                contexts = values
            elif sep and key.startswith("attribute.") and len(key) > 10 and values:
                attributes[key[10:]] = values
            elif sep and key == "max_authn_age":
                try:
                    max_age = float(value)
                except ValueError:
                    raise ConfigError(SETTING, f"{text!r}: max_authn_age={value!r}") from None
            else:
                raise ConfigError(
                    SETTING,
                    f"{text!r}: unknown option {option!r} (public, authenticated, groups=a|b,"
                    " attribute.NAME=v1|v2, methods=GET|POST, max_authn_age=SECONDS,"
                    " authn_context=URI|URI)",
                )
        return cls(
            path,
            public=public,
            groups=groups,
            attributes=attributes,
            methods=methods,
            max_authn_age=max_age,
            authn_contexts=contexts,
        )

    @property
    def needs_fresh_sign_in(self) -> bool:
        """Whether a sign-in for this rule should ask the IdP to authenticate again."""
        return self.max_authn_age is not None or bool(self.authn_contexts)

    def matches(self, path: str, method: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        rule_path = self.path
        # A trailing slash names the same resource to some frameworks (Spring before 6): an
        # exact or pattern rule for /x also decides /x/.
        bare = path[:-1] if len(path) > 1 and path.endswith("/") else path
        if isinstance(rule_path, str):
            if rule_path.endswith("/"):
                return path.startswith(rule_path) or path == rule_path[:-1]
            return path == rule_path or bare == rule_path
        return rule_path.fullmatch(path) is not None or rule_path.fullmatch(bare) is not None

    def __str__(self) -> str:
        return _path_text(self.path)


def _path_text(path: str | re.Pattern[str]) -> str:
    return path if isinstance(path, str) else "re:" + path.pattern


def as_rule(value: object) -> Rule:
    """A :class:`Rule`, parsing its text form when given a string."""
    if isinstance(value, Rule):
        return value
    if isinstance(value, str):
        return Rule.parse(value)
    raise ConfigError(SETTING, f"each rule must be a saml_gate.Rule or a string, not {value!r}")


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Rules from one string, separated by ';' or new lines (the environment variable form)."""
    return tuple(Rule.parse(line) for line in re.split(r"[;\n]", text) if line.strip())


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

    def __str__(self) -> str:
        return " + ".join(str(rule) for rule in self.rules)


Decision = Rule | AllOf

#: The decision for OPTIONS requests when ``options_passthrough`` is on.
PASS_THROUGH: Final = Rule("/", public=True)
#: The decision when no rule matches: any signed-in user (within ``authorized_groups``).
DEFAULT_RULE: Final = Rule("/")


class AccessPolicy:
    """Decides, per request, which rule applies and whether a signed-in user satisfies it."""

    def __init__(self, settings: GateSettings) -> None:
        public = tuple(Rule(p, public=True) for p in settings.public_paths)
        self.rules: tuple[Rule, ...] = public + settings.access_rules
        self._authorized = settings.authorized_groups
        self._groups_attribute = settings.groups_attribute
        self._options_passthrough = settings.options_passthrough
        self._skew = settings.clock_skew
        self._path_parameters = settings.allow_path_parameters
        self._suffixed: dict[tuple[str, tuple[str, ...]], Decision] = {}
        #: What a POST with a body may become through a ``_method`` in it, which is not read.
        self._body_methods: tuple[str, ...] = (
            (*sorted({m for rule in self.rules for m in rule.methods} - {"POST"}), ANY_OTHER_METHOD)
            if settings.method_override_in_body
            else ()
        )

    def decide(self, scope: Scope, path: str) -> Decision:
        """The rule(s) deciding a request for the app; ``path`` is the path the app routes.

        Every method the app may run (its own, the overrides, any for a POST with a body) on
        every resource the path may name (also without a format suffix) must be allowed. Raises
        ``GateError`` (``bad_method``, ``bad_path``) for requests the app could read otherwise
        than the gate (see :mod:`saml_gate.web.request_line`)."""
        method: str = scope.get("method", "GET")
        checked_method(method)
        check_raw_path(scope.get("raw_path"), path, self._path_parameters)
        if self._path_parameters:
            path = without_parameters(path)
        path = canonical_path(path)
        headers = scope["headers"]
        overrides = override_methods(headers, scope.get("query_string", b""))
        if self._body_methods and posts_a_body(method, headers, scope.get("http_version", "1.1")):
            overrides += self._body_methods
        return self._decision(path, (method, *overrides))

    def rule_for(self, path: str, method: str) -> Decision:
        """The rule(s) deciding ``method`` on ``path``. Raises ``GateError`` for refused paths."""
        if self._path_parameters:
            path = without_parameters(path)
        return self._decision(canonical_path(path), (method,))

    def _decision(self, path: str, methods: tuple[str, ...]) -> Decision:
        if "." not in path:  # no format suffix: the hot path
            return self._match(path, methods[0]) if len(methods) == 1 else self._all(path, methods)
        key = (path, methods)
        decision = self._suffixed.get(key)
        if decision is None:  # a static file's path comes again and again: cached
            decision = self._all(path, methods, *format_stems(path))
            if len(path) <= _CACHED_PATH:
                if len(self._suffixed) >= _CACHE_SIZE:
                    self._suffixed.clear()
                self._suffixed[key] = decision
        return decision

    def _all(self, path: str, methods: tuple[str, ...], *stems: str) -> Decision:
        rules = tuple(dict.fromkeys(self._match(p, m) for m in methods for p in (path, *stems)))
        return rules[0] if len(rules) == 1 else AllOf(rules)

    def _match(self, path: str, method: str) -> Rule:
        if method == "OPTIONS" and self._options_passthrough:
            return PASS_THROUGH
        for rule in self.rules:
            if rule.matches(path, method):
                return rule
        return DEFAULT_RULE

    def refusal(self, decision: Decision, user: SamlUser, now: float) -> GateError | None:
        """None when ``user`` may pass; else ``forbidden`` or ``step_up_required``."""
        if isinstance(decision, Rule):
            return self._refusal(decision, user, now)
        for rule in decision.rules:
            refusal = None if rule.public else self._refusal(rule, user, now)
            if refusal is not None:
                return refusal
        return None

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
        if rule.max_authn_age is not None and (
            now - user.authenticated_at > rule.max_authn_age + self._skew
        ):
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

    def fresh_sign_in_for(self, path: str) -> bool:
        """Whether a sign-in that returns to ``path`` should carry ForceAuthn."""
        try:
            return self.rule_for(path, "GET").needs_fresh_sign_in
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

    def unmet_step_up(self, path: str, user: SamlUser, now: float) -> GateError | None:
        """After a sign-in the gate requested for ``path``: ``step_up_failed`` when the new
        session still needs a step-up there (the IdP ignored ForceAuthn or used another
        authentication context), so that the gate refuses instead of looping through the IdP."""
        try:
            refusal = self.refusal(self.rule_for(path, "GET"), user, now)
        except GateError:
            return None
        if refusal is None or refusal.code != "step_up_required":
            return None
        return GateError("step_up_failed", refusal.detail)
