"""Where a setting's value comes from, for every settings class alike: a keyword argument (or
a command-line flag) first, then its ``SAML_GATE_<NAME>`` variable, then a stand-in the caller
gives, then its declared default. Nothing else in the package reads a ``SAML_GATE_*`` variable
(tests/test_settings_sources.py scans the source for it)."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Self, TypeVar

from saml_gate.config.declaration import declared
from saml_gate.config.environment import from_text, read_environment
from saml_gate.config.validation import Checked, field_problem, validate
from saml_gate.errors import ConfigError

T = TypeVar("T", bound=Checked)


class DeclaredSettings:
    """The base of a settings class, whose fields are declared settings (inherited from their
    groups' dataclasses): it loads and checks them."""

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """Build from keyword arguments, filling the rest from ``SAML_GATE_*`` variables."""
        return load(cls, kwargs, environ=environ)

    @classmethod
    def cross_problems(cls, values: Mapping[str, Any]) -> Iterator[ConfigError]:
        """Checks involving several settings, on the values that passed their own checks."""
        return iter(())

    @classmethod
    def derived(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Settings whose default depends on others."""
        return {}


def load(
    cls: type[T],
    given: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    fallback: Mapping[str, Any] | None = None,
    unread: Collection[str] = (),
) -> T:
    """The settings from ``given`` (keywords or flags; None: not given), else the environment
    (but not for the ``unread`` settings), else ``fallback`` (stand-ins for what neither
    gave), else the defaults; validated all at once."""
    env = os.environ if environ is None else environ
    values, problems = read_environment(cls, env, skip=unread)
    given = {k: v for k, v in given.items() if v is not None}
    # A keyword wins over its variable, which then is never used: its problem is not one.
    problems = [p for p in problems if p.setting not in given]
    values.update(given)
    for name, value in (fallback or {}).items():
        values.setdefault(name, value)
    return validate(cls, values, problems)


def value_of(
    cls: type, name: str, given: Any = None, *, environ: Mapping[str, str] | None = None
) -> Any:
    """One setting's value by the same rule (given, its variable, its default), checked
    against its declaration alone; :class:`ConfigError` naming it when it is not valid."""
    d = declared(cls, name)
    if given is None:
        env = os.environ if environ is None else environ
        raw = env.get(d.env_name) if d.env_name else None
        if raw is None or raw == "":
            return d.default
        given = from_text(d, raw)
    value = d.kind.normalise(d.name, given)
    problem = field_problem(d, value)
    if problem is not None:
        raise problem
    return value
