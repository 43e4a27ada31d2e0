"""Settings of the SAML exchange, declared: the service provider, the IdP and the fetch of its
metadata, the verifier and its XML limits.

Each group is a frozen dataclass of declared fields (see :mod:`saml_gate.config.declaration`);
:class:`~saml_gate.config.settings.GateSettings` inherits them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from saml_gate.config import checks
from saml_gate.config.checks import (
    KNOWN_NAME_ID_FORMATS,
    SECURE_DIGEST_ALGORITHMS,
    SECURE_SIGNATURE_ALGORITHMS,
    is_loopback_url,
)
from saml_gate.config.declaration import BYTES, MIB, SECONDS, declare, setting
from saml_gate.config.kinds import BASE_URL, BOOL, TEXT
from saml_gate.saml import xmlconst as X


@dataclass(frozen=True, kw_only=True)
class SpFields:
    """The service provider the gate is: its public URL, endpoints, entity ID, keys."""

    GROUP: ClassVar[str] = "sp"
    TITLE: ClassVar[str] = "Service provider: the gate's URLs, entity ID and keys"

    base_url: str = field(
        metadata=declare(
            help="public URL (`https://acme.ngrok.app`, plus the path the app is mounted at, if"
            " any: `https://acme.ngrok.app/app`); every SAML URL derives from it",
            kind=BASE_URL,
        )
    )
    prefix: str = setting(
        "/saml",
        help="where the gate's endpoints live",
        check=checks.endpoint_prefix,
    )
    entity_id: str = setting(
        "",
        help="SP entity ID (Okta: Audience URI)",
        shown_default="`{base_url}/saml/metadata`",
    )
    sp_key: str | None = setting(
        None,
        help="SP private key, PEM text or file: signs requests, decrypts assertions",
        kind=TEXT,
        shown_default="generated in `state_dir`",
    )
    sp_cert: str | None = setting(
        None,
        help="SP certificate, PEM text or file",
        kind=TEXT,
        shown_default="generated in `state_dir`",
    )
    state_dir: str = setting(
        "~/.saml-gate",
        help="the SP key pair when `sp_key` is not set (`saml-gate keygen` writes it there too),"
        " development IdP keys and the IdP metadata cache; one per user, whatever the current"
        " directory",
    )
    name_id_format: str = setting(
        X.NAMEID_EMAIL,
        help="NameID format asked for and accepted (`unspecified` is accepted too)",
        choices=KNOWN_NAME_ID_FORMATS,
        shown_default="emailAddress",
    )
    force_authn: bool = setting(False, help="ask the IdP to authenticate again at every sign-in")
    sign_authn_requests: bool | None = setting(
        None,
        help="sign AuthnRequests (RSA-SHA256); an IdP that has the SP certificate (uploaded for"
        " Single Logout) may demand it",
        kind=BOOL,
        shown_default="when sp_key is set or the IdP metadata asks",
    )

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
    def universal_logout_url(self) -> str:
        """The Global Token Revocation endpoint (Okta Universal Logout), also its JWTs' aud."""
        return self.base_url + self.prefix + "/global-token-revocation"

    @property
    def devidp_url(self) -> str:
        return self.base_url + self.prefix + "/devidp"

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def base_is_loopback(self) -> bool:
        return is_loopback_url(self.base_url)

    def base_url_warnings(self) -> tuple[tuple[str, str], ...]:
        """(event, message) for a base_url that works but is probably not what was meant:
        plain http on a public host, or a URL that already ends in the gate's prefix (the
        IdP would be given ``.../saml/saml/acs``). Shown by setup, check and at start-up."""
        found: list[tuple[str, str]] = []
        if self.base_url.startswith("http://") and not self.base_is_loopback:
            found.append(
                (
                    "insecure_base_url",
                    f"base_url {self.base_url} is plain http on a public host: cookies are not"
                    " Secure and the IdP posts every sign-in in clear text (some IdPs refuse an"
                    " http ACS URL); use the https URL people open (the tunnel's)",
                )
            )
        path = self.base_path.rstrip("/")
        if self.prefix and (path == self.prefix or path.endswith(self.prefix)):
            without = self.base_url.rstrip("/")[: -len(self.prefix)]
            found.append(
                (
                    "base_url_with_prefix",
                    f"base_url {self.base_url} ends in the gate's prefix {self.prefix}, so every"
                    f" gate URL has it twice (the ACS is {self.acs_url}): base_url is the"
                    f" public URL of the app, {without or '(its origin)'}, and the gate adds"
                    f" {self.prefix} itself",
                )
            )
        return tuple(found)


@dataclass(frozen=True, kw_only=True)
class IdpFields:
    """The identity provider: where its metadata comes from, or the development IdP."""

    GROUP: ClassVar[str] = "idp"
    TITLE: ClassVar[str] = "Identity provider"

    idp_metadata: str | None = setting(
        None,
        help="IdP metadata: URL (Okta: Metadata URL), file path or the XML itself",
        kind=TEXT,
        check=checks.metadata_source,
        shown_default="required (unless `dev_idp`)",
    )
    idp_entity_id: str | None = setting(
        None, help="which IdP, when the metadata lists several", kind=TEXT
    )
    dev_idp: bool = setting(
        False,
        help="serve and trust the embedded development IdP (loopback only)",
    )
    idp_logout: bool = setting(
        True,
        help="sign-out continues to the IdP (SAML Single Logout) when its metadata has an SLO"
        " endpoint",
    )


@dataclass(frozen=True, kw_only=True)
class MetadataFetchFields:
    """How IdP metadata given as a URL is fetched and refreshed."""

    GROUP: ClassVar[str] = "metadata_fetch"
    TITLE: ClassVar[str] = "Fetching the IdP metadata from a URL"
    ADVANCED: ClassVar[bool] = True

    metadata_refresh_interval: float = setting(
        3600.0,
        help="seconds between fetches of metadata from a URL (shortened by"
        " `cacheDuration`/`validUntil`)",
        range=(60, 7 * 86400),
        unit=SECONDS,
    )
    metadata_timeout: float = setting(
        10.0, help="seconds per metadata fetch", range=(0.5, 120), unit=SECONDS
    )
    metadata_max_bytes: int = setting(
        MIB,
        help="size cap on fetched metadata",
        range=(4096, 50 * MIB),
        unit=BYTES,
    )


@dataclass(frozen=True, kw_only=True)
class VerifierFields:
    """How a SAML Response is checked and read."""

    GROUP: ClassVar[str] = "verifier"
    TITLE: ClassVar[str] = "Verifying Responses: signatures, attributes"

    allow_idp_initiated: bool = setting(
        False,
        help="accept unsolicited Responses (Okta dashboard tiles)",
    )
    groups_attribute: str = setting("groups", help="attribute holding the groups", nonempty=True)
    email_attribute: str = setting(
        "email",
        help="attribute holding the email (else an email-shaped NameID)",
        nonempty=True,
    )
    name_attribute: str = setting(
        "displayName", help="attribute holding the display name", nonempty=True
    )
    want_response_signed: bool = setting(False, help="require the Response's own signature")
    want_assertions_signed: bool = setting(
        False,
        help="require the Assertion's own signature (a valid signature covering the assertion"
        " is always required)",
    )
    signature_algorithms: tuple[str, ...] = setting(
        SECURE_SIGNATURE_ALGORITHMS,
        help="accepted signature algorithms",
        nonempty=True,
        check=checks.signature_algorithms,
        shown_default="RSA/ECDSA with SHA-256/384/512",
    )
    allow_sha1: bool = setting(
        False,
        help="also accept RSA-SHA1 / SHA-1 (weak; only for IdPs that cannot do better)",
    )
    check_subject_address: bool = setting(
        False,
        help="refuse a Response whose bearer `SubjectConfirmationData` names an `Address`"
        " other than the client's (as `trusted_proxies` resolve it); off because tunnels,"
        " proxies, NAT and IPv4/IPv6 paths make the IdP and the gate see different addresses"
        " (Shibboleth ships with it off too)",
    )

    # ------------------------------------------------------------------ derived values
    @property
    def digest_algorithms(self) -> tuple[str, ...]:
        return SECURE_DIGEST_ALGORITHMS + ((X.DIGEST_SHA1,) if self.allow_sha1 else ())

    @property
    def accepted_signature_algorithms(self) -> tuple[str, ...]:
        return self.signature_algorithms + ((X.RSA_SHA1,) if self.allow_sha1 else ())


@dataclass(frozen=True, kw_only=True)
class XmlLimitFields:
    """How large and complex a posted Response may be before its XML is refused."""

    GROUP: ClassVar[str] = "xml_limits"
    TITLE: ClassVar[str] = "Limits on a posted Response's XML"
    ADVANCED: ClassVar[bool] = True

    max_response_bytes: int = setting(
        256 * 1024,
        help="size cap on a posted Response",
        range=(1024, 10 * MIB),
        unit=BYTES,
    )
    max_xml_depth: int = setting(
        32,
        help="deepest element nesting accepted in a Response",
        range=(16, 256),  # 256: libxml2's own limit
    )
    max_xml_elements: int = setting(
        10_000,
        help="most XML elements accepted in a Response",
        range=(100, 1_000_000),
    )
    max_xml_attributes: int = setting(
        32,
        help="most attributes on one XML element of a Response, and most namespace"
        " declarations in scope at one element (real IdPs use 5 or fewer); the whole Response"
        " may hold `max_xml_elements` attributes and as many namespace declarations",
        range=(8, 1024),
    )
