"""IP addresses as HTTP headers and SAML messages write them, and who the client is.

One parser for the client's address and a bearer confirmation's ``Address``
(:mod:`saml_gate.saml.response`), so that both read alike; the networks of ``trusted_proxies``;
and two questions about a request's client, answered strictly:

* :meth:`ClientAddresses.client` — the address the gate *trusts* as the client's (logs, the
  proxy's ``X-Forwarded-For``, ``check_subject_address``). Forwarding headers count only when
  the peer is one of ``trusted_proxies``; ``X-Forwarded-For`` (every line, in order) is read from
  the right, skipping trusted proxies, as uvicorn and Werkzeug's ProxyFix do; without it, the
  ``for=`` values of ``Forwarded`` (RFC 7239).
* :meth:`ClientAddresses.is_local` — whether the request comes from this machine and from no one
  else: the peer is loopback **and** no header that any proxy uses to report a client
  (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``, ``True-Client-IP``, …, every line of each)
  names anything but loopback. This is what unlocks error details, ``/saml/status``, metrics and
  the development IdP, so it does not depend on ``trusted_proxies``: a same-host proxy that
  reports the client in any of these headers makes the request non-local.

A leaf of the package (it imports only :mod:`saml_gate.errors`): the web layer, the proxy and the
development IdP all ask it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

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


#: Headers through which some proxy reports the client's address (lower-case, as in ASGI).
CLIENT_HEADERS: Final = frozenset(
    {
        b"x-forwarded-for",
        b"forwarded",
        b"x-real-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"fastly-client-ip",
        b"x-original-forwarded-for",
        b"x-proxyuser-ip",
    }
)
_FORWARDED_FOR: Final = re.compile(r'(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def is_loopback_address(text: str) -> bool:
    address = parse_address(text)
    return address is not None and address.is_loopback


def _values(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated item of every ``name`` header line, in order."""
    items: list[str] = []
    for key, value in headers:
        if key == name:
            items += value.decode("latin-1").split(",")
    return [item.strip() for item in items]


def _forwarded_for(headers: Sequence[tuple[bytes, bytes]]) -> list[str]:
    found: list[str] = []
    for key, value in headers:
        if key == b"forwarded":
            for element in value.decode("latin-1").split(","):
                match = _FORWARDED_FOR.search(element)
                found.append(match.group(1).strip('"') if match else "")
    return found


_MAX_VERDICTS: Final = 4096


class ClientAddresses:
    """Resolves client addresses for one gate (``trusted_proxies`` parsed once)."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = parse_networks(trusted_proxies)
        self._verdicts: dict[str, bool] = {}
        """Hosts already decided (parsing an address costs more than the rest of a request's
        check); emptied when it holds _MAX_VERDICTS."""

    def trusts(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            address = parse_address(host)
            verdict = address is not None and any(address in net for net in self._trusted)
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    def client(self, peer: str, headers: Sequence[tuple[bytes, bytes]]) -> str:
        """The client address as far as trusted proxies vouch for it ("" when unknown)."""
        if not self.trusts(peer):
            return peer
        chain = _values(headers, b"x-forwarded-for")
        if not any(chain):
            chain = _forwarded_for(headers)
        for hop in reversed(chain):
            if not hop:
                return peer  # an empty or garbled hop: believe no further than the peer
            if not self.trusts(hop):
                return hop
        return chain[0] if chain else peer

    @staticmethod
    def is_local(peer: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """A loopback peer, and no proxy header names a client that is not loopback."""
        if not is_loopback_address(peer or "127.0.0.1"):
            return False
        for key, _ in headers:
            if key in CLIENT_HEADERS:
                reported = _forwarded_for(headers) if key == b"forwarded" else _values(headers, key)
                if not all(is_loopback_address(h) for h in reported):
                    return False
        return True


def peer_of(scope: Mapping[str, Any]) -> str:
    """The address of whoever opened the connection (a proxy, or the client itself), or ""."""
    client = scope.get("client")
    return str(client[0]) if client else ""
