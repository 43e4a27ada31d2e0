"""saml-gate: SAML 2.0 single sign-on (Okta first) in front of any ASGI app.

The names below are imported on first use (PEP 562), so ``import saml_gate`` stays cheap and
loads none of the XML, signature or HTTP-client libraries; ``SamlGate`` brings them in.
"""

from __future__ import annotations

import importlib

from saml_gate.__about__ import __version__

TYPE_CHECKING = False  # not typing's: importing typing alone took a third of this module's time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Final

    from saml_gate.config.options import GateOptions
    from saml_gate.config.settings import GateSettings
    from saml_gate.errors import ConfigError, GateError
    from saml_gate.middleware import SamlGate
    from saml_gate.ops.events import AuthEvent
    from saml_gate.ops.logs import JsonFormatter
    from saml_gate.policy import Rule
    from saml_gate.proxy import build_proxy_app
    from saml_gate.store.base import Store, StoreUnavailable
    from saml_gate.store.memory import MemoryStore
    from saml_gate.user import SamlUser
    from saml_gate.web.sign_out import sign_out_form

#: Each public name and the module that defines it.
_EXPORTS: Final = {
    "AuthEvent": "saml_gate.ops.events",
    "ConfigError": "saml_gate.errors",
    "GateError": "saml_gate.errors",
    "GateOptions": "saml_gate.config.options",
    "GateSettings": "saml_gate.config.settings",
    "JsonFormatter": "saml_gate.ops.logs",
    "MemoryStore": "saml_gate.store.memory",
    "Rule": "saml_gate.policy",
    "SamlGate": "saml_gate.middleware",
    "SamlUser": "saml_gate.user",
    "Store": "saml_gate.store.base",
    "StoreUnavailable": "saml_gate.store.base",
    "build_proxy_app": "saml_gate.proxy",
    "sign_out_form": "saml_gate.web.sign_out",
}

__all__ = [
    "AuthEvent",
    "ConfigError",
    "GateError",
    "GateOptions",
    "GateSettings",
    "JsonFormatter",
    "MemoryStore",
    "Rule",
    "SamlGate",
    "SamlUser",
    "Store",
    "StoreUnavailable",
    "__version__",
    "build_proxy_app",
    "sign_out_form",
]


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for a package whose public names (``exports``:
    name → the module that defines it) are imported on first use, then kept in ``namespace``
    (the package's globals) so that later look-ups skip ``__getattr__``."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace["__all__"])

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
