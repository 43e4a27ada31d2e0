"""Each setting declared once, on its dataclass field: help, kind, range, flag; its group is the
dataclass that declares it.

Everything else is derived from these declarations (as oauth2-proxy derives its flags and
config keys from struct tags): the ``SAML_GATE_<NAME>`` variable, the command-line flag
``--<name-with-dashes>``, the typed keyword options (:mod:`saml_gate.config.options`, generated),
validation, and the README's settings tables. So a setting cannot be documented under one
name and read under another, and a reader of another source (a configuration file) finds every
setting by its declared name in :func:`declarations`.
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

    #: What it does: the README's "meaning" column, the flag's help, the keyword's docstring.
    help: str
    kind: Kind
    #: Read from ``SAML_GATE_<NAME>`` and given as a flag; False for Python objects (hooks, a
    #: registry), which are keyword arguments only.
    env: bool = True
    #: A shorter flag besides ``--<name-with-dashes>`` (``--rule`` for ``access_rules``).
    flag: str | None = None
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
    #: The type a keyword argument may have, when more than the kept value's (``store`` also
    #: takes a client object); else the kind's, else the field's annotation.
    keyword_type: str | None = None
    #: In the README's settings table (the ``clock`` test hook is not).
    documented: bool = True

    def range_text(self) -> str:
        """``between 0 and 600 seconds``, ``between 1 KiB and 10 MiB``; "" without a range."""
        if self.range is None:
            return ""
        low, high = self.range
        if self.unit == BYTES:
            return f"between {_bytes(low)} and {_bytes(high)}"
        return f"between {_number(low)} and {_number(high)}" + (
            f" {self.unit}" if self.unit else ""
        )


def _number(number: float) -> str:
    return str(int(number)) if number == int(number) else f"{number:g}"


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
class Group:
    """A group of settings: the dataclass that declares them (its ``GROUP``, ``TITLE`` and
    ``ADVANCED`` class attributes). Advanced groups hold the long tail a newcomer need not
    read: the README and ``--help`` list them last, marked advanced."""

    name: str
    title: str
    advanced: bool = False


@dataclass(frozen=True)
class Declared:
    """A declared setting with its name, default and group, as everything derived sees it."""

    name: str
    default: Any
    setting: Setting
    group: Group
    #: The field's type annotation (text), the kept value's type.
    annotation: str

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
    def flags(self) -> tuple[str, ...]:
        """Its command-line flags: the short one first, if any, then ``--<name-with-dashes>``;
        none for a keyword-only setting."""
        if not self.setting.env:
            return ()
        long = "--" + self.name.replace("_", "-")
        short = self.setting.flag
        return (short, long) if short and short != long else (long,)

    @property
    def flag(self) -> str | None:
        """The flag that names it in messages and help (the first of :attr:`flags`)."""
        return self.flags[0] if self.flags else None


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
    if setting.env and setting.kind.from_text is None:
        raise TypeError(f"setting {f.name}: a {setting.kind.name} cannot be read from text")
    return Declared(f.name, f.default, setting, _group_of(cls, f.name), str(f.type))


def _group_of(cls: type, name: str) -> Group:
    """The group of the class that declares the field: each group's settings are one
    dataclass, which the settings classes inherit."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return Group(
                str(getattr(klass, "GROUP", "")),
                str(getattr(klass, "TITLE", "")),
                bool(getattr(klass, "ADVANCED", False)),
            )
    return Group("", "")


def declared(cls: type, name: str) -> Declared:
    """One setting's declaration."""
    for d in declarations(cls):
        if d.name == name:
            return d
    raise KeyError(name)
