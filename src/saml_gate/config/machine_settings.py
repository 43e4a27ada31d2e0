"""Settings of machine access, declared: the OAuth access tokens of a trusted issuer that
scripts and services may present as ``Authorization: Bearer`` (gate service tokens need no
setting: they live in the shared store).

:class:`~saml_gate.config.settings.GateSettings` inherits the group (see
:mod:`saml_gate.config.declaration`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from saml_gate.config.continuous_settings import ISSUER, keys_source
from saml_gate.config.declaration import setting
from saml_gate.config.kinds import TEXT
from saml_gate.errors import ConfigError

#: Where an Okta authorization server (API Access Management) publishes its keys.
OKTA_AS_KEYS_PATH: Final = "/v1/keys"


def scope_groups(value: tuple[str, ...]) -> str | None:
    """Each entry maps a scope to a group: ``scope=group``."""
    for entry in value:
        scope, sep, group = entry.partition("=")
        if not sep or not scope.strip() or not group.strip():
            return f"{entry!r} is not scope=group"
    return None


@dataclass(frozen=True, kw_only=True)
class MachineFields:
    """OAuth access tokens from the IdP's authorization server."""

    GROUP: ClassVar[str] = "machine"
    TITLE: ClassVar[str] = "Machine access: IdP access tokens"

    access_token_issuer: str | None = setting(
        None,
        help="the authorization server whose OAuth access tokens a rule with `accept=token`"
        " takes in `Authorization: Bearer` (its `iss`: Okta's"
        " `https://acme.okta.com/oauth2/default`; see [Machine access](#machine-access))",
        kind=ISSUER,
        shown_default="off",
    )
    access_token_audiences: tuple[str, ...] = setting(
        (),
        help="the `aud` values accepted (Okta: the authorization server's Audience);"
        " required with `access_token_issuer`",
    )
    access_token_keys: str | None = setting(
        None,
        help="the issuer's key set: a URL (fetched and refreshed like IdP metadata, refetched"
        " on an unknown `kid`), a file or the JSON itself",
        kind=TEXT,
        check=keys_source,
        shown_default="`{access_token_issuer}/v1/keys`",
    )
    access_token_algorithms: tuple[str, ...] = setting(
        ("RS256",),
        help="the JWS algorithms accepted (asymmetric only: RS, PS, ES; never `none` nor HMAC)",
    )
    access_token_groups_claim: str = setting(
        "groups",
        help="the claim whose values (verbatim) are the service's groups for the access rules",
    )
    access_token_scope_groups: tuple[str, ...] = setting(
        (),
        help="scopes that also count as groups, `scope=group` (`deploy:write=deployers`)",
        check=scope_groups,
    )

    # ------------------------------------------------------------------ derived values
    @property
    def access_token_keys_source(self) -> str | None:
        """Where the issuer's keys come from (None while IdP access tokens are off)."""
        if self.access_token_issuer is None:
            return None
        return self.access_token_keys or self.access_token_issuer + OKTA_AS_KEYS_PATH

    @property
    def scope_group_map(self) -> dict[str, tuple[str, ...]]:
        """Each mapped scope with the groups it gives."""
        mapping: dict[str, tuple[str, ...]] = {}
        for entry in self.access_token_scope_groups:
            scope, _, group = entry.partition("=")
            mapping[scope.strip()] = (*mapping.get(scope.strip(), ()), group.strip())
        return mapping


def machine_problems(values: Mapping[str, Any]) -> Iterator[ConfigError]:
    """Checks of this group that involve other settings."""
    if values.get("access_token_issuer") is None:
        for name in ("access_token_audiences", "access_token_keys", "access_token_scope_groups"):
            if values.get(name):
                yield ConfigError(
                    "access_token_issuer",
                    f"is required with {name}: the authorization server's issuer URL",
                )
    elif "access_token_audiences" in values and not values["access_token_audiences"]:
        yield ConfigError(
            "access_token_audiences",
            "is required with access_token_issuer: the audience its access tokens name",
        )
