"""Prometheus metrics (saml-gate's optional ``metrics`` extra: prometheus-client).

Counters for sign-ins by outcome and error code, sign-outs, policy denials and store errors; a
histogram of ACS verification time; gauges for the IdP metadata's age and the days left on the
IdP signing and SP certificates. Served at ``metrics_path`` (off by default, loopback-only by
default) or registered into the app's own registry (``metrics_registry``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from saml_gate.errors import ConfigError

if TYPE_CHECKING:
    from saml_gate.ops.events import AuthEvent

PREFIX = "saml_gate_"


class GateMetrics:
    """The gate's metrics in one registry (the app's own, or a private one)."""

    def __init__(self, registry: Any = None) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError:
            from saml_gate.config.extras import install_hint

            raise ConfigError(
                "metrics_path", f"metrics need prometheus-client: {install_hint('metrics')}"
            ) from None
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.logins = Counter(
            PREFIX + "logins",
            "Sign-ins at the ACS by outcome and error code",
            ["outcome", "error_code"],
            registry=r,
        )
        self.logouts = Counter(PREFIX + "logouts", "Sign-outs by kind", ["kind"], registry=r)
        self.policy_denials = Counter(
            PREFIX + "policy_denials",
            "Signed-in requests refused by the access policy",
            ["error_code"],
            registry=r,
        )
        self.session_expiries = Counter(
            PREFIX + "session_expiries", "Sessions that ended by timeout", registry=r
        )
        self.store_errors = Counter(
            PREFIX + "store_errors", "Failed operations on the shared store", registry=r
        )
        self.policy_reloads = Counter(
            PREFIX + "policy_reloads",
            "Configuration files read again and found valid (the access policy now in force)",
            registry=r,
        )
        self.policy_reload_failures = Counter(
            PREFIX + "policy_reload_failures",
            "Configuration files read again and refused (the running policy stays)",
            registry=r,
        )
        self.verify_seconds = Histogram(
            PREFIX + "acs_verify_seconds",
            "Time to verify one posted Response",
            registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.metadata_age = Gauge(
            PREFIX + "idp_metadata_age_seconds",
            "Seconds since the IdP metadata was loaded",
            registry=r,
        )
        self.cert_days = Gauge(
            PREFIX + "certificate_expiry_days",
            "Days until a certificate expires",
            ["certificate"],
            registry=r,
        )

    def record(self, event: AuthEvent) -> None:
        if event.event in ("login", "login_refused"):
            self.logins.labels(event.outcome, event.error_code or "").inc()
        elif event.event in ("logout", "slo") or (
            event.event == "universal_logout" and event.outcome == "success"
        ):
            self.logouts.labels(event.event).inc()
        elif event.event == "policy_denied":
            self.policy_denials.labels(event.error_code or "forbidden").inc()
        elif event.event == "session_expired":
            self.session_expiries.inc()

    def bind(
        self,
        metadata_age: Callable[[], float],
        idp_certificates: Callable[[], tuple[bytes, ...]],
        sp_certificate: Callable[[], bytes | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Gauges computed when scraped, from the gate's current state (read through these
        callables: the IdP metadata and the keys change, and load at start-up)."""
        self.metadata_age.set_function(metadata_age)
        for index in range(4):  # rollover: up to four published signing certificates
            self.cert_days.labels(f"idp_signing_{index}").set_function(
                partial(_nth_days_left, idp_certificates, index, clock)
            )
        self.cert_days.labels("sp").set_function(partial(_days_left, sp_certificate, clock))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _days_left(certificate: Callable[[], bytes | None], clock: Callable[[], float]) -> float:
    from saml_gate.ops.certificates import certificate_days_left

    pem = certificate()
    return float("nan") if pem is None else certificate_days_left(pem, clock())[1]


def _nth_days_left(
    certificates: Callable[[], tuple[bytes, ...]], index: int, clock: Callable[[], float]
) -> float:
    certs = certificates()
    return _days_left(lambda: certs[index] if index < len(certs) else None, clock)
