"""``saml-gate check``: load everything the gate needs and report problems before users hit them.

It does the gate's start-up loading (:class:`~saml_gate.runtime.saml_state.LiveSaml`: the SP
keys, the IdP metadata) once, in an event loop of its own, and compares this machine's clock
with the IdP's.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx

from saml_gate.config.checks import is_url
from saml_gate.config.declaration import declarations
from saml_gate.config.loading import load
from saml_gate.config.settings import GateSettings
from saml_gate.config.validation import ConfigErrors
from saml_gate.errors import ConfigError
from saml_gate.identity.keys import load_jwt_keys
from saml_gate.ops.agreement import Comparison, GateAgreement, GateFacts
from saml_gate.ops.certificates import EXPIRY_WARNING_DAYS, certificate_days_left
from saml_gate.policy.shadowing import public_everywhere, shadowed_rules
from saml_gate.runtime.policy_reload import placed_policy
from saml_gate.runtime.saml_state import LiveSaml, SamlState
from saml_gate.saml.sp import load_sp_keys
from saml_gate.store import StoreUnavailable

if TYPE_CHECKING:
    from saml_gate.runtime.remote_keys import RemoteKeySet


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


def _check_certificate(report: Report, what: str, pem: bytes, now: float) -> None:
    subject, days = certificate_days_left(pem, now)
    if days < 0 and what.startswith("IdP"):
        report.warn(
            f"{what} {subject} expired {-days:.0f} days ago: the gate still accepts its"
            " signatures, because trust comes from the IdP metadata, not from the certificate's"
            " dates (as Okta and Shibboleth treat metadata keys); have the IdP roll its key over"
            " before some other service provider refuses it"
        )
    elif days < 0:
        report.fail(f"{what} {subject} expired {-days:.0f} days ago")
    elif days < EXPIRY_WARNING_DAYS:
        report.warn(f"{what} {subject} expires in {days:.0f} days")
    else:
        report.ok_(f"{what} {subject} valid for {days:.0f} more days")


def _check_clock(report: Report, settings: GateSettings) -> None:
    """Compare this machine's clock with the IdP's (the Date header of its metadata URL)."""
    source = (settings.idp_metadata or "").strip()
    if not is_url(source):
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


#: Values the further checks use in place of a required setting that has a problem.
_STAND_INS: Final[dict[str, Any]] = {
    "base_url": "http://127.0.0.1:8000",
    "secret_key": "stand-in secret for saml-gate check only",
}


def _load_settings(
    report: Report, options: dict[str, Any], describe: Callable[[ConfigError], str]
) -> GateSettings | None:
    """The settings; on problems, each is a FAIL and the other checks go on with stand-ins
    (defaults) for the settings at fault, unless the IdP's own settings are among them."""
    try:
        settings = GateSettings.load(**options)
    except ConfigError as exc:
        problems = exc.problems if isinstance(exc, ConfigErrors) else (exc,)
        for problem in problems:
            report.fail(describe(problem))
        at_fault = {p.setting for p in problems}
        if at_fault & {"idp_metadata", "dev_idp", "idp_entity_id"}:
            return None
        known = {d.name: d for d in declarations(GateSettings)}
        stand_ins = {
            name: _STAND_INS[name] if known[name].required else known[name].default
            for name in at_fault
            if name in known and (name in _STAND_INS or not known[name].required)
        }
        try:  # the stand-ins, never the faulty variables
            settings = load(GateSettings, {**options, **stand_ins}, unread=stand_ins.keys())
        except ConfigError:
            return None
        report.lines.append("  ...   the checks below go on with stand-ins for the settings above")
        return settings
    report.ok_(f"settings: base_url {settings.base_url}, entity ID {settings.entity_id}")
    return settings


def run_checks(options: dict[str, Any], describe: Callable[[ConfigError], str] = str) -> Report:
    """Every check, every problem reported: settings, then the SP keys, the IdP, the clock.
    ``describe`` words a settings problem (the CLI names the flag)."""
    report = Report()
    settings = _load_settings(report, options, describe)
    if settings is None:
        return report
    for _, message in settings.base_url_warnings():
        report.warn(message)
    if settings.debug:
        report.warn("debug is on: error details are shown to every client")
    _check_policy(report, settings)
    key_path = Path(settings.state_dir).expanduser() / "sp.key.pem"
    pair_existed = bool(settings.sp_key) or key_path.exists()
    try:
        keys = load_sp_keys(settings)
    except ConfigError as exc:
        report.fail(describe(exc))
        _check_clock(report, settings)
        return report
    saml = LiveSaml(settings)
    try:
        anyio.run(saml.load)
    except ConfigError as exc:
        report.fail(describe(exc))
        _check_certificate(report, "SP certificate", keys.cert_pem, time.time())
        _check_clock(report, settings)
        return report
    state, source = saml.state, saml.source
    idp = state.idp
    where = "URL" if source is not None and source.is_url else "file/inline"
    report.ok_(f"IdP {idp.entity_id} (metadata from {where}); SSO {idp.sso_url}")
    if source is not None and source.last_error:
        report.fail(f"IdP metadata is the cached copy: {source.last_error}")
    now = time.time()
    for pem in idp.signing_certs:
        _check_certificate(report, "IdP signing certificate", pem, now)
    _check_certificate(report, "SP certificate", state.keys.cert_pem, now)
    report.ok_("SP key matches the SP certificate")
    if not settings.sp_key:
        _check_unconfigured_pair(report, settings, state, str(key_path.parent), pair_existed)
    if state.sp.sign_requests:
        report.ok_("AuthnRequests are signed (RSA-SHA256): the IdP must have the SP certificate")
    elif idp.want_authn_requests_signed:
        report.fail("the IdP metadata asks for signed AuthnRequests: unset sign_authn_requests")
    else:
        report.ok_(
            "AuthnRequests are not signed: an IdP given the SP certificate may demand it"
            " (set sp_key or sign_authn_requests)"
        )
    _check_universal_logout(report, settings, describe)
    _check_access_tokens(report, settings, describe)
    _check_clock(report, settings)
    _check_agreement(report, settings, state, describe)
    report.ok_(f"checked at {datetime.now(UTC).isoformat(timespec='seconds')}")
    return report


def _check_policy(report: Report, settings: GateSettings) -> None:
    """Rules that can never decide (an earlier rule covers them), a public rule for every path."""
    policy = placed_policy(settings)
    rules = policy.rules
    for index, rule in enumerate(rules):
        if public_everywhere(rule):
            after = len(rules) - index - 1
            report.warn(
                f"{policy.place_of(rule)} ({rule} public) makes every path public, so the whole"
                " app is open to anyone"
                + (f" and the {after} rule(s) after it never apply" if after else "")
                + ": list the public prefixes instead (/static/, /healthz)"
            )
            return
    for found in shadowed_rules(rules):
        first, then = rules[found.earlier], rules[found.later]
        report.warn(
            f"{policy.place_of(then)} ({then}) can never match: the earlier"
            f" {policy.place_of(first)} ({first}) matches every request it would; put the"
            " narrower rule first"
        )


def _check_universal_logout(
    report: Report, settings: GateSettings, describe: Callable[[ConfigError], str]
) -> None:
    """Where Universal Logout is on: can the org's key set be had (the gate starts without)?"""
    _check_key_set(
        report,
        settings,
        describe,
        ("universal_logout_keys", settings.universal_logout_keys_source),
        settings.universal_logout_keys_shown,
        "Universal Logout requests would be refused (503)",
        f"Universal Logout at {settings.universal_logout_url}: {{}} signing key(s)"
        f" of {settings.universal_logout_issuer}",
    )


def _check_access_tokens(
    report: Report, settings: GateSettings, describe: Callable[[ConfigError], str]
) -> None:
    """Where IdP access tokens are on: can the issuer's key set be had?"""
    source = settings.access_token_keys_source
    _check_key_set(
        report,
        settings,
        describe,
        ("access_token_keys", source),
        source if source is not None and is_url(source) else "the key set configured",
        "access tokens would be refused (503)",
        f"access tokens of {settings.access_token_issuer} for"
        f" {', '.join(settings.access_token_audiences)}: {{}} signing key(s)",
    )


def _check_key_set(
    report: Report,
    settings: GateSettings,
    describe: Callable[[ConfigError], str],
    where: tuple[str, str | None],
    shown: str,
    consequence: str,
    fetched: str,
) -> None:
    """A signer's key set (``where``: its setting and source, None when off) loaded once as
    the gate loads it: ``fetched`` (its ``{}`` the number of keys) or why not."""
    setting, source = where
    if source is None:
        return
    keys = _key_set(report, settings, describe, source, setting)
    if keys is None:
        return
    if not keys.keys:
        report.fail(f"{setting}: cannot fetch {shown} ({keys.last_error}): {consequence}")
        return
    report.ok_(fetched.format(len(keys.keys)))


def _key_set(
    report: Report,
    settings: GateSettings,
    describe: Callable[[ConfigError], str],
    source: str,
    setting: str,
) -> RemoteKeySet | None:
    """The key set at ``source``, loaded once (no keys: a URL that could not be fetched, its
    ``last_error`` says why); None when it is no key set at all (the failure reported)."""
    from saml_gate.runtime.remote_keys import RemoteKeySet

    keys = RemoteKeySet.fetched_as_metadata(settings, source, setting)
    try:
        anyio.run(keys.load)
    except ConfigError as exc:
        report.fail(describe(exc))
        return None
    return keys


def _check_agreement(
    report: Report,
    settings: GateSettings,
    state: SamlState,
    describe: Callable[[ConfigError], str],
) -> None:
    """With a shared store: does every gate already serving from it share this one's keys,
    secrets and settings (see :mod:`saml_gate.ops.agreement`)?"""
    from saml_gate.store import open_store

    try:
        store = open_store(settings)
    except ConfigError as exc:  # e.g. a Redis URL without redis-py: reported, not raised
        report.fail(describe(exc))
        return
    kids = tuple(key.kid for key in load_jwt_keys(settings, announce=False))
    facts = GateFacts(state.keys.cert_pem, state.idp.entity_id, kids)
    agreement = GateAgreement(settings, store, lambda: facts)
    if not agreement.shared:
        return

    async def compare() -> list[Comparison]:
        try:
            return await agreement.compare(announce=False)
        finally:
            await store.close()

    try:
        compared = anyio.run(compare)
    except StoreUnavailable as exc:
        report.fail(f"store: unreachable, so not compared with the gates sharing it ({exc})")
        return
    for item in compared:
        if item.values:
            report.fail(item.message)
    agreeing = sum(1 for item in compared if not item.values)
    if agreeing or not compared:
        report.ok_(
            f"store: {agreeing} other gate(s) serving from it share this gate's keys, secrets"
            " and settings"
        )


def _check_unconfigured_pair(
    report: Report, settings: GateSettings, state: SamlState, where: str, existed: bool
) -> None:
    """The SP key pair comes from ``state_dir`` (sp_key and sp_cert are not set). The IdP knows
    one SP certificate, the one it was given: a pair made in another shell, machine or
    state_dir is another one, and the IdP refuses what it signs."""
    origin = (
        f"the SP key pair was generated just now in {where}"
        if not existed
        else f"the SP key pair is the one found in {where} (sp_key and sp_cert are not set)"
    )
    fix = (
        "run saml-gate keygen, set --sp-key and --sp-cert (SAML_GATE_SP_KEY, SAML_GATE_SP_CERT)"
        " to its files and give the IdP that certificate (saml-gate setup)"
    )
    if state.sp.sign_requests:
        why = (
            "sign_authn_requests is on"
            if settings.sign_authn_requests
            else "the IdP metadata asks for it (WantAuthnRequestsSigned)"
        )
        known = (
            "the IdP must hold this very certificate, and a shell, machine or container"
            " without this state_dir makes another pair, whose signatures the IdP refuses"
            if existed
            else "no IdP can know its certificate yet"
        )
        report.fail(f"{origin}, and AuthnRequests are signed ({why}): {known}. Fix: {fix}")
    elif state.idp.slo_url and settings.idp_logout:
        report.warn(f"{origin}: Single Logout messages to the IdP are signed with it. {fix}")
    else:
        report.warn(f"{origin}: fine for a trial; for production {fix}")
