"""Reading request cookies and writing Set-Cookie headers, without per-request allocations.

One cookie by name: :func:`find_cookie`, or :func:`only_cookie` when two of that name must not
be told apart (the session cookie on every gated request, so they build nothing). Every cookie
at once: :func:`all_cookies`, for the readers that look at several (the pending sign-in slots,
the pending logout and its Lax twin). What an upstream may see of a Cookie header:
:func:`without_cookies` (proxy mode, and the forward-auth answer). :func:`expiring_everywhere`
deletes a cookie under every domain and path it may have come from.
"""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import _unquote
from typing import Final

from saml_gate.config.settings import GateSettings
from saml_gate.policy.hosts import parse_host


def cookie_header_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """All Cookie headers of a request joined (HTTP/2 may split them), or None."""
    joined = None
    for key, value in headers:
        if key == b"cookie":
            text = value.decode("latin-1")
            joined = text if joined is None else joined + "; " + text
    return joined


def without_cookies(header: bytes, prefix: str) -> bytes:
    """A Cookie header's value without the cookies whose names start with ``prefix`` (the
    gate's own, ``{cookie_prefix}_``: never for an upstream to see, so never to replay), every
    other pair kept byte for byte; empty when nothing else is left."""
    marker = prefix.encode("latin-1")
    if marker not in header:
        return header.strip()
    kept = [pair for pair in header.split(b";") if not _named(pair, marker, prefix)]
    return b";".join(kept).strip()


def _named(pair: bytes, marker: bytes, prefix: str) -> bool:
    """Whether a cookie pair's name starts with ``prefix``, around any whitespace a cookie
    parser strips (Python's, Starlette's: Unicode whitespace, NBSP included)."""
    return pair.lstrip().startswith(marker) or (
        marker in pair and pair.decode("latin-1").strip().startswith(prefix)
    )


def all_cookies(header: str) -> dict[str, str]:
    """RFC 6265 cookie pairs (last one wins), like Starlette's parser."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key:
            cookies[key] = _unquote(value.strip())
    return cookies


class AmbiguousCookie(ValueError):
    """A Cookie header names the same cookie more than once."""


def find_cookie(header: str, name: str) -> str | None:
    """One cookie's value (the first of that name), scanning the header without building a
    dict (hot path)."""
    found = _find(header, name + "=", 0)
    return found[0] if found is not None else None


def only_cookie(header: str, name: str) -> str | None:
    """Like :func:`find_cookie`, but raises :class:`AmbiguousCookie` when the header names the
    cookie twice with different values. A browser sends every cookie whose domain and path
    match, longest path first: a sibling subdomain can plant one on ``Path=/admin`` that comes
    before the gate's own, and which of the two a reader takes differs from reader to reader.
    The same value twice is no question."""
    needle = name + "="
    index = header.find(needle)
    if index < 0:
        return None
    if (index == 0 or header[index - 1] in "; ") and header.find(needle, index + 1) < 0:
        end = header.find(";", index)  # the hot path: named once, at a cookie's start
        return header[index + len(needle) : end if end >= 0 else len(header)].strip()
    found = _find(header, needle, index)
    if found is None:
        return None
    value, end = found
    while end >= 0 and (again := _find(header, needle, end)) is not None:
        if again[0] != value:
            raise AmbiguousCookie(name)
        end = again[1]
    return value


def _find(header: str, needle: str, start: int) -> tuple[str, int] | None:
    """(value, index of the ``;`` after it or -1) of the first ``name=`` at a cookie's start."""
    while True:
        index = header.find(needle, start)
        if index < 0:
            return None
        if index == 0 or header[index - 1] in "; ":
            end = header.find(";", index)
            return header[index + len(needle) : end if end >= 0 else len(header)].strip(), end
        start = index + 1


#: Path prefixes a cookie deletion covers at most (the shallowest: where cookies are planted).
MAX_PATHS: Final = 32


def expiring_everywhere(
    settings: GateSettings, name: str, hosts: Iterable[str], path: str
) -> list[bytes]:
    """Set-Cookie values deleting ``name`` under every domain and path a browser may send it
    with to ``path`` on one of ``hosts`` (RFC 6265 §5.1.3, §5.1.4): host-only, and with each
    parent domain of the hosts (and ``cookie_domain``) as Domain; with each path that
    path-matches ``path`` (``/``, ``/a``, ``/a/``, ``/a/b``...) as Path."""
    domains = dict.fromkeys(["", settings.cookie_domain or ""])
    for host in hosts:
        name_and_port = parse_host(host) if host else None
        if name_and_port is None or name_and_port[0].startswith("["):
            continue
        labels = name_and_port[0].rstrip(".").split(".")
        if not all(label.isdigit() for label in labels):  # an IPv4 address has no parents
            domains.update(dict.fromkeys(".".join(labels[i:]) for i in range(1, len(labels) - 1)))
    paths = ["/"]
    for index, char in enumerate(path):
        if len(paths) >= MAX_PATHS:
            break
        if char == "/" and index:
            paths += [path[:index], path[: index + 1]]
    if path not in paths and len(paths) < MAX_PATHS:
        paths.append(path)
    return [
        cookie_header(settings, name, "", max_age=0, path=p, domain=d)
        for d in domains
        for p in dict.fromkeys(paths)
    ]


def cookie_header(
    settings: GateSettings,
    name: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "/",
    cross_site: bool = False,
    domain: str | None = None,
) -> bytes:
    """A Set-Cookie value. ``cross_site`` cookies must survive the IdP's cross-site POST.
    ``domain``: the Domain attribute ("" for none), else ``cookie_domain``'s."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly"]
    if max_age is not None:
        parts.append(f"Max-Age={max(max_age, 0)}")
    secure = settings.secure_cookies
    if cross_site and not secure and settings.base_is_loopback:
        # SameSite=None needs Secure. Browsers treat http://localhost and 127.0.0.1 as secure
        # origins (Chromium and Firefox store such cookies), so local development with an IdP
        # on another site works; RelayTracker adds a Lax twin for browsers that do not.
        secure = True
    if cross_site and secure:
        parts.append("SameSite=None")
    elif cross_site:
        # SameSite=None needs Secure: on plain http to a public host, Lax is all there is, which
        # only works when the IdP is on the same site.
        parts.append("SameSite=Lax")
    else:
        parts.append("SameSite=" + settings.cookie_samesite.capitalize())
    if secure:
        parts.append("Secure")
    domain = settings.cookie_domain if domain is None else domain
    if domain:
        parts.append(f"Domain={domain}")
    return "; ".join(parts).encode("latin-1")


#: Suffix of the SameSite=Lax twin of a cross-site cookie on http loopback (see below).
LAX_TWIN = ".lax"


def cross_site_cookies(
    settings: GateSettings, name: str, value: str, *, max_age: int, path: str
) -> list[bytes]:
    """Set-Cookie values for a cookie that must come back with the IdP's cross-site POST.

    On http loopback the cookie is SameSite=None;Secure (Chromium and Firefox treat loopback as
    secure), plus a Lax twin for clients that refuse Secure cookies on http; read both back
    (:class:`saml_gate.session.signing.ExpiringCookie` does).
    """
    headers = [cookie_header(settings, name, value, max_age=max_age, path=path, cross_site=True)]
    if not settings.secure_cookies and settings.base_is_loopback:
        headers.append(cookie_header(settings, name + LAX_TWIN, value, max_age=max_age, path=path))
    return headers
