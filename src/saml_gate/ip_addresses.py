"""IP addresses as HTTP headers and SAML messages write them.

One parser for the client's address (:mod:`saml_gate.web.forwarded`) and a bearer
confirmation's ``Address`` (:mod:`saml_gate.saml.response`), so that both read alike, and the
networks of ``trusted_proxies``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from saml_gate.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from the forms headers use (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``,
    ``::1``, IPv4-mapped IPv6 read as IPv4), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(
    entries: Iterable[str], setting: str = "trusted_proxies"
) -> tuple[IPNetwork, ...]:
    """Networks from ``1.2.3.4``, ``10.0.0.0/8``, ``::1``; ``*`` means every address."""
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if text == "*":
            networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                setting, f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8, ::1, *)"
            ) from None
    return tuple(networks)
