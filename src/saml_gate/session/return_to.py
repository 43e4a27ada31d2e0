"""Where a sign-in may send the browser afterwards: a relative path on this site, or an absolute
URL on a host of ``allowed_hosts`` (or ``base_url``'s), for forward-auth and other hosts
(:class:`~saml_gate.policy.hosts.KnownHosts`).

Open redirects are the classic hole of this mode, so an absolute URL is read strictly rather
than parsed leniently: ``http`` or ``https``, an authority that is plainly ``host[:port]`` (no
userinfo: ``https://allowed.example@evil.com``), no backslash, control character or whitespace
anywhere (``https://allowed.example\\@evil.com`` is evil.com to some browsers), no
percent-encoding in the authority, and a path that is itself a safe relative path. A host
matches ``app.example.com`` exactly (any port unless the pattern names one), or
``*.example.com`` for its subdomains (never ``example.com`` itself, nor
``app.example.com.evil.com``).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit

from saml_gate.policy.hosts import KnownHosts, parse_host

MAX_RETURN_PATH: Final = 2048
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE: Final = re.compile(r"[\x00-\x20\x7f\\]")
_AUTHORITY: Final = re.compile(r"(?i)(https?)://([^/?#]*)(.*)")


def safe_return_path(value: str | None, default: str = "/") -> str | None:
    """``value`` if it is a same-origin relative path, else None (an open-redirect attempt)."""
    if value is None or value == "":
        return default
    if len(value) > MAX_RETURN_PATH or _CONTROL.search(value) or "\\" in value:
        return None
    decoded = value
    for _ in range(3):  # look through nested percent-encoding
        decoded = unquote(decoded)
        if _CONTROL.search(decoded) or "\\" in decoded or decoded.startswith("//"):
            return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


class ReturnTargets:
    """Decides whether a ``return_to`` is a safe place to send the browser after sign-in: on
    the hosts of ``hosts``, the access policy's (:class:`~saml_gate.policy.hosts.KnownHosts`)."""

    __slots__ = ("_hosts",)

    def __init__(self, hosts: KnownHosts) -> None:
        self._hosts = hosts

    def allows_host(self, host: str, port: int | None) -> bool:
        return self._hosts.allows(host, port)

    def absolute(self, value: str) -> str | None:
        """``value`` if it is an absolute URL on an allowed host (see the module docstring)."""
        if len(value) > MAX_RETURN_PATH or _UNSAFE.search(value):
            return None
        match = _AUTHORITY.fullmatch(value)
        if match is None:
            return None
        _scheme, authority, rest = match.groups()
        parsed = parse_host(authority)
        if parsed is None or not self.allows_host(*parsed):
            return None
        if rest and safe_return_path(rest if rest.startswith("/") else "/" + rest) is None:
            return None
        return value

    def check(self, value: str | None) -> str | None:
        """A safe relative path ("/" when empty) or an allowed absolute URL; else None."""
        if value and not value.startswith("/"):
            return self.absolute(value)
        return safe_return_path(value)
