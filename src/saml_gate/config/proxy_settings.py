"""The reverse proxy's own settings, declared (``saml-gate proxy``, ``build_proxy_app``): the
upstream and how it is reached. The gate's settings are separate (:class:`GateSettings`); the
identity headers the upstream receives are the gate's, shared with forward-auth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from saml_gate.config.declaration import SECONDS, declare, setting
from saml_gate.config.kinds import UPSTREAM_URL
from saml_gate.config.loading import DeclaredSettings


@dataclass(frozen=True, kw_only=True)
class ProxyFields:
    """The upstream the proxy forwards to, and how."""

    GROUP: ClassVar[str] = "proxy"
    TITLE: ClassVar[str] = "Reverse proxy (`saml-gate proxy`, `build_proxy_app`)"

    upstream: str = field(
        metadata=declare(
            help="the app to protect, e.g. `http://127.0.0.1:3000` (scheme, host and port only)",
            kind=UPSTREAM_URL,
            shown_default="required (proxy)",
        )
    )
    preserve_host: bool = setting(
        False,
        help="send the browser's `Host` to the upstream (HTTP only) instead of the upstream's",
    )
    connect_timeout: float = setting(
        10.0,
        help="seconds to connect to the upstream (HTTP and WebSocket)",
        range=(0.1, 300),
        unit=SECONDS,
    )
    upstream_timeout: float = setting(
        300.0,
        help="seconds to wait for the upstream's next bytes; `0` waits forever (long polls,"
        " server-sent events)",
        range=(0, 86400),
        unit=SECONDS,
    )


@dataclass(frozen=True, kw_only=True)
class ProxySettings(ProxyFields, DeclaredSettings):
    """The reverse proxy's validated settings: ``ProxySettings.load(upstream=...)``, the rest
    from ``SAML_GATE_*`` variables."""
