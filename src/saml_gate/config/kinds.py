"""Kinds of setting: how a value is read from text (``SAML_GATE_*`` variables, CLI flags) and
how a keyword argument is brought to the form the settings keep (a string to a tuple, ...).

A kind is declared with each setting (see :mod:`saml_gate.config.declaration`), so nothing here
guesses from type annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from saml_gate.errors import ConfigError, GateError
from saml_gate.policy import Rule, as_rule, canonical_path, parse_rules

MIN_SECRET_LENGTH: Final = 32


def _as_given(name: str, value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Kind:
    """One kind of setting value."""

    name: str
    #: What a text value must be, for error messages: "a number".
    expects: str
    #: Text (environment, command line) to value; raises ValueError. None: keyword only.
    from_text: Callable[[str], Any] | None = None
    #: (setting name, keyword value) to the value kept; raises ConfigError.
    normalise: Callable[[str, Any], Any] = _as_given
    #: Numbers are type-checked and range-checked.
    numeric: bool = False
    #: The type a keyword argument of this kind may have (the typed options), when it is more
    #: than the kept value's: a list setting also takes one string, rules their text form.
    keyword_type: str | None = None


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def split_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def as_strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(v, str) for v in items):
            return items
    raise ConfigError(name, "must be a list of strings")


def as_rules(name: str, value: Any) -> tuple[Rule, ...]:
    """Rules from Rule objects and text forms; one string may hold several, ';'-separated."""
    if isinstance(value, str):
        return parse_rules(value)
    if isinstance(value, Rule) or not isinstance(value, Iterable):
        return (as_rule(value),)
    return tuple(as_rule(item) for item in value)


def as_hooks(name: str, value: Any) -> tuple[Callable[..., Any], ...]:
    hooks = (value,) if callable(value) else tuple(value or ())
    for hook in hooks:
        if not callable(hook):
            raise ConfigError(name, f"{hook!r} is not callable")
    return hooks


def as_optional_callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigError(name, f"{value!r} is not callable")
    return value


def as_secrets(name: str, value: Any) -> tuple[str, ...]:
    secrets = (value,) if isinstance(value, str | bytes) else tuple(value)
    out: list[str] = []
    for secret in secrets:
        text = secret.decode() if isinstance(secret, bytes) else secret
        if not isinstance(text, str) or len(text) < MIN_SECRET_LENGTH:
            raise ConfigError(
                name,
                f"each secret must be at least {MIN_SECRET_LENGTH} characters; generate one with"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        out.append(text)
    if not out:
        raise ConfigError(name, "at least one secret is required")
    return tuple(out)


def as_upstream_url(name: str, value: Any) -> str:
    """``scheme://host[:port]`` of an http(s) upstream: no path, query or user."""
    parts = urlsplit(value.strip()) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise ConfigError(name, f"{value!r} must be an http(s) URL such as http://127.0.0.1:3000")
    return f"{parts.scheme}://{parts.netloc}"


def as_base_url(name: str, value: Any) -> str:
    """``scheme://host[:port][/path]``, scheme and host lower-cased, no trailing slash."""
    if not isinstance(value, str):
        raise ConfigError(name, "must be a URL string such as https://acme.ngrok.app")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            name,
            f"{value!r} is not an absolute http(s) URL; use the public URL the browser opens,"
            " e.g. https://acme.ngrok.app",
        )
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(
            name,
            f"{value!r} must be scheme://host[:port] (plus the path the app is mounted at, if"
            " any), without query or user",
        )
    path = parts.path.rstrip("/")
    try:
        plain = not path or (canonical_path(path) == path and not any(c in path for c in ";%"))
    except GateError:
        plain = False
    if not plain:
        raise ConfigError(name, f"{value!r}: the path must be a plain path such as /app")
    return f"{parts.scheme}://{parts.netloc}".lower() + path


BOOL: Final = Kind("bool", "a boolean (use true or false)", parse_bool)
INT: Final = Kind("int", "a whole number", int, numeric=True)
FLOAT: Final = Kind("float", "a number", float, numeric=True)
TEXT: Final = Kind("str", "text", str)
TEXTS: Final = Kind(
    "list", "a comma-separated list", split_list, as_strings, keyword_type="Strings"
)
RULES: Final = Kind(
    "rules",
    "access rules separated by ';'",
    parse_rules,
    as_rules,
    keyword_type="Rule | str | Iterable[Rule | str]",
)
SECRETS: Final = Kind(
    "secrets",
    "a comma-separated list of secrets",
    split_list,
    as_secrets,
    keyword_type="str | bytes | Iterable[str | bytes]",
)
BASE_URL: Final = Kind("url", "a URL", str, as_base_url)
UPSTREAM_URL: Final = Kind("url", "a URL", str, as_upstream_url)
HOOKS: Final = Kind("hooks", "callables", None, as_hooks, keyword_type="Hook | Iterable[Hook]")
CALLABLE: Final = Kind("callable", "a callable", None, as_optional_callable)
OBJECT: Final = Kind("object", "a Python object")


def kind_of(default: Any) -> Kind:
    """The kind a plain default implies (a settings module declares the others)."""
    for python_type, kind in ((bool, BOOL), (int, INT), (float, FLOAT), (str, TEXT)):
        if type(default) is python_type:
            return kind
    if isinstance(default, tuple) and all(isinstance(item, str) for item in default):
        return TEXTS
    raise TypeError(f"declare the kind of a setting whose default is {default!r}")
