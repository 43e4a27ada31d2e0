"""Each setting declared once, on its dataclass field: help, kind, variable, flag, range (its
group is the dataclass that declares it).

The environment mapping, the validation, the command line's gate flags and the README's
settings table are all derived from these declarations (as oauth2-proxy derives its flags and
config keys from struct tags), so a setting cannot be documented under one name and read
under another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from saml_gate.config.kinds import Kind, kind_of

ENV_PREFIX: Final = "SAML_GATE_"
#: Units of numbers, for messages and help.
SECONDS: Final = "seconds"
BYTES: Final = "bytes"
MIB: Final = 1024 * 1024
_KEY: Final = "saml_gate.setting"

T = TypeVar("T")
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Setting:
    """A setting's declaration: all but its name, type and default, which its field holds."""

    #: What it does: the README's "meaning" column and the flag's help.
    help: str
    kind: Kind
    #: Read from ``SAML_GATE_<NAME>``; False for Python objects, given as keywords only.
    env: bool = True
    #: A gate flag of the CLI: True for ``--<name-with-dashes>``, or the flag itself.
    flag: bool | str = False
    #: Inclusive bounds of a number.
    range: tuple[float, float] | None = None
    #: The unit of a number, for messages: "seconds", "bytes".
    unit: str = ""
    #: The accepted values (each item's, for a list).
    choices: tuple[str, ...] = ()
    #: An empty value (text, list) is refused.
    nonempty: bool = False
    #: Any further check of the value alone: returns the problem, or None.
    check: Check | None = None
    #: The README's default column when the default itself does not say it ("as the IdP asks").
    shown_default: str | None = None
    #: Help for the flag when it needs other words than the README (examples, ...).
    flag_help: str | None = None
    #: In the README's settings table (the ``clock`` test hook is not).
    documented: bool = True

    def range_text(self) -> str:
        """``between 0 and 600 seconds``, ``between 1 KiB and 10 MiB``; "" without a range."""
        if self.range is None:
            return ""
        low, high = self.range
        if self.unit == BYTES:
            return f"between {_bytes(low)} and {_bytes(high)}"
        return f"between {low:g} and {high:g}" + (f" {self.unit}" if self.unit else "")


def _bytes(number: float) -> str:
    for size, name in ((MIB, "MiB"), (1024, "KiB")):
        if number % size == 0:
            return f"{int(number // size)} {name}"
    return f"{number:g} bytes"


def declare(
    *,
    help: str,
    kind: Kind,
    **options: Any,
) -> Mapping[str, Setting]:
    """The field metadata of a setting without a default (a required one)."""
    return {_KEY: Setting(help=help, kind=kind, **options)}


def setting(
    default: T,
    *,
    help: str,
    kind: Kind | None = None,
    compare: bool = True,
    **options: Any,
) -> T:
    """A settings field: its default and its declaration (see :class:`Setting`).

    ``kind`` follows from a plain default (bool, int, float, str, tuple of str); declare it
    for the others (None defaults, rules, callables). ``compare=False`` also hides the value
    from ``repr`` (callables, clients).
    """
    metadata = declare(help=help, kind=kind or kind_of(default), **options)
    return dataclasses.field(default=default, metadata=metadata, compare=compare, repr=compare)


@dataclass(frozen=True)
class Declared:
    """A declared setting with its name and default, as validation and documentation see it."""

    name: str
    default: Any
    setting: Setting
    #: The group (and view of GateSettings) it belongs to: "cookies", "storage", ...
    group: str

    @property
    def kind(self) -> Kind:
        return self.setting.kind

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def env_name(self) -> str | None:
        return ENV_PREFIX + self.name.upper() if self.setting.env else None

    @property
    def flag(self) -> str | None:
        flag = self.setting.flag
        if flag is True:
            return "--" + self.name.replace("_", "-")
        return flag or None


_DECLARED: dict[type, tuple[Declared, ...]] = {}


def declarations(cls: type) -> tuple[Declared, ...]:
    """Every setting of a settings dataclass, in field order."""
    found = _DECLARED.get(cls)
    if found is None:
        found = tuple(_declared(cls, f) for f in dataclasses.fields(cls))
        _DECLARED[cls] = found
    return found


def _declared(cls: type, f: dataclasses.Field[Any]) -> Declared:
    setting = f.metadata.get(_KEY)
    if not isinstance(setting, Setting):
        raise TypeError(f"setting {f.name} lacks its declaration (setting(...))")
    return Declared(f.name, f.default, setting, _group_of(cls, f.name))


def _group_of(cls: type, name: str) -> str:
    """The ``GROUP`` of the class that declares the field: each group's settings are one
    dataclass, which the settings class inherits."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return str(getattr(klass, "GROUP", ""))
    return ""


def declared(cls: type, name: str) -> Declared:
    """One setting's declaration."""
    for d in declarations(cls):
        if d.name == name:
            return d
    raise KeyError(name)
