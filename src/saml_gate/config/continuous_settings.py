"""Settings of continuous authorization, declared: Okta Universal Logout (the IdP ends every
session of a person at once) and re-assertion while signed in (the IdP vouches for the person
again every ``reassert_interval``).

:class:`~saml_gate.config.settings.GateSettings` inherits the group (see
:mod:`saml_gate.config.declaration`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from saml_gate.config.checks import is_loopback_host, is_url
from saml_gate.config.declaration import SECONDS, setting
from saml_gate.config.kinds import FLOAT, TEXT, Kind
from saml_gate.errors import ConfigError

#: Where an Okta org publishes the keys it signs with (its org authorization server's JWKS).
OKTA_KEYS_PATH: Final = "/oauth2/v1/keys"


def _plain_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or "")


def as_issuer(name: str, value: Any) -> str:
    """The org's URL as its JWTs name it: ``https://host[:port]``, no trailing slash."""
    if not isinstance(value, str):
        raise ConfigError(name, "must be a URL such as https://acme.okta.com")
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            name, f"{value!r} is not an https URL: use the Okta org's, https://acme.okta.com"
        )
    if parts.query or parts.fragment or parts.username:
        raise ConfigError(name, f"{value!r} must be a plain URL, without query or user")
    if _plain_http(text):
        raise ConfigError(
            name, f"{value!r} is plain http: the org's keys must come over https (Okta serves it)"
        )
    return text


def keys_source(value: str) -> str | None:
    """A key set URL over plain http would let anyone on the way sign logouts."""
    if is_url(value) and _plain_http(value.strip()):
        return "a plain http key set URL lets anyone on the way swap the org's keys: use https"
    return None


ISSUER: Final = Kind("url", "a URL", str, as_issuer)


@dataclass(frozen=True, kw_only=True)
class ContinuousFields:
    """Okta Universal Logout and re-assertion while signed in."""

    GROUP: ClassVar[str] = "continuous"
    TITLE: ClassVar[str] = "Continuous authorization: Universal Logout, re-assertion"

    reassert_interval: float | None = setting(
        None,
        help="ask the IdP again, without a prompt (`IsPassive`), on the first page load this"
        " long after it last vouched for the person: new groups, attributes and expiry, or"
        " the session ends (see [Continuous authorization](#continuous-authorization))",
        kind=FLOAT,
        range=(60, 7 * 86400),
        unit=SECONDS,
        shown_default="off",
    )
    universal_logout_issuer: str | None = setting(
        None,
        help="the Okta org URL (`https://acme.okta.com`) whose signed Universal Logout"
        " requests `{prefix}/global-token-revocation` accepts; unset, that endpoint answers 404",
        kind=ISSUER,
        shown_default="off",
    )
    universal_logout_keys: str | None = setting(
        None,
        help="the org's key set that signs those requests: a URL (fetched and refreshed like"
        " IdP metadata), a file or the JSON itself",
        kind=TEXT,
        check=keys_source,
        shown_default="`{universal_logout_issuer}/oauth2/v1/keys`",
    )
    universal_logout_app_id: str | None = setting(
        None,
        help="when set, a Universal Logout request must name this app (its JWT's `sub`: the"
        " Okta app's ID, `0oa...`, as in its metadata URL)",
        kind=TEXT,
        shown_default="any app of the org",
    )

    # ------------------------------------------------------------------ derived values
    @property
    def universal_logout_keys_source(self) -> str | None:
        """Where the org's keys come from (None while Universal Logout is off)."""
        if self.universal_logout_issuer is None:
            return None
        return self.universal_logout_keys or self.universal_logout_issuer + OKTA_KEYS_PATH

    @property
    def universal_logout_keys_shown(self) -> str:
        """The key set's URL for public hints; never a file path or the JSON."""
        source = self.universal_logout_keys_source
        if source is None:
            return "none: Universal Logout is off"
        return source if is_url(source) else "the key set configured"


def continuous_problems(values: Mapping[str, Any]) -> Iterator[ConfigError]:
    """Checks of this group that involve other settings."""
    if values.get("universal_logout_issuer") is None:
        for name in ("universal_logout_keys", "universal_logout_app_id"):
            if values.get(name):
                yield ConfigError(
                    "universal_logout_issuer",
                    f"is required with {name}: the Okta org URL, https://acme.okta.com",
                )
    interval, longest = values.get("reassert_interval"), values.get("maximum_duration")
    if interval is not None and longest is not None and interval >= longest:
        yield ConfigError(
            "reassert_interval",
            f"must be shorter than maximum_duration ({longest:g} s), or no session lives to see it",
        )
