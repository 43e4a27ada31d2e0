"""The identity headers an upstream receives from the proxy mode and from forward-auth.

``X-Forwarded-User`` (the NameID), ``X-Forwarded-Email`` (when known) and
``X-Forwarded-Groups`` (comma-separated), the names configurable (``user_header``,
``email_header``, ``groups_header``; empty turns one off). Values are UTF-8, percent-encoded only
where they hold ``%``, control or non-ASCII characters (and ``,`` inside a group name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from saml_gate.config.identity_settings import DEFAULT_IDENTITY_HEADERS
from saml_gate.user import SamlUser

if TYPE_CHECKING:
    from saml_gate.config.identity_settings import IdentityFields

__all__ = ["DEFAULT_IDENTITY_HEADERS", "IdentityHeaders", "header_value"]

_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(value: str, *, list_item: bool = False) -> bytes:
    """An identity value as a header value (see the module docstring)."""
    safe = _SAFE.replace(",", "") if list_item else _SAFE
    return quote(value, safe=safe).encode("ascii")


@dataclass(frozen=True)
class IdentityHeaders:
    """The names of the identity headers (lower-case bytes; empty: not sent)."""

    user: bytes = DEFAULT_IDENTITY_HEADERS[0].lower().encode()
    email: bytes = DEFAULT_IDENTITY_HEADERS[1].lower().encode()
    groups: bytes = DEFAULT_IDENTITY_HEADERS[2].lower().encode()

    @classmethod
    def named(cls, user: str, email: str, groups: str) -> IdentityHeaders:
        return cls(user.lower().encode(), email.lower().encode(), groups.lower().encode())

    @classmethod
    def of_settings(cls, settings: IdentityFields) -> IdentityHeaders:
        """The names the settings give (``user_header``, ``email_header``, ``groups_header``)."""
        return cls.named(settings.user_header, settings.email_header, settings.groups_header)

    @property
    def names(self) -> frozenset[bytes]:
        """Every name to strip from a client's request: these and the default ones."""
        defaults = {n.lower().encode() for n in DEFAULT_IDENTITY_HEADERS}
        return frozenset(n for n in (self.user, self.email, self.groups, *defaults) if n)

    def of(self, user: SamlUser) -> list[tuple[bytes, bytes]]:
        """The headers naming ``user``."""
        out: list[tuple[bytes, bytes]] = []
        if self.user:
            out.append((self.user, header_value(user.name_id)))
        if self.email and user.email:
            out.append((self.email, header_value(user.email)))
        if self.groups:
            groups = b",".join(header_value(g, list_item=True) for g in user.groups)
            out.append((self.groups, groups))
        return out
