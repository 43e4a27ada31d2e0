"""Typed views of the settings, one per group, so a component takes its group, not the whole.

Each view is a Protocol that :class:`~saml_gate.config.settings.GateSettings` satisfies (its
``settings.cookies``, ``settings.storage``... properties return it typed as the view), so a
component typed with a view sees only that group, and callers may still pass the whole settings.
A component that needs several groups declares a Protocol deriving from them.
tests/test_settings_declarations.py keeps each view's members equal to its group's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

if TYPE_CHECKING:
    from saml_gate.config.options import ErrorPageHook
    from saml_gate.policy import Rule

SameSite = Literal["lax", "strict", "none"]
StoreOutage = Literal["serve", "refuse"]
VerifyIsolation = Literal["process", "thread"]


class IdpSettings(Protocol):
    """Where the IdP's metadata comes from, and how the gate talks to the IdP."""

    @property
    def idp_metadata(self) -> str | None: ...

    @property
    def metadata_refresh_interval(self) -> float: ...

    @property
    def metadata_timeout(self) -> float: ...

    @property
    def metadata_max_bytes(self) -> int: ...

    @property
    def idp_entity_id(self) -> str | None: ...

    @property
    def dev_idp(self) -> bool: ...

    @property
    def idp_logout(self) -> bool: ...


class SpSettings(Protocol):
    """The service provider the gate is: its URLs, entity ID, keys and requests."""

    @property
    def base_url(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def entity_id(self) -> str: ...

    @property
    def sp_key(self) -> str | None: ...

    @property
    def sp_cert(self) -> str | None: ...

    @property
    def state_dir(self) -> str: ...

    @property
    def name_id_format(self) -> str: ...

    @property
    def force_authn(self) -> bool: ...

    @property
    def sign_authn_requests(self) -> bool | None: ...

    @property
    def base_path(self) -> str: ...

    def public_path(self, endpoint: str) -> str: ...

    @property
    def acs_url(self) -> str: ...

    @property
    def metadata_url(self) -> str: ...

    @property
    def slo_url(self) -> str: ...

    @property
    def login_url(self) -> str: ...

    @property
    def devidp_url(self) -> str: ...

    @property
    def is_https(self) -> bool: ...

    @property
    def base_is_loopback(self) -> bool: ...


class SessionSettings(Protocol):
    """Signed sessions and sign-ins in progress: secrets and lifetimes."""

    @property
    def secret_key(self) -> tuple[str, ...]: ...

    @property
    def maximum_duration(self) -> float: ...

    @property
    def inactivity_timeout(self) -> float: ...

    @property
    def login_timeout(self) -> float: ...


class CookieSettings(Protocol):
    """The attributes of every cookie the gate sets."""

    @property
    def cookie_prefix(self) -> str: ...

    @property
    def cookie_secure(self) -> bool | None: ...

    @property
    def cookie_samesite(self) -> SameSite: ...

    @property
    def cookie_domain(self) -> str | None: ...

    @property
    def secure_cookies(self) -> bool: ...

    @property
    def base_is_loopback(self) -> bool: ...


class PolicySettings(Protocol):
    """Who may reach which path."""

    @property
    def authorized_groups(self) -> tuple[str, ...]: ...

    @property
    def access_rules(self) -> tuple[Rule, ...]: ...

    @property
    def options_passthrough(self) -> bool: ...

    @property
    def method_override_in_body(self) -> bool: ...

    @property
    def allow_path_parameters(self) -> bool: ...

    @property
    def public_paths(self) -> tuple[str, ...]: ...


class VerifierSettings(Protocol):
    """How a SAML Response is checked and read, and where that work runs."""

    @property
    def allow_idp_initiated(self) -> bool: ...

    @property
    def groups_attribute(self) -> str: ...

    @property
    def email_attribute(self) -> str: ...

    @property
    def name_attribute(self) -> str: ...

    @property
    def want_response_signed(self) -> bool: ...

    @property
    def want_assertions_signed(self) -> bool: ...

    @property
    def signature_algorithms(self) -> tuple[str, ...]: ...

    @property
    def allow_sha1(self) -> bool: ...

    @property
    def max_response_bytes(self) -> int: ...

    @property
    def max_xml_depth(self) -> int: ...

    @property
    def max_xml_elements(self) -> int: ...

    @property
    def max_xml_attributes(self) -> int: ...

    @property
    def check_subject_address(self) -> bool: ...

    @property
    def verify_isolation(self) -> VerifyIsolation: ...

    @property
    def verify_concurrency(self) -> int: ...

    @property
    def digest_algorithms(self) -> tuple[str, ...]: ...

    @property
    def accepted_signature_algorithms(self) -> tuple[str, ...]: ...


class StoreSettings(Protocol):
    """The shared state (replay cache, revocations) and its failure policy."""

    @property
    def store(self) -> str: ...

    @property
    def store_prefix(self) -> str: ...

    @property
    def store_timeout(self) -> float: ...

    @property
    def store_outage(self) -> StoreOutage: ...


class TimingSettings(Protocol):
    """The clock every time check reads, and its tolerance."""

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def clock_skew(self) -> float: ...


class OpsSettings(Protocol):
    """Operating the gate: proxies, error details, events, metrics, status, GC."""

    @property
    def trusted_proxies(self) -> tuple[str, ...]: ...

    @property
    def debug(self) -> bool: ...

    @property
    def on_event(self) -> tuple[Callable[..., Any], ...]: ...

    @property
    def on_error(self) -> ErrorPageHook | None: ...

    @property
    def metrics_path(self) -> str | None: ...

    @property
    def metrics_public(self) -> bool: ...

    @property
    def metrics_registry(self) -> Any: ...

    @property
    def status_group(self) -> str | None: ...

    @property
    def gc_freeze(self) -> bool: ...


class IdentitySettings(Protocol):
    """Sign-in for other hosts, and the identity JWT."""

    @property
    def allowed_hosts(self) -> tuple[str, ...]: ...

    @property
    def forward_auth(self) -> bool: ...

    @property
    def jwt_header(self) -> str: ...

    @property
    def jwt_audience(self) -> str: ...

    @property
    def jwt_keys(self) -> tuple[str, ...]: ...

    @property
    def jwt_lifetime(self) -> float: ...


#: Each group's view.
GROUP_VIEWS: Final[dict[str, type]] = {
    "idp": IdpSettings,
    "sp": SpSettings,
    "session": SessionSettings,
    "cookies": CookieSettings,
    "policy": PolicySettings,
    "verifier": VerifierSettings,
    "storage": StoreSettings,
    "timing": TimingSettings,
    "ops": OpsSettings,
    "identity": IdentitySettings,
}
