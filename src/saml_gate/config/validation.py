"""Validation of a whole set of settings, reporting every problem at once.

First each value is brought to its kept form (its kind's ``normalise``), then checked against
its declaration (type of a number, range, choices, emptiness, its own check), then the checks
that involve several settings (the settings class's ``cross_problems``) run on the values that
passed. All problems found are raised together as one :class:`ConfigErrors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

from saml_gate.config.declaration import Declared, declarations
from saml_gate.errors import ConfigError

T = TypeVar("T", bound="Checked")
_EMPTY: Final[tuple[Any, ...]] = (None, "", (), [])


class Checked(Protocol):
    """A settings class: its checks that involve several settings, its derived defaults."""

    @classmethod
    def cross_problems(cls, values: Mapping[str, Any]) -> Iterator[ConfigError]: ...

    @classmethod
    def derived(cls, values: Mapping[str, Any]) -> dict[str, Any]: ...


class ConfigErrors(ConfigError):
    """Every problem found in one set of settings. ``setting`` and ``problem`` are the first
    problem's (as with one :class:`ConfigError`); ``problems`` holds them all."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.setting, first.problem)
        self.problems: tuple[ConfigError, ...] = tuple(problems)
        if len(self.problems) == 1:
            self.args = first.args  # its own words (a file's problem names the file and line)
        else:
            lines = [f"{len(self.problems)} problems with the settings:"]
            lines += [f"  {problem}" for problem in self.problems]
            self.args = ("\n".join(lines),)


def validate(cls: type[T], values: Mapping[str, Any], problems: list[ConfigError]) -> T:
    """The settings object from ``values`` (defaults fill the rest), or :class:`ConfigErrors`
    listing ``problems`` (found while reading them) and every problem found here."""
    declared = {d.name: d for d in declarations(cls)}
    problems = list(problems)
    for name in values:
        if name not in declared:
            problems.append(
                ConfigError(name, f"unknown setting; known settings: {', '.join(declared)}")
            )
    kept: dict[str, Any] = {}
    failed: set[str] = set()
    for d in declared.values():
        if d.required and values.get(d.name) in _EMPTY:
            hint = f"keyword {d.name}= or {d.env_name}"
            problems.append(ConfigError(d.name, f"is required ({hint})"))
            failed.add(d.name)
        elif d.name in values:
            try:
                kept[d.name] = d.kind.normalise(d.name, values[d.name])
            except ConfigError as exc:
                problems.append(exc)
                failed.add(d.name)
    valid = {d.name: d.default for d in declared.values() if d.name not in failed} | kept
    for d in declared.values():
        if d.name in valid:
            problem = field_problem(d, valid[d.name])
            if problem is not None:
                problems.append(problem)
                del valid[d.name]
    problems += cls.cross_problems(valid)
    if problems:
        raise ConfigErrors(problems)
    return cls(**{**kept, **cls.derived(valid)})


def field_problem(d: Declared, value: Any) -> ConfigError | None:
    """The first problem of one value against its declaration."""
    s = d.setting
    if value is None:
        return None
    if d.kind.numeric and (not isinstance(value, int | float) or isinstance(value, bool)):
        return ConfigError(d.name, f"must be a number, not {value!r}")
    if s.range is not None and not s.range[0] <= value <= s.range[1]:
        return ConfigError(d.name, f"must be {s.range_text()}, not {value!r}")
    items = value if isinstance(value, tuple) else (value,)
    if s.choices and any(item not in s.choices for item in items):
        return ConfigError(d.name, f"must be one of {', '.join(s.choices)}")
    if s.nonempty and not value:
        return ConfigError(d.name, "must not be empty")
    try:
        problem = s.check(value) if s.check is not None else None
    except ConfigError as exc:
        return exc
    except (TypeError, AttributeError):  # not even of the setting's type
        problem = f"{value!r} is not a valid value"
    return None if problem is None else ConfigError(d.name, problem)
