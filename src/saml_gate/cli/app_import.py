"""The ASGI app a command serves, named ``package.module:attribute`` and imported from the
current directory too (as uvicorn does)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from saml_gate.cli.options import LaunchError


def import_app(target: str, factory: bool) -> Any:
    """The ASGI app named ``package.module:app`` (called when ``factory``), from the cwd too."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise LaunchError(f"the app {target!r} must look like package.module:app")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
        app = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise LaunchError(f"cannot import the app {target!r}: {exc}") from exc
    return app() if factory else app
