"""Where a setting's value comes from, for every settings class alike: a keyword argument (or
a command-line flag) first, then its ``SAML_GATE_<NAME>`` variable, then the configuration file
(``config_file``: :mod:`~saml_gate.config.config_file`), then a stand-in the caller gives, then
its declared default. Nothing else in the package reads a ``SAML_GATE_*`` variable
(tests/test_settings_sources.py scans the source for it)."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Final, Self, TypeVar

from saml_gate.config.config_file import SETTING as FILE_SETTING
from saml_gate.config.config_file import ConfigFile, read_config_file
from saml_gate.config.declaration import ENV_PREFIX, declarations, declared
from saml_gate.config.environment import from_text, read_environment
from saml_gate.config.validation import Checked, ConfigErrors, field_problem, validate
from saml_gate.errors import ConfigError

T = TypeVar("T", bound=Checked)
FILE_VARIABLE: Final = ENV_PREFIX + FILE_SETTING.upper()


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
    (but not for the ``unread`` settings), else the configuration file (``config_file`` given
    or from its variable), else ``fallback`` (stand-ins for what none gave), else the
    defaults; validated all at once. A problem of a value from the file names its line."""
    env = os.environ if environ is None else environ
    names = {d.name for d in declarations(cls)}
    file = config_file_of(given.get(FILE_SETTING), env)
    values, problems = read_environment(cls, env, skip=unread)
    given = {
        k: v
        for k, v in given.items()
        if v is not None and (k != FILE_SETTING or FILE_SETTING in names)
    }
    # A keyword wins over its variable, which then is never used: its problem is not one.
    problems = [p for p in problems if p.setting not in given]
    values.update(given)
    from_file: set[str] = set()
    if file is not None:
        overridden = set(values) - {FILE_SETTING}  # a keyword or variable wins: not read
        if FILE_SETTING in names:
            values.setdefault(FILE_SETTING, file.path)
        problems += [
            p
            for p in file.problems
            if p.setting not in overridden and (p.setting in names or p.setting not in _known())
        ]
        for name, value in file.values.items():
            if name in names and name not in values:
                values[name] = value
                from_file.add(name)
    for name, value in (fallback or {}).items():
        values.setdefault(name, value)
    try:
        return validate(cls, values, problems)
    except ConfigErrors as exc:
        if file is None or not from_file:
            raise
        placed = [file.error(p) if p.setting in from_file else p for p in exc.problems]
        raise ConfigErrors(placed) from None


def config_file_of(given: object, environ: Mapping[str, str]) -> ConfigFile | None:
    """The configuration file read whole (its problems in it), when one is named: ``given``
    (the keyword or flag), else its variable."""
    path = given if isinstance(given, str) and given else environ.get(FILE_VARIABLE)
    return read_config_file(path, _known()) if path else None


def _known() -> dict[str, bool]:
    """Every declared setting's name, and whether it is read outside Python."""
    from saml_gate.config.catalogue import every_declaration  # it imports the settings classes

    return {d.name: d.setting.env for d in every_declaration()}


def value_of(
    cls: type,
    name: str,
    given: Any = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Any:
    """One setting's value by the same rule (given, its variable, the configuration file, its
    default), checked against its declaration alone; :class:`ConfigError` naming it when it
    is not valid."""
    d = declared(cls, name)
    env = os.environ if environ is None else environ
    if given is None:
        raw = env.get(d.env_name) if d.env_name else None
        if raw is not None and raw != "":
            given = from_text(d, raw)
    if given is None:
        file = config_file_of(config_file, env)
        if file is None or name not in file.values:
            return d.default
        given = file.values[name]
    value = d.kind.normalise(d.name, given)
    problem = field_problem(d, value)
    if problem is not None:
        raise problem
    return value
