"""Every setting of the gate, each declared once: type, default, group, help, checks.

One frozen object, built once at start-up. Keyword arguments and ``SAML_GATE_*`` environment
variables are the same settings (keyword arguments win); bad values raise :class:`ConfigErrors`
naming every one. The environment mapping, validation, the CLI's flags, the typed keyword
options and the README's settings tables derive from the declarations
(:mod:`saml_gate.config.declaration`). A component typed with one group's dataclass
(``CookieFields``...) sees that group; :class:`StoreSettings` is the part of the settings the
store and the session administration read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

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
    is_loopback_url,
    is_url,
)
from saml_gate.config.continuous_settings import ContinuousFields, continuous_problems
from saml_gate.config.declaration import ENV_PREFIX
from saml_gate.config.identity_settings import IdentityFields
from saml_gate.config.kinds import MIN_SECRET_LENGTH
from saml_gate.config.loading import DeclaredSettings
from saml_gate.config.machine_settings import MachineFields, machine_problems
from saml_gate.config.ops_settings import OpsFields, PerformanceFields, StorageFields
from saml_gate.config.saml_settings import (
    IdpFields,
    MetadataFetchFields,
    SpFields,
    VerifierFields,
    XmlLimitFields,
)
from saml_gate.config.validation import ConfigErrors
from saml_gate.config.value_types import SameSite, StoreOutage, VerifyIsolation
from saml_gate.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "KNOWN_NAME_ID_FORMATS",
    "MIN_SECRET_LENGTH",
    "SECURE_DIGEST_ALGORITHMS",
    "SECURE_SIGNATURE_ALGORITHMS",
    "ConfigErrors",
    "GateSettings",
    "SameSite",
    "StoreOutage",
    "StoreSettings",
    "VerifyIsolation",
    "is_loopback_host",
]


@dataclass(frozen=True, kw_only=True)
class StoreSettings(StorageFields, TimingFields, DeclaredSettings):
    """What the store and the revocations read: the store's settings and the clock. The
    gate's settings include them; ``saml-gate sessions`` loads only these."""


@dataclass(frozen=True, kw_only=True)
class GateSettings(
    PerformanceFields,
    XmlLimitFields,
    MetadataFetchFields,
    StoreSettings,
    OpsFields,
    MachineFields,
    ContinuousFields,
    IdentityFields,
    VerifierFields,
    CookieFields,
    PolicyFields,
    IdpFields,
    SessionFields,
    SpFields,
):
    """The validated configuration. Build it with :meth:`load` (keywords + environment).

    Its settings are declared by group, in the classes it inherits (the last one's first).
    """

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
            "universal_logout_url": self.universal_logout_url,
            "universal_logout_keys": self.universal_logout_keys_shown,
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

    # ------------------------------------------------------------------ validation
    @classmethod
    def cross_problems(cls, values: Mapping[str, Any]) -> Iterator[ConfigError]:
        v = values
        if "dev_idp" in v and "idp_metadata" in v:
            if v["dev_idp"] and v["idp_metadata"]:
                yield ConfigError("dev_idp", "cannot be combined with idp_metadata; choose one IdP")
            if not v["dev_idp"] and not v["idp_metadata"]:
                yield ConfigError(
                    "idp_metadata",
                    "is required: the IdP metadata URL (Okta: Sign On tab → Metadata URL), a"
                    " saved file or the XML; or set dev_idp=True for the embedded development IdP",
                )
        if v.get("dev_idp") and "base_url" in v and not is_loopback_url(v["base_url"]):
            yield ConfigError(
                "dev_idp",
                "the development IdP only runs on a loopback base_url (127.0.0.1, localhost)",
            )
        if v.get("cookie_samesite") == "none" and {"base_url", "cookie_secure"} <= v.keys():
            secure = v["cookie_secure"]
            if not (v["base_url"].startswith("https://") if secure is None else secure):
                yield ConfigError(
                    "cookie_samesite", "none requires Secure cookies (an https base_url)"
                )
        timeouts = {"inactivity_timeout", "maximum_duration"}
        if timeouts <= v.keys() and v["inactivity_timeout"] > v["maximum_duration"]:
            yield ConfigError("inactivity_timeout", "must be positive and at most maximum_duration")
        yield from continuous_problems(v)
        yield from machine_problems(v)

    @classmethod
    def derived(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        if values["entity_id"]:
            return {}
        return {"entity_id": values["base_url"] + values["prefix"] + "/metadata"}
