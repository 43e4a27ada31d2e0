"""Every setting of the gate, each declared once: type, default, group, variable, flag, help.

One frozen object, built once at start-up. Keyword arguments and ``SAML_GATE_*`` environment
variables are the same settings (keyword arguments win); bad values raise :class:`ConfigErrors`
naming every one. The environment mapping, validation, the CLI's gate flags and the README's
settings table derive from the declarations (:mod:`saml_gate.config.declaration`); components
take their group's view (``settings.cookies``, ...; :mod:`saml_gate.config.groups`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from saml_gate.config.access_settings import (
    CookieFields,
    PolicyFields,
    SessionFields,
    TimingFields,
)
from saml_gate.config.checks import (
    KNOWN_NAME_ID_FORMATS,
    SECURE_DIGEST_ALGORITHMS,
    SECURE_SIGNATURE_ALGORITHMS,
    is_loopback_host,
    is_url,
)
from saml_gate.config.declaration import ENV_PREFIX, declarations
from saml_gate.config.environment import read_environment
from saml_gate.config.groups import SameSite, StoreOutage, VerifyIsolation
from saml_gate.config.identity_settings import IdentityFields
from saml_gate.config.kinds import MIN_SECRET_LENGTH
from saml_gate.config.ops_settings import OpsFields, StorageFields
from saml_gate.config.saml_settings import IdpFields, SpFields, VerifierFields
from saml_gate.config.validation import ConfigErrors, validate

if TYPE_CHECKING:
    from saml_gate.config.groups import (
        CookieSettings,
        IdentitySettings,
        IdpSettings,
        OpsSettings,
        PolicySettings,
        SessionSettings,
        SpSettings,
        StoreSettings,
        TimingSettings,
        VerifierSettings,
    )

__all__ = [
    "ENV_PREFIX",
    "KNOWN_NAME_ID_FORMATS",
    "MIN_SECRET_LENGTH",
    "NOT_FROM_ENV",
    "SECURE_DIGEST_ALGORITHMS",
    "SECURE_SIGNATURE_ALGORITHMS",
    "ConfigErrors",
    "GateSettings",
    "SameSite",
    "StoreOutage",
    "VerifyIsolation",
    "is_loopback_host",
]


@dataclass(frozen=True, kw_only=True)
class GateSettings(
    IdentityFields,
    OpsFields,
    StorageFields,
    VerifierFields,
    TimingFields,
    CookieFields,
    PolicyFields,
    IdpFields,
    SessionFields,
    SpFields,
):
    """The validated configuration. Build it with :meth:`load` (keywords + environment).

    Its settings are declared by group, in the classes it inherits (the last one's first); a
    component takes its group's view (``settings.cookies``...), typed by :mod:`.groups`.
    """

    # ------------------------------------------------------------------ group views
    @property
    def idp(self) -> IdpSettings:
        return self

    @property
    def sp(self) -> SpSettings:
        return self

    @property
    def session(self) -> SessionSettings:
        return self

    @property
    def cookies(self) -> CookieSettings:
        return self

    @property
    def policy(self) -> PolicySettings:
        return self

    @property
    def verifier(self) -> VerifierSettings:
        return self

    @property
    def storage(self) -> StoreSettings:
        return self

    @property
    def timing(self) -> TimingSettings:
        return self

    @property
    def ops(self) -> OpsSettings:
        return self

    @property
    def identity(self) -> IdentitySettings:
        return self

    # ------------------------------------------------------------------ derived values
    @property
    def public_values(self) -> dict[str, str]:
        """Values that are public anyway (they are in the SP metadata), for fix hints."""
        return {
            "base_url": self.base_url,
            "acs_url": self.acs_url,
            "entity_id": self.entity_id,
            "metadata_url": self.metadata_url,
            "login_url": self.login_url,
            "slo_url": self.slo_url,
            "groups_attribute": self.groups_attribute,
            "name_id_format": self.name_id_format.rsplit(":", 1)[-1],
            "signing_key_fix": (
                "The gate refetched the metadata from the idp_metadata URL at once and the key"
                " is still unknown: check that idp_metadata is the metadata URL of this very app"
                " (Okta: Sign On tab → 'Identity Provider metadata') and that the IdP publishes"
                " the certificate it signs with there."
                if is_url(self.idp_metadata or "")
                else "Replace the metadata: download it again (Okta: Sign On tab → 'Identity"
                " Provider metadata') and restart, or give idp_metadata as the metadata URL so a"
                " key rollover is picked up at once, without a restart."
            ),
        }

    @property
    def secure_cookies(self) -> bool:
        """cookie_secure, or when it is None whether base_url is https (cookies meet sp)."""
        return self.is_https if self.cookie_secure is None else self.cookie_secure

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GateSettings:
        """Build from keyword arguments, filling the rest from ``SAML_GATE_*`` variables."""
        values, problems = read_environment(cls, os.environ if environ is None else environ)
        values.update({k: v for k, v in kwargs.items() if v is not None or k in values})
        return validate(cls, values, problems)

    @classmethod
    def validated(cls, **values: Any) -> GateSettings:
        """Build from these values alone (defaults fill the rest)."""
        return validate(cls, values, [])


#: Settings that are Python objects, given as keyword arguments only.
NOT_FROM_ENV: Final = frozenset(d.name for d in declarations(GateSettings) if not d.setting.env)
