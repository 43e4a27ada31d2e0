"""Every option of the gate: defaults, validation, environment loading and derived URLs.

One frozen object, built once at start-up. Keyword arguments and ``SAML_GATE_*`` environment
variables are the same settings (keyword arguments win); a bad value raises :class:`ConfigError`
naming the setting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from saml_gate.errors import ConfigError, GateError
from saml_gate.policy import Rule, as_rule, canonical_path, parse_rules
from saml_gate.saml import xmlconst as X
from saml_gate.web.forwarded import parse_networks

SameSite = Literal["lax", "strict", "none"]
StoreOutage = Literal["serve", "refuse"]
VerifyIsolation = Literal["process", "thread"]

SECURE_SIGNATURE_ALGORITHMS: Final = (
    X.RSA_SHA256,
    X.RSA_SHA384,
    X.RSA_SHA512,
    X.ECDSA_SHA256,
    X.ECDSA_SHA384,
    X.ECDSA_SHA512,
)
SECURE_DIGEST_ALGORITHMS: Final = (X.DIGEST_SHA256, X.DIGEST_SHA384, X.DIGEST_SHA512)
KNOWN_NAME_ID_FORMATS: Final = (
    X.NAMEID_EMAIL,
    X.NAMEID_UNSPECIFIED,
    X.NAMEID_PERSISTENT,
    X.NAMEID_TRANSIENT,
)
ENV_PREFIX: Final = "SAML_GATE_"
#: Settings that are Python objects, given as keyword arguments only.
NOT_FROM_ENV: Final = frozenset({"clock", "on_event", "metrics_registry"})
MIN_SECRET_LENGTH: Final = 32


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` (and its subdomains) and loopback addresses (127/8, ::1, mapped)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """The validated configuration. Build it with :meth:`load` (keywords + environment)."""

    base_url: str
    secret_key: tuple[str, ...]
    idp_metadata: str | None = None
    """IdP metadata: the XML itself, the path of a file holding it, or its https URL."""
    metadata_refresh_interval: float = 3600.0
    """How often metadata from a URL is fetched again (shortened by cacheDuration/validUntil)."""
    metadata_timeout: float = 10.0
    metadata_max_bytes: int = 1024 * 1024
    idp_entity_id: str | None = None
    """Which IdP to use when the metadata describes several."""
    dev_idp: bool = False
    """Serve the embedded development IdP under ``{prefix}/devidp`` and trust it (loopback only)."""
    prefix: str = "/saml"
    entity_id: str = ""
    """SP entity ID (Okta: Audience URI). Default: the metadata URL, as ngrok does."""
    sp_key: str | None = None
    """SP private key, PEM text or file path (request signing, assertion decryption)."""
    sp_cert: str | None = None
    state_dir: str = ".saml-gate"
    """Where development keys are generated and kept when sp_key/sp_cert are not given."""
    name_id_format: str = X.NAMEID_EMAIL
    force_authn: bool = False
    sign_authn_requests: bool | None = None
    """None: sign when the IdP metadata says WantAuthnRequestsSigned."""
    allow_idp_initiated: bool = False
    authorized_groups: tuple[str, ...] = ()
    access_rules: tuple[Rule, ...] = ()
    """Per-path rules, first match wins: ``saml_gate.Rule`` objects or their text form."""
    options_passthrough: bool = False
    """Pass OPTIONS requests (CORS preflight) to the app without sign-in, as ngrok's option."""
    method_override_in_body: bool = True
    """The app may honour ``_method`` in a POST form body (Rails, Laravel, Symfony), which the
    gate does not read: a form POST must then also be allowed under every method an access
    rule names. Set false when the app does not."""
    allow_path_parameters: bool = False
    """Accept ';' path parameters (``/a;jsessionid=1/b``), matching rules on the path without
    them as servlet containers serve it; refused with 400 by default."""
    groups_attribute: str = "groups"
    email_attribute: str = "email"
    name_attribute: str = "displayName"
    clock_skew: float = 90.0
    maximum_duration: float = 8 * 3600.0
    inactivity_timeout: float = 3600.0
    login_timeout: float = 600.0
    """How long a started sign-in (RelayState, pending request) stays valid."""
    cookie_prefix: str = "saml_gate"
    cookie_secure: bool | None = None
    """None: Secure when base_url is https."""
    cookie_samesite: SameSite = "lax"
    cookie_domain: str | None = None
    public_paths: tuple[str, ...] = ()
    """Paths served without sign-in: an entry ending in '/' is a prefix, others exact paths."""
    want_response_signed: bool = False
    want_assertions_signed: bool = False
    """Whatever these say, an assertion is only used when a valid signature covers it."""
    signature_algorithms: tuple[str, ...] = SECURE_SIGNATURE_ALGORITHMS
    allow_sha1: bool = False
    max_response_bytes: int = 256 * 1024
    max_xml_depth: int = 32
    """Deepest element nesting accepted in a Response (Okta's is under 10)."""
    max_xml_elements: int = 10_000
    """Most XML elements accepted in a Response; checked right after parsing, before any
    schema or signature work."""
    max_xml_attributes: int = 32
    """Most attributes on one element of a Response, and most namespace declarations in scope
    at one element (Okta and the interop IdPs use 5 or fewer). The whole Response may hold at
    most max_xml_elements attributes, and as many namespace declarations. Checked with
    max_xml_elements."""
    check_subject_address: bool = False
    """Refuse a Response whose bearer SubjectConfirmationData names an Address other than the
    client's (as trusted_proxies resolve it). Off by default: behind tunnels and proxies, or
    when the IdP saw the browser over IPv6 and the gate over IPv4, the addresses differ."""
    verify_isolation: VerifyIsolation = "process"
    """Where Responses are verified and AuthnRequests built: "process" (child processes of the
    app's process, started with the gate: the event loop never waits for the GIL behind XML
    work, and a C-library crash on hostile input ends a child, not the app) or "thread" (worker
    threads of the app's process, for platforms that forbid child processes)."""
    verify_concurrency: int = 1
    """Responses verified at once: child processes with verify_isolation "process", worker
    threads with "thread" (where the work is mostly GIL-bound, and 1 thread gave the same
    throughput as 2 on the benchmark's storm with half the event loop's p99)."""
    store: str = "memory"
    """Shared state: "memory" (one process) or a Redis URL; SamlGate(store=...) also takes a
    redis.asyncio.Redis client or a Store."""
    store_prefix: str = "saml-gate:"
    store_timeout: float = 0.5
    """Seconds a store call may take (connect, reply, pool wait) before it counts as failed."""
    store_outage: StoreOutage = "serve"
    """While the store is unreachable, sessions with a valid cookie are served (logged) or
    refused with 503. New sign-ins are refused either way."""
    idp_logout: bool = True
    """Sign-out continues to the IdP (SAML Single Logout) when its metadata has an SLO URL."""
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    """Addresses or networks (``10.0.0.0/8``; ``*`` for any) of proxies whose
    X-Forwarded-For / Forwarded the gate believes about the client's address."""
    debug: bool = False
    on_event: tuple[Callable[..., Any], ...] = field(default=(), compare=False, repr=False)
    """Callables given every auth event (sync or async); see saml_gate.ops.events.AuthEvent."""
    metrics_path: str | None = None
    """Serve Prometheus metrics at this path (e.g. /metrics); off when None."""
    metrics_public: bool = False
    """Let any client scrape metrics_path; by default only loopback clients not behind a proxy."""
    metrics_registry: Any = field(default=None, compare=False, repr=False)
    """A prometheus_client CollectorRegistry to register the gate's metrics into."""
    status_group: str | None = None
    """Members of this group may read {prefix}/status; loopback clients always may."""
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    # ------------------------------------------------------------------ derived URLs
    @property
    def base_path(self) -> str:
        """The path of base_url ("" unless the app is mounted under a root path, e.g. /app)."""
        return urlsplit(self.base_url).path

    def public_path(self, endpoint: str) -> str:
        """The path the browser uses for one of the gate's endpoints, e.g. ``/saml/acs``."""
        return self.base_path + self.prefix + endpoint

    @property
    def acs_url(self) -> str:
        return self.base_url + self.prefix + "/acs"

    @property
    def metadata_url(self) -> str:
        return self.base_url + self.prefix + "/metadata"

    @property
    def slo_url(self) -> str:
        return self.base_url + self.prefix + "/slo"

    @property
    def login_url(self) -> str:
        return self.base_url + self.prefix + "/login"

    @property
    def devidp_url(self) -> str:
        return self.base_url + self.prefix + "/devidp"

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
        }

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.is_https if self.cookie_secure is None else self.cookie_secure

    @property
    def base_is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.base_url).hostname or "")

    @property
    def digest_algorithms(self) -> tuple[str, ...]:
        return SECURE_DIGEST_ALGORITHMS + ((X.DIGEST_SHA1,) if self.allow_sha1 else ())

    @property
    def accepted_signature_algorithms(self) -> tuple[str, ...]:
        return self.signature_algorithms + ((X.RSA_SHA1,) if self.allow_sha1 else ())

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> GateSettings:
        """Build from keyword arguments, filling the rest from ``SAML_GATE_*`` variables."""
        env = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - set(fields))
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; known settings: {', '.join(fields)}")
        values: dict[str, Any] = {}
        for name in fields:
            if name in NOT_FROM_ENV:
                continue
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = _from_env(name, raw)
        values.update({k: v for k, v in kwargs.items() if v is not None or k in values})
        return cls.validated(**values)

    @classmethod
    def validated(cls, **values: Any) -> GateSettings:
        for required in ("base_url", "secret_key"):
            if values.get(required) in (None, "", (), []):
                raise ConfigError(
                    required,
                    f"is required (keyword {required}= or {ENV_PREFIX}{required.upper()})",
                )
        values["base_url"] = _check_base_url(values["base_url"])
        values["secret_key"] = _check_secrets(values["secret_key"])
        if "on_event" in values:
            values["on_event"] = _as_hooks(values["on_event"])
        for name in (
            "authorized_groups",
            "public_paths",
            "signature_algorithms",
            "trusted_proxies",
        ):
            if name in values:
                values[name] = _as_tuple(name, values[name])
        if "access_rules" in values:
            values["access_rules"] = _as_rules(values["access_rules"])
        settings = cls(**values)
        settings = _check_and_derive(settings)
        return settings


def _from_env(name: str, raw: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(GateSettings)}[name]
    kind = str(f.type)
    if name == "access_rules":
        return parse_rules(raw)
    try:
        if "tuple" in kind:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if kind.startswith("bool"):
            return _parse_bool(name, raw)
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
    except ValueError as exc:
        raise ConfigError(name, f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid value") from exc
    return raw


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"{raw!r} is not a boolean (use true or false)")


def _as_tuple(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(v, str) for v in items):
            return items
    raise ConfigError(name, "must be a list of strings")


def _as_rules(value: Any) -> tuple[Rule, ...]:
    """Rules from Rule objects and text forms; one string may hold several, ';'-separated."""
    if isinstance(value, str):
        return parse_rules(value)
    if isinstance(value, Rule) or not isinstance(value, Iterable):
        return (as_rule(value),)
    return tuple(as_rule(item) for item in value)


def _as_hooks(value: Any) -> tuple[Callable[..., Any], ...]:
    hooks = (value,) if callable(value) else tuple(value or ())
    for hook in hooks:
        if not callable(hook):
            raise ConfigError("on_event", f"{hook!r} is not callable")
    return hooks


def _check_base_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError("base_url", "must be a URL string such as https://acme.ngrok.app")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "base_url",
            f"{value!r} is not an absolute http(s) URL; use the public URL the browser opens,"
            " e.g. https://acme.ngrok.app",
        )
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(
            "base_url",
            f"{value!r} must be scheme://host[:port] (plus the path the app is mounted at, if"
            " any), without query or user",
        )
    path = parts.path.rstrip("/")
    try:
        plain = not path or (canonical_path(path) == path and not any(c in path for c in ";%"))
    except GateError:
        plain = False
    if not plain:
        raise ConfigError("base_url", f"{value!r}: the path must be a plain path such as /app")
    return f"{parts.scheme}://{parts.netloc}".lower() + path


def _check_secrets(value: Any) -> tuple[str, ...]:
    secrets = (value,) if isinstance(value, str | bytes) else tuple(value)
    out: list[str] = []
    for secret in secrets:
        text = secret.decode() if isinstance(secret, bytes) else secret
        if not isinstance(text, str) or len(text) < MIN_SECRET_LENGTH:
            raise ConfigError(
                "secret_key",
                f"each secret must be at least {MIN_SECRET_LENGTH} characters; generate one with"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        out.append(text)
    if not out:
        raise ConfigError("secret_key", "at least one secret is required")
    return tuple(out)


def _check_and_derive(s: GateSettings) -> GateSettings:
    changes: dict[str, Any] = {}
    if s.dev_idp and s.idp_metadata:
        raise ConfigError("dev_idp", "cannot be combined with idp_metadata; choose one IdP")
    if not s.dev_idp and not s.idp_metadata:
        raise ConfigError(
            "idp_metadata",
            "is required: the IdP metadata URL (Okta: Sign On tab → Metadata URL), a saved file"
            " or the XML; or set dev_idp=True for the embedded development IdP",
        )
    metadata_url = urlsplit((s.idp_metadata or "").strip())
    if metadata_url.scheme.lower() == "http" and not is_loopback_host(metadata_url.hostname or ""):
        raise ConfigError(
            "idp_metadata",
            "a plain http metadata URL lets anyone on the way swap the IdP's signing keys: use"
            " its https URL (Okta serves https)",
        )
    if s.dev_idp and not s.base_is_loopback:
        raise ConfigError(
            "dev_idp", "the development IdP only runs on a loopback base_url (127.0.0.1, localhost)"
        )
    if not s.prefix.startswith("/") or s.prefix.endswith("/") or len(s.prefix) < 2:
        raise ConfigError(
            "prefix", f"{s.prefix!r} must look like /saml (leading slash, no trailing)"
        )
    if not s.entity_id:
        changes["entity_id"] = s.base_url + s.prefix + "/metadata"
    if s.cookie_samesite not in get_args(SameSite):
        raise ConfigError("cookie_samesite", "must be one of lax, strict, none")
    if s.cookie_samesite == "none" and not (
        s.is_https if s.cookie_secure is None else s.cookie_secure
    ):
        raise ConfigError("cookie_samesite", "none requires Secure cookies (an https base_url)")
    if not s.cookie_prefix.replace("_", "").replace("-", "").isalnum():
        raise ConfigError("cookie_prefix", "use letters, digits, '-' and '_' only")
    if not 0 <= s.clock_skew <= 600:
        raise ConfigError("clock_skew", "must be between 0 and 600 seconds")
    if s.maximum_duration <= 0:
        raise ConfigError("maximum_duration", "must be a positive number of seconds")
    if not 0 < s.inactivity_timeout <= s.maximum_duration:
        raise ConfigError("inactivity_timeout", "must be positive and at most maximum_duration")
    if not 30 <= s.login_timeout <= 3600:
        raise ConfigError("login_timeout", "must be between 30 and 3600 seconds")
    if s.name_id_format not in KNOWN_NAME_ID_FORMATS:
        raise ConfigError("name_id_format", f"must be one of {', '.join(KNOWN_NAME_ID_FORMATS)}")
    for alg in s.signature_algorithms:
        if alg not in SECURE_SIGNATURE_ALGORITHMS:
            hint = " (SHA-1: set allow_sha1=True instead)" if "sha1" in alg else ""
            raise ConfigError("signature_algorithms", f"{alg!r} is not supported{hint}")
    if not s.signature_algorithms:
        raise ConfigError("signature_algorithms", "at least one algorithm is required")
    if not 1024 <= s.max_response_bytes <= 10 * 1024 * 1024:
        raise ConfigError("max_response_bytes", "must be between 1 KiB and 10 MiB")
    if not 16 <= s.max_xml_depth <= 256:
        raise ConfigError("max_xml_depth", "must be between 16 and 256 (libxml2's own limit)")
    if not 100 <= s.max_xml_elements <= 1_000_000:
        raise ConfigError("max_xml_elements", "must be between 100 and 1000000")
    if not 8 <= s.max_xml_attributes <= 1024:
        raise ConfigError("max_xml_attributes", "must be between 8 and 1024")
    if not 60 <= s.metadata_refresh_interval <= 7 * 86400:
        raise ConfigError("metadata_refresh_interval", "must be between 60 s and 7 days")
    if not 0.5 <= s.metadata_timeout <= 120:
        raise ConfigError("metadata_timeout", "must be between 0.5 and 120 seconds")
    if not 4096 <= s.metadata_max_bytes <= 50 * 1024 * 1024:
        raise ConfigError("metadata_max_bytes", "must be between 4 KiB and 50 MiB")
    if not 1 <= s.verify_concurrency <= 64:
        raise ConfigError("verify_concurrency", "must be between 1 and 64")
    if s.verify_isolation not in get_args(VerifyIsolation):
        raise ConfigError("verify_isolation", "must be process or thread")
    _check_store(s)
    parse_networks(s.trusted_proxies)
    for path in s.public_paths:
        if not path.startswith("/"):
            raise ConfigError("public_paths", f"{path!r} must start with '/'")
    for name in ("groups_attribute", "email_attribute", "name_attribute"):
        if not getattr(s, name):
            raise ConfigError(name, "must not be empty")
    return dataclasses.replace(s, **changes) if changes else s


def _check_store(s: GateSettings) -> None:
    scheme = urlsplit(s.store).scheme
    if s.store != "memory" and scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "store", f"{scheme or s.store!r}: use memory or a Redis URL such as redis://host:6379/0"
        )
    if not 0.05 <= s.store_timeout <= 30:
        raise ConfigError("store_timeout", "must be between 0.05 and 30 seconds")
    if s.metrics_path is not None and (
        not s.metrics_path.startswith("/") or s.metrics_path.rstrip("/") == ""
    ):
        raise ConfigError("metrics_path", f"{s.metrics_path!r} must be a path such as /metrics")
    if s.store_outage not in get_args(StoreOutage):
        raise ConfigError("store_outage", "must be serve or refuse")
    if not s.store_prefix or any(c.isspace() for c in s.store_prefix):
        raise ConfigError("store_prefix", "must be non-empty, without spaces")
