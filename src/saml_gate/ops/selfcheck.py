"""``saml-gate check``: load everything the gate needs and report problems before users hit them."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from cryptography import x509

from saml_gate.config.groups import IdpSettings, TimingSettings
from saml_gate.config.settings import GateSettings
from saml_gate.config.validation import ConfigErrors
from saml_gate.errors import ConfigError

EXPIRY_WARNING_DAYS = 30


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: int = 0
    warnings: int = 0

    def ok_(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"  WARN  {text}")

    def fail(self, text: str) -> None:
        self.problems += 1
        self.lines.append(f"  FAIL  {text}")

    @property
    def ok(self) -> bool:
        return self.problems == 0

    @property
    def summary(self) -> str:
        if self.problems:
            return f"{self.problems} problem(s), {self.warnings} warning(s): fix the FAIL lines."
        return f"ready ({self.warnings} warning(s))."


def certificate_days_left(pem: bytes, now: float) -> tuple[str, float]:
    cert = x509.load_pem_x509_certificate(pem)
    subject = cert.subject.rfc4514_string() or "(no subject)"
    return subject, (cert.not_valid_after_utc.timestamp() - now) / 86400


def _check_certificate(report: Report, what: str, pem: bytes, now: float) -> None:
    subject, days = certificate_days_left(pem, now)
    if days < 0:
        report.fail(f"{what} {subject} expired {-days:.0f} days ago")
    elif days < EXPIRY_WARNING_DAYS:
        report.warn(f"{what} {subject} expires in {days:.0f} days")
    else:
        report.ok_(f"{what} {subject} valid for {days:.0f} more days")


class ClockCheckSettings(IdpSettings, TimingSettings, Protocol):
    """What the clock check reads: the metadata URL and its timeout, and the clock skew."""


def _check_clock(report: Report, settings: ClockCheckSettings) -> None:
    """Compare this machine's clock with the IdP's (the Date header of its metadata URL)."""
    source = (settings.idp_metadata or "").strip()
    if not source.lower().startswith(("http://", "https://")):
        report.ok_("clock: not compared (the IdP metadata is not a URL)")
        return
    try:
        response = httpx.get(source, timeout=settings.metadata_timeout)
        date = response.headers.get("date")
        if not date:
            report.warn("clock: the IdP sent no Date header to compare with")
            return
        offset = time.time() - email.utils.parsedate_to_datetime(date).timestamp()
    except (httpx.HTTPError, TypeError, ValueError) as exc:
        report.warn(f"clock: could not compare with the IdP ({exc})")
        return
    if abs(offset) > settings.clock_skew:
        report.fail(
            f"clock: this machine is {offset:+.0f} s off the IdP's clock (beyond "
            f"clock_skew {settings.clock_skew:.0f} s): enable NTP"
        )
    elif abs(offset) > settings.clock_skew / 2:
        report.warn(f"clock: this machine is {offset:+.0f} s off the IdP's clock")
    else:
        report.ok_(f"clock: within {abs(offset):.0f} s of the IdP's")


def run_checks(options: dict[str, Any]) -> Report:
    from saml_gate.runtime.core import GateCore

    report = Report()
    try:
        settings = GateSettings.load(**options)
    except ConfigError as exc:
        for problem in exc.problems if isinstance(exc, ConfigErrors) else (exc,):
            report.fail(str(problem))
        return report
    report.ok_(f"settings: base_url {settings.base_url}, entity ID {settings.entity_id}")
    if settings.base_url.startswith("http://") and not settings.base_is_loopback:
        report.warn("base_url is plain http on a public host: use the https URL of the tunnel")
    if settings.debug:
        report.warn("debug is on: error details are shown to every client")
    try:
        core = GateCore(settings)
    except ConfigError as exc:
        report.fail(str(exc))
        return report
    idp = core.idp
    source = "URL" if core.idp_source is not None and core.idp_source.is_url else "file/inline"
    report.ok_(f"IdP {idp.entity_id} (metadata from {source}); SSO {idp.sso_url}")
    if core.idp_source is not None and core.idp_source.last_error:
        report.fail(f"IdP metadata is the cached copy: {core.idp_source.last_error}")
    now = time.time()
    for pem in idp.signing_certs:
        _check_certificate(report, "IdP signing certificate", pem, now)
    _check_certificate(report, "SP certificate", core.sp_keys.cert_pem, now)
    if not settings.sp_key:
        report.warn(
            f"SP key pair is a development pair from {settings.state_dir}: set sp_key and "
            "sp_cert (saml-gate keygen) for production"
        )
    report.ok_("SP key matches the SP certificate")
    _check_clock(report, settings)
    report.ok_(f"checked at {datetime.now(UTC).isoformat(timespec='seconds')}")
    return report
