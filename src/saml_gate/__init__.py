"""saml-gate: SAML 2.0 single sign-on (Okta first) in front of any ASGI app."""

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.middleware import SamlGate
from saml_gate.policy import Rule
from saml_gate.saml.response import VerifiedLogin
from saml_gate.store import MemoryStore, Store
from saml_gate.user import SamlUser

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "GateError",
    "GateSettings",
    "MemoryStore",
    "Rule",
    "SamlGate",
    "SamlUser",
    "Store",
    "VerifiedLogin",
    "__version__",
]
