"""The keyword options of ``SamlGate(...)`` as types: one per setting, as callers may give it.

:class:`~saml_gate.config.settings.GateSettings` holds the validated values; these are the
values it accepts (a single string where it keeps a tuple, rules in their text form, a Redis
client for ``store``...). Typing ``SamlGate.__init__`` with ``**options: Unpack[GateOptions]``
lets type checkers check each keyword, through Starlette's ``add_middleware`` too, where
``**options: Any`` failed. ``None`` means "not given": the ``SAML_GATE_*`` variable or the
default applies. tests/test_public_api.py keeps the keys equal to the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from starlette.requests import HTTPConnection
from starlette.responses import Response

from saml_gate.errors import GateError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from saml_gate.config.settings import SameSite, StoreOutage, VerifyIsolation
    from saml_gate.ops.events import Hook
    from saml_gate.policy import Rule
    from saml_gate.store.base import Store

ErrorPageHook: TypeAlias = Callable[[HTTPConnection, GateError], Response | None]
"""``on_error``: given the request and the refusal, a branded page (any Starlette Response), or
None for the gate's own page. It answers every refusal that gets an error page or JSON error
body (read ``connection.headers["accept"]`` to choose HTML or JSON); not the sign-in redirect,
the 401 to an API call nor a refused WebSocket handshake."""

Strings: TypeAlias = str | Iterable[str]
"""A list setting: an iterable of strings, or one string for a list of one."""


class GateOptions(TypedDict, total=False):
    """Every setting, as a keyword argument of ``SamlGate`` (see the README's settings table)."""

    base_url: str | None
    secret_key: str | bytes | Iterable[str | bytes] | None
    idp_metadata: str | None
    metadata_refresh_interval: float | None
    metadata_timeout: float | None
    metadata_max_bytes: int | None
    idp_entity_id: str | None
    dev_idp: bool | None
    prefix: str | None
    entity_id: str | None
    sp_key: str | None
    sp_cert: str | None
    state_dir: str | None
    name_id_format: str | None
    force_authn: bool | None
    sign_authn_requests: bool | None
    allow_idp_initiated: bool | None
    authorized_groups: Strings | None
    access_rules: Rule | str | Iterable[Rule | str] | None
    options_passthrough: bool | None
    method_override_in_body: bool | None
    allow_path_parameters: bool | None
    groups_attribute: str | None
    email_attribute: str | None
    name_attribute: str | None
    clock_skew: float | None
    maximum_duration: float | None
    inactivity_timeout: float | None
    login_timeout: float | None
    cookie_prefix: str | None
    cookie_secure: bool | None
    cookie_samesite: SameSite | None
    cookie_domain: str | None
    public_paths: Strings | None
    want_response_signed: bool | None
    want_assertions_signed: bool | None
    signature_algorithms: Strings | None
    allow_sha1: bool | None
    max_response_bytes: int | None
    max_xml_depth: int | None
    max_xml_elements: int | None
    max_xml_attributes: int | None
    check_subject_address: bool | None
    verify_isolation: VerifyIsolation | None
    verify_concurrency: int | None
    store: str | Store | Redis | None
    """The ``store`` setting ("memory", "redis://...") or a Store or redis.asyncio.Redis client."""
    store_prefix: str | None
    store_timeout: float | None
    store_outage: StoreOutage | None
    idp_logout: bool | None
    trusted_proxies: Strings | None
    debug: bool | None
    on_event: Hook | Iterable[Hook] | None
    on_error: ErrorPageHook | None
    metrics_path: str | None
    metrics_public: bool | None
    metrics_registry: Any
    """A prometheus_client CollectorRegistry (an optional dependency, hence Any)."""
    status_group: str | None
    gc_freeze: bool | None
    allowed_hosts: Strings | None
    forward_auth: bool | None
    jwt_header: str | None
    jwt_audience: str | None
    jwt_keys: Strings | None
    jwt_lifetime: float | None
    clock: Callable[[], float] | None
