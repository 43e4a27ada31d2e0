"""Reading settings from ``SAML_GATE_<NAME>`` variables (a mapping the loader gives), each by
its declared kind."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from saml_gate.config.declaration import Declared, declarations
from saml_gate.errors import ConfigError


def read_environment(
    cls: type, environ: Mapping[str, str], skip: Collection[str] = ()
) -> tuple[dict[str, Any], list[ConfigError]]:
    """The settings set (non-empty) in ``environ``, but those in ``skip``, and the problems of
    those that are not valid values of their kind."""
    values: dict[str, Any] = {}
    problems: list[ConfigError] = []
    for d in declarations(cls):
        raw = environ.get(d.env_name) if d.env_name and d.name not in skip else None
        if raw is None or raw == "":
            continue
        try:
            values[d.name] = from_text(d, raw)
        except ConfigError as exc:
            problems.append(exc)
    return values, problems


def from_text(d: Declared, raw: str) -> Any:
    """A setting's value from its text form; ConfigError naming the variable if not valid."""
    parse = d.kind.from_text
    if parse is None:
        raise ConfigError(d.name, "is given as a keyword argument only")
    try:
        return parse(raw)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(d.name, f"{d.env_name}={raw!r} is not {d.kind.expects}") from exc
