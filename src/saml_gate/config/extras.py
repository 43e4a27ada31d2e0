"""How to install an optional extra (``redis``, ``ngrok``, ``metrics``...) into the environment
saml-gate runs from.

saml-gate is installed from its checkout or from a wheel built from it (it is not on a package
index), so a hint never asks pip for ``saml-gate[redis]`` by name, which would fail: it names the
extra's own requirements, as the installed package declares them, and the interpreter whose pip
installs them where saml-gate will find them."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
from typing import Final

DISTRIBUTION: Final = "saml-gate"
_EXTRA_MARKER: Final = re.compile(r"""^extra\s*==\s*["']([A-Za-z0-9_.-]+)["']$""")


def extra_requirements(extra: str) -> tuple[str, ...]:
    """The requirements the installed saml-gate declares for ``extra`` (empty when it is not
    installed as a distribution, or has no such extra)."""
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return ()
    found: list[str] = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        match = _EXTRA_MARKER.match(marker.strip())
        if match is None or match.group(1) != extra:
            continue
        requirement = requirement.strip()
        if requirement.startswith(DISTRIBUTION + "["):  # an extra made of other extras
            inner = requirement[len(DISTRIBUTION) + 1 : requirement.index("]")]
            for name in inner.split(","):
                found += extra_requirements(name.strip())
        else:
            found.append(requirement)
    return tuple(dict.fromkeys(found))


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` for this saml-gate: ``/path/to/python -m pip install
    'redis>=5.0'``, or where to look when the requirements cannot be read."""
    requirements = extra_requirements(extra)
    if not requirements:
        return (
            f"add saml-gate's {extra!r} extra (pip install '.[{extra}]' in the saml-gate"
            " checkout; see the README's Install section)"
        )
    words = [sys.executable, "-m", "pip", "install", *requirements]
    return " ".join(shlex.quote(word) for word in words)
