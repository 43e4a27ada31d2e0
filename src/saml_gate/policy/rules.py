"""Access rules as values: what a rule says, its text form, and whether it matches a request.

Text form (environment, command line), one rule per string::

    /static/ public
    /admin/ groups=admins|ops max_authn_age=600
    re:/reports/\\d+ attribute.department=finance|legal methods=GET
    /vault/ authn_context=urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract
    /api/ accept=session,token groups=deployers
    grafana.acme.example/admin/ groups=admins audience=https://grafana.acme.example
    *.acme.example/ emails=*@acme.example|bob@partner.example
    re:/reports/\\d+ host=wiki.acme.example groups=finance

A host before the path (``HOST/PATH``; ``host=HOST`` for a pattern or a one-label host such
as ``localhost``) limits the rule to
that host (see :mod:`saml_gate.policy.hosts` for how hosts and ``*.`` patterns match); a rule
without one applies to every host.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from saml_gate.errors import ConfigError, GateError
from saml_gate.policy.hosts import HostPattern, host_problem
from saml_gate.policy.request_line import canonical_path, is_method

SETTING: Final = "access_rules"
#: What a rule may take as proof of who calls: a browser session, a bearer token, or both.
CREDENTIALS: Final = ("session", "token")


def _strings(value: Iterable[str] | str, what: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(SETTING, f"{what} must be non-empty strings, not {item!r}")
    return tuple(item.strip() for item in items)


def _email_patterns(value: Iterable[str] | str) -> tuple[str, ...]:
    """Email patterns, read verbatim: ``bob@acme.example`` or ``*@acme.example``."""
    patterns = _strings(value, "emails")
    for pattern in patterns:
        local, at, domain = pattern.rpartition("@")
        if not at or not local or not domain or "*" in domain or ("*" in local and local != "*"):
            raise ConfigError(
                SETTING, f"emails: {pattern!r} must be an address or *@domain (e.g. *@acme.example)"
            )
    return patterns


def email_matches(email: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether ``email``, verbatim (no case folding, no trimming), is one ``patterns`` name;
    ``*`` stands for a local part without ``@`` (``*@acme.example`` never matches
    ``a@b@acme.example``, nor ``a@ACME.example``)."""
    if not email:
        return False
    for pattern in patterns:
        if pattern.startswith("*@"):
            local, at, domain = email.rpartition("@")
            if at and local and "@" not in local and "@" + domain == pattern[1:]:
                return True
        elif email == pattern:
            return True
    return False


@dataclass(frozen=True, init=False)
class Rule:
    """One access rule. ``path``: ``"/admin/"`` (that prefix, and ``/admin`` itself),
    ``"/health"`` (exactly that path) or a compiled ``re.Pattern`` (must match the whole path).

    ``host``: only requests for that host (``grafana.acme.example``, ``*.acme.example``,
    ``app.example:8443``); None: every host. ``public`` lets anyone in without signing in.
    Otherwise the person must be signed in and be in one of ``groups`` (when given), have an
    email ``emails`` names (when given: ``bob@acme.example``, ``*@acme.example``, verbatim),
    have for each attribute in ``attributes`` one of the listed values, have signed in at the
    IdP at most ``max_authn_age`` seconds ago, and with an
    authentication context in ``authn_contexts`` (when given); the last two send the person
    back to the IdP with ForceAuthn rather than refusing. ``methods`` limits the rule to
    those methods (GET includes HEAD; a WebSocket handshake counts as GET). ``audience``:
    the identity JWT's ``aud`` for requests this rule decides (default: the app's origin).
    ``accept`` names what proves who calls: ``"session"`` (the default), ``"token"`` (a bearer
    token: a gate service token or an IdP access token), or both; a step-up rule never takes
    a token.
    """

    path: str | re.Pattern[str]
    public: bool
    groups: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    methods: tuple[str, ...]
    max_authn_age: float | None
    authn_contexts: tuple[str, ...]
    host: HostPattern | None
    emails: tuple[str, ...]
    audience: str | None
    accept: tuple[str, ...]

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
        host: str | None = None,
        emails: Iterable[str] | str = (),
        audience: str | None = None,
        accept: Iterable[str] | str = ("session",),
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
        email_list = _email_patterns(emails)
        pattern = None
        if host is not None:
            problem = host_problem(host) if isinstance(host, str) else f"{host!r} is no host"
            pattern = HostPattern.of(host) if problem is None else None
            if pattern is None:
                raise ConfigError(SETTING, f"the host {problem}")
        if audience is not None and (not isinstance(audience, str) or not audience.strip()):
            raise ConfigError(SETTING, "audience must be a non-empty string")
        if public and (
            group_list or attrs or max_authn_age is not None or contexts or email_list or audience
        ):
            raise ConfigError(
                SETTING, f"{_path_text(path)}: a public rule cannot also require anything"
            )
        accepted = _accepted(accept, path, public, max_authn_age is not None or bool(contexts))
        set_ = object.__setattr__
        set_(self, "path", path)
        set_(self, "public", bool(public))
        set_(self, "groups", group_list)
        set_(self, "attributes", attrs)
        set_(self, "methods", method_list)
        set_(self, "max_authn_age", None if max_authn_age is None else float(max_authn_age))
        set_(self, "authn_contexts", contexts)
        set_(self, "host", pattern)
        set_(self, "emails", email_list)
        set_(self, "audience", audience)
        set_(self, "accept", accepted)

    @classmethod
    def parse(cls, text: str) -> Rule:
        """A rule from its text form (see the module docstring)."""
        tokens = text.split()
        if not tokens:
            raise ConfigError(SETTING, "an empty rule")
        raw_path, options = tokens[0], tokens[1:]
        host: str | None = None
        slash = raw_path.find("/")
        if slash > 0 and not raw_path.startswith("re:") and _names_a_host(raw_path[:slash]):
            host, raw_path = raw_path[:slash], raw_path[slash:]  # HOST/PATH
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
        emails: tuple[str, ...] = ()
        audience: str | None = None
        max_age: float | None = None
        attributes: dict[str, tuple[str, ...]] = {}
        accept: tuple[str, ...] = ("session",)
        for option in options:
            key, sep, value = option.partition("=")
            values = tuple(v for v in value.split("|") if v)
            if not sep and key in ("public", "authenticated"):
                public = key == "public"
            elif sep and key == "groups" and values:
                groups = values
            elif sep and key == "methods" and values:
                methods = values
            elif sep and key == "accept" and value:
                accept = tuple(v for v in re.split(r"[,|]", value) if v)
            elif sep and key == "authn_context" and values:
                contexts = values
            elif sep and key == "emails" and values:
                emails = values
            elif sep and key == "audience" and value:
                audience = value
            elif sep and key == "host" and value and host is None:
                host = value
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
                    " attribute.NAME=v1|v2, emails=*@domain|a@b, methods=GET|POST,"
                    " max_authn_age=SECONDS, authn_context=URI|URI, host=HOST, audience=AUD,"
                    " accept=session,token)",
                )
        return cls(
            path,
            public=public,
            groups=groups,
            attributes=attributes,
            methods=methods,
            max_authn_age=max_age,
            authn_contexts=contexts,
            host=host,
            emails=emails,
            audience=audience,
            accept=accept,
        )

    @property
    def needs_fresh_sign_in(self) -> bool:
        """Whether a sign-in for this rule should ask the IdP to authenticate again."""
        return self.max_authn_age is not None or bool(self.authn_contexts)

    @property
    def accepts_tokens(self) -> bool:
        """Whether a bearer token may prove who calls (``accept`` names ``"token"``)."""
        return "token" in self.accept

    @property
    def accepts_sessions(self) -> bool:
        return "session" in self.accept

    def matches(self, path: str, method: str, host: str = "", port: int = 0) -> bool:
        """Whether the rule decides ``method`` on ``path`` (canonical) of ``host`` (lower case)
        on ``port``."""
        if self.methods and method not in self.methods:
            return False
        if self.host is not None and not self.host.matches(host, port):
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
        text = _path_text(self.path)
        if self.host is None:
            return text
        return f"{self.host}{text}" if isinstance(self.path, str) else f"{text} host={self.host}"


def _names_a_host(text: str) -> bool:
    """Whether the text before a rule's path is a host: it has a dot, a port or brackets (so
    that ``admin/`` stays a path missing its ``/``; a one-label host takes ``host=``)."""
    return "." in text or ":" in text or text.startswith("[")


def _accepted(
    accept: Iterable[str] | str, path: str | re.Pattern[str], public: bool, step_up: bool
) -> tuple[str, ...]:
    """``accept`` checked: known credentials, none twice, no token for a step-up rule."""
    values = tuple(dict.fromkeys(v.lower() for v in _strings(accept, "accept")))
    unknown = [v for v in values if v not in CREDENTIALS]
    if not values or unknown:
        raise ConfigError(
            SETTING, f"{_path_text(path)}: accept takes session, token or both, not {accept!r}"
        )
    if public and values != ("session",):
        raise ConfigError(SETTING, f"{_path_text(path)}: a public rule takes no accept")
    if step_up and "token" in values:
        raise ConfigError(
            SETTING,
            f"{_path_text(path)}: a step-up rule (max_authn_age, authn_context) never accepts a"
            " token: a token proves no recent sign-in",
        )
    return values


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
