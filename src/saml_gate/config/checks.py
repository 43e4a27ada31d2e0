"""Checks of one setting's value beyond range, choices and emptiness, each declared with its
setting: a check returns the problem (the text after the setting's name), or None."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

from saml_gate.ip_addresses import parse_networks
from saml_gate.policy.hosts import host_problem
from saml_gate.saml import xmlconst as X

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


def is_url(value: str) -> bool:
    """Whether a source setting (idp_metadata) is an http(s) URL rather than XML or a path."""
    return value.strip().lower().startswith(("https://", "http://"))


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


@lru_cache(maxsize=64)
def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is loopback (cached: asked about base_url on every sign-in)."""
    return is_loopback_host(urlsplit(url).hostname or "")


def metadata_source(value: str) -> str | None:
    """A plain http metadata URL lets anyone on the way swap the IdP's keys (loopback aside)."""
    url = urlsplit(value.strip())
    if url.scheme.lower() == "http" and not is_loopback_host(url.hostname or ""):
        return (
            "a plain http metadata URL lets anyone on the way swap the IdP's signing keys: use"
            " its https URL (Okta serves https)"
        )
    return None


def endpoint_prefix(value: str) -> str | None:
    if not value.startswith("/") or value.endswith("/") or len(value) < 2:
        return f"{value!r} must look like /saml (leading slash, no trailing)"
    return None


def cookie_name_part(value: str) -> str | None:
    if not value.replace("_", "").replace("-", "").isalnum():
        return "use letters, digits, '-' and '_' only"
    return None


def positive(value: float) -> str | None:
    return None if value > 0 else "must be a positive number of seconds"


def absolute_paths(value: tuple[str, ...]) -> str | None:
    for path in value:
        if not path.startswith("/"):
            return f"{path!r} must start with '/'"
    return None


def signature_algorithms(value: tuple[str, ...]) -> str | None:
    for alg in value:
        if alg not in SECURE_SIGNATURE_ALGORITHMS:
            hint = " (SHA-1: set allow_sha1=True instead)" if "sha1" in alg else ""
            return f"{alg!r} is not supported{hint}"
    return None


def networks(value: tuple[str, ...]) -> str | None:
    parse_networks(value)  # raises ConfigError naming trusted_proxies
    return None


def store_location(value: str) -> str | None:
    if value == "memory":
        return None
    from saml_gate.store.redis_url import parse  # pure parsing: no I/O, no redis-py

    try:
        parse(value)
    except ValueError as exc:
        return f"use memory or a Redis URL (redis://host:6379/0, see Operating): {exc}"
    return None


def key_prefix(value: str) -> str | None:
    if not value or any(c.isspace() for c in value):
        return "must be non-empty, without spaces"
    return None


def url_path(value: str) -> str | None:
    if not value.startswith("/") or value.rstrip("/") == "":
        return f"{value!r} must be a path such as /metrics"
    return None


_HEADER_NAME: Final = re.compile(r"[A-Za-z0-9-]+")


def host_patterns(value: tuple[str, ...]) -> str | None:
    for pattern in value:
        problem = host_problem(pattern)
        if problem is not None:
            return problem
    return None


def header_name(value: str) -> str | None:
    if value and not _HEADER_NAME.fullmatch(value):
        return f"{value!r} is not a header name (letters, digits, '-')"
    return None
