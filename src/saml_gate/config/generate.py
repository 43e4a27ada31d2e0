"""Writing what is generated from the settings' declarations: the typed keyword options
(:mod:`saml_gate.config.options`) and the README's settings tables.

After changing a declaration, run ``python -m saml_gate.config.generate`` in the checkout;
tests/test_settings_declarations.py and tests/test_readme.py fail until the files are current.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Final

from saml_gate.config.declaration import Declared, declarations
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.reference import BEGIN, END, grouped, markdown_tables, plain
from saml_gate.config.settings import GateSettings

OPTIONS_MODULE: Final = Path(__file__).with_name("options.py")
README: Final = Path(__file__).parents[3] / "README.md"

_PREAMBLE: Final = '''\
# Generated from the settings' declarations by `python -m saml_gate.config.generate`: do not
# edit; tests/test_settings_declarations.py checks that it is current.
"""The keyword options of ``SamlGate(...)`` and ``build_proxy_app(...)`` as types, one per
setting, as callers may give it (a single string where the settings keep a tuple, rules in
their text form, a Redis client for ``store``...).

Typing ``SamlGate.__init__`` with ``**options: Unpack[GateOptions]`` lets type checkers check
each keyword, through Starlette's ``add_middleware`` too. ``None`` means "not given": the
``SAML_GATE_*`` variable or the default applies. Each key's docstring is its setting's help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from redis.asyncio import Redis

    from saml_gate.config.value_types import (
        ErrorPageHook,
        SameSite,
        StoreOutage,
        Strings,
        VerifyIsolation,
    )
    from saml_gate.ops.events import Hook
    from saml_gate.policy import Rule
    from saml_gate.store.base import Store
'''


def keyword_type(d: Declared) -> str:
    """The type a keyword argument of this setting may have; None for "not given"."""
    annotation = d.setting.keyword_type or d.kind.keyword_type or d.annotation
    if annotation == "Any" or annotation.endswith("| None"):
        return annotation
    return annotation + " | None"


def _docstring(text: str) -> str:
    escaped = plain(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if len(escaped) <= 90:
        return f'    """{escaped}"""\n'
    lines = textwrap.wrap(escaped, 92, break_on_hyphens=False)
    return '    """' + "\n    ".join(lines) + '\n    """\n'


def _typed_dict(name: str, base: str, doc: str, found: tuple[Declared, ...]) -> str:
    body = [f"\n\nclass {name}({base}, total=False):\n", f'    """{doc}"""\n']
    for group, members in grouped(found):
        body.append(f"\n    # {plain(group.title)}{' (advanced)' if group.advanced else ''}\n")
        for d in members:
            body.append(f"    {d.name}: {keyword_type(d)}\n")
            body.append(_docstring(d.setting.help))
    return "".join(body)


def options_text() -> str:
    """The text of :mod:`saml_gate.config.options`."""
    gate = _typed_dict(
        "GateOptions",
        "TypedDict",
        "Every setting of the gate, as a keyword argument of ``SamlGate``.",
        declarations(GateSettings),
    )
    # ``upstream`` is build_proxy_app's first parameter, not one of its keyword options.
    proxy = tuple(d for d in declarations(ProxySettings) if d.name != "upstream")
    doc = "The keyword options of ``build_proxy_app``: the gate's and the reverse proxy's."
    return _PREAMBLE + gate + _typed_dict("ProxyOptions", "GateOptions", doc, proxy)


def readme_with_tables(readme: str) -> str:
    """The README with its generated settings tables replaced by current ones."""
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + markdown_tables() + readme[end:]


def main() -> int:
    """Rewrite the options module and, in a checkout, the README's tables."""
    OPTIONS_MODULE.write_text(options_text())
    written = [str(OPTIONS_MODULE)]
    if README.is_file():
        README.write_text(readme_with_tables(README.read_text()))
        written.append(str(README))
    print("wrote " + " and ".join(written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
