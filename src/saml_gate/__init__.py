"""saml-gate: SAML 2.0 single sign-on (Okta first) in front of any ASGI app."""

from saml_gate.errors import ConfigError, GateError
from saml_gate.middleware import SamlGate
from saml_gate.policy import Rule
from saml_gate.settings import GateSettings
from saml_gate.store import MemoryStore, Store
from saml_gate.user import SamlUser
from saml_gate.verify import VerifiedLogin

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
