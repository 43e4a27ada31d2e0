"""Hosts: how a request's host is read, which hosts the gate serves, and host patterns.

One grammar for every host the gate compares (``allowed_hosts``, a rule's ``host``, a
``return_to`` URL, the ``Host`` of a request): ``name[:port]``, where the name is an ASCII DNS
name (IDNs in their ``xn--`` form), an IPv4 address or a bracketed IPv6 address, compared in
lower case (DNS is case-insensitive). Nothing is repaired: a trailing dot (``app.example.``, the
same DNS name to a resolver, another virtual host to some servers), a Unicode name (which
``str.lower`` and IDNA map in more than one way), a port outside 1-65535 or in other digits than
ASCII are not hosts at all, so a request naming one is refused (``bad_host``) rather than
decided on a guess.

A pattern ``app.example`` matches that name; ``*.example`` matches its subdomains at any depth
(``a.example``, ``a.b.example``, as ``allowed_hosts`` and a ``cookie_domain`` always have),
never ``example`` itself nor ``a.example.evil``. A pattern with a port matches that port only
(the scheme's default when the request names none); without one, any port.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from saml_gate.errors import GateError

_HOST_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SERVED_KEPT: Final = 1024


def is_number(text: str) -> bool:
    """Whether ``text`` is a number in ASCII digits: ``str.isdigit`` also says yes to ``²``
    (which ``int`` refuses) and ``٣`` (which ``int`` reads as 3)."""
    return text.isascii() and text.isdigit()


def parse_host(text: str) -> tuple[str, int | None] | None:
    """``host[:port]`` as (lower-case host, port), or None unless it is plainly a DNS name, an
    IPv4 address or a bracketed IPv6 address with an optional port in ASCII digits (nothing
    else: no user, no path, no backslash, no percent-encoding, nothing but ASCII)."""
    if not text.isascii():  # lower() would make ASCII of some ("\u212a" is "k")
        return None
    host, port = text.lower(), None
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:end])
        except ValueError:
            return None
        host = host[: end + 1]
    else:
        host, sep, rest = host.partition(":")
        rest = sep + rest
        labels = host.split(".")
        if not host or len(host) > 253 or not all(_HOST_LABEL.fullmatch(x) for x in labels):
            return None
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not is_number(digits) or not 0 < int(digits) < 65536:
            return None
        port = int(digits)
    return host, port


def host_problem(pattern: str) -> str | None:
    """What is wrong with a host pattern (None: nothing), with the fix where there is one."""
    if parse_host(pattern.removeprefix("*.")) is not None:
        return None
    name = pattern.removeprefix("*.").rstrip(".")
    if pattern.endswith(".") and parse_host(name) is not None:
        return f"{pattern!r}: write it without the trailing dot ({name!r})"
    if not pattern.isascii():
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{pattern!r} is not a host name"
        star = "*." if pattern.startswith("*.") else ""
        return f"{pattern!r}: write an internationalised name in ASCII ({star}{ascii_name})"
    return f"{pattern!r} must be a host such as app.example.com[:port] or *.example.com"


class HostPattern(NamedTuple):
    """A host pattern read (see the module docstring): ``name`` without ``*.``; ``port``
    None for any."""

    name: str
    port: int | None
    wildcard: bool

    @classmethod
    def of(cls, pattern: str) -> HostPattern | None:
        parsed = parse_host(pattern.removeprefix("*."))
        if parsed is None:
            return None
        return cls(parsed[0], parsed[1], pattern.startswith("*."))

    def matches(self, name: str, port: int | None) -> bool:
        """Whether ``name`` (lower case) on ``port`` is one this pattern names."""
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return name.endswith(self.name) and name[-len(self.name) - 1 : -len(self.name)] == "."
        return name == self.name

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return ("*." if self.wildcard else "") + self.name + port


class AppHost(NamedTuple):
    """The host a request is for, as the app (or upstream) serves it: ``name`` in lower case,
    ``port`` (the scheme's default when none was named), and its ``origin``."""

    name: str
    port: int
    origin: str


@functools.lru_cache(maxsize=1024)  # a deployment's few hosts, read on every request
def app_host(text: str, scheme: str) -> AppHost | None:
    """``text`` (a ``Host`` value, or an original URL's authority) as an :class:`AppHost`, or
    None when it is no host (see the module docstring)."""
    parsed = parse_host(text)
    if parsed is None:
        return None
    name, port = parsed
    default = DEFAULT_PORTS.get(scheme, 443)
    if port is None:
        port = default
    origin = f"{scheme}://{name}" + ("" if port == default else f":{port}")
    return AppHost(name, port, origin)


class KnownHosts:
    """The hosts the gate serves: ``base_url``'s (on any port) and ``allowed_hosts``; any
    other is refused before any rule (``unknown_host``), so that no request reaches an app
    under a name its rules do not expect. Each access policy owns one
    (:attr:`~saml_gate.policy.access.AccessPolicy.hosts`): every check of a host against
    ``allowed_hosts`` (a request's, a ``return_to``'s, a sign-out's ``Origin``) asks the policy
    in force, so a reloaded ``allowed_hosts`` reaches them all at once."""

    def __init__(self, allowed_hosts: Iterable[str], base_url: str) -> None:
        allowed = tuple(p for p in map(HostPattern.of, allowed_hosts) if p is not None)
        base = urlsplit(base_url)
        parsed = parse_host(base.netloc) if base.netloc else None
        self.base: AppHost | None = app_host(base.netloc, base.scheme) if parsed else None
        self.allowed: tuple[HostPattern, ...] = allowed
        """``allowed_hosts`` alone (without ``base_url``'s host)."""
        self.patterns: tuple[HostPattern, ...] = allowed
        """``allowed_hosts`` and ``base_url``'s host (on any port)."""
        if parsed is not None:
            self.patterns += (HostPattern(parsed[0], None, wildcard=False),)
        self.scheme = base.scheme or "https"
        self._served: dict[tuple[str, str | None], AppHost] = {}  # the hot path: one lookup

    def allows(self, name: str, port: int | None) -> bool:
        """Whether ``name`` on ``port`` is ``base_url``'s host (any port) or in
        ``allowed_hosts``."""
        return any(pattern.matches(name, port) for pattern in self.patterns)

    def in_allowed_hosts(self, name: str, port: int | None) -> bool:
        """Whether ``name`` on ``port`` is in ``allowed_hosts`` (``base_url``'s host on
        another port is not: the origins of the apps a sign-out may come from)."""
        return any(pattern.matches(name, port) for pattern in self.allowed)

    def of_request(self, text: str | None, scheme: str | None = None) -> AppHost:
        """The :class:`AppHost` of a request's host; raises ``GateError`` ``bad_host`` (none,
        or not plainly a host) or ``unknown_host`` (one the gate does not serve)."""
        served = self._served.get((text or "", scheme))
        if served is not None:
            return served
        if text is None:
            raise GateError("bad_host", "the request names no host (no Host header)")
        host = app_host(text, scheme or self.scheme)
        if host is None:
            raise GateError("bad_host", f"the host {text[:80]!r} is not plainly a host name")
        if not self.allows(host.name, host.port):
            raise GateError(
                "unknown_host",
                f"{host.name}:{host.port} is neither base_url's host nor in allowed_hosts",
                hint_values={"host": host.origin.partition("://")[2]},
            )
        if len(self._served) < _SERVED_KEPT:  # a deployment's few hosts (and their spellings)
            self._served[text, scheme] = host
        return host

    def is_base(self, host: AppHost) -> bool:
        """Whether ``host`` is base_url's own (name and port)."""
        base = self.base
        return base is not None and host.name == base.name and host.port == base.port
