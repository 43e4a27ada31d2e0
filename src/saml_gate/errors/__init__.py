"""Stable error codes, what they mean and how to fix them.

Every refusal the gate makes carries one of these codes. The code and the title are safe to show
to anyone; the hint tells the operator which setting or IdP field to change; the ``detail`` of a
:class:`GateError` (which may name values from the message) is only shown to loopback clients or
when ``debug`` is on, and logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard, get_args

from saml_gate.errors.catalogue import ERRORS, ErrorInfo, members_of
from saml_gate.errors.codes import ErrorCode


class ConfigError(ValueError):
    """A setting is missing or invalid. The message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"saml-gate setting {setting!r}: {problem}")


class _Known(dict[str, str]):
    """format_map helper: placeholders without a value stay as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


if set(ERRORS) != set(get_args(ErrorCode)):  # pragma: no cover - a development mistake
    raise RuntimeError("ErrorCode and ERRORS disagree")


def is_error_code(value: object) -> TypeGuard[ErrorCode]:
    """Whether ``value`` is one of the stable codes (for codes read back from elsewhere)."""
    return value in ERRORS


class GateError(Exception):
    """A refusal with a stable code. ``detail`` is for the log and for trusted viewers only."""

    def __init__(
        self, code: ErrorCode, detail: str = "", *, hint_values: Mapping[str, str] | None = None
    ) -> None:
        """``hint_values``: public values of this refusal for its hint's fields (the groups an
        access rule asks for), shown to anyone, unlike ``detail``."""
        if code not in ERRORS:
            raise KeyError(f"unknown saml-gate error code {code!r}")
        self.code: ErrorCode = code
        self.detail = detail
        self.hint_values: Mapping[str, str] = hint_values or {}
        super().__init__(f"{code}: {detail}" if detail else code)

    def hint(self, context: Mapping[str, str]) -> str:
        """The fix hint, with public values of this deployment (URLs, names) and of this
        refusal filled in."""
        info = ERRORS[self.code]
        return info.hint.format_map(_Known({**info.defaults, **context, **self.hint_values}))

    @property
    def info(self) -> ErrorInfo:
        return ERRORS[self.code]

    @property
    def status(self) -> int:
        return ERRORS[self.code].status


__all__ = [
    "ERRORS",
    "ConfigError",
    "ErrorCode",
    "ErrorInfo",
    "GateError",
    "is_error_code",
    "members_of",
]
