"""Every settings class and every setting, by its declared name: where the command line, the
README's tables and any other reader of settings (a configuration file's) look them up."""

from __future__ import annotations

from typing import Final

from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.declaration import Declared, declarations
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.settings import GateSettings

#: Every settings class: the gate's (keyword arguments of ``SamlGate``), the reverse proxy's
#: (``build_proxy_app`` takes both), the command line's. Their settings' names are distinct
#: (tests/test_settings_declarations.py), so a name alone finds a setting.
SETTINGS_CLASSES: Final = (GateSettings, ProxySettings, CliSettings)


def every_declaration() -> tuple[Declared, ...]:
    """Every setting of every settings class."""
    return tuple(d for cls in SETTINGS_CLASSES for d in declarations(cls))


def find(name: str) -> Declared | None:
    """A setting's declaration, whichever class declares it."""
    return next((d for d in every_declaration() if d.name == name), None)
