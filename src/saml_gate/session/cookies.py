"""Reading request cookies and writing Set-Cookie headers, without per-request allocations.

One cookie by name: :func:`find_cookie` (the session cookie on every gated request, so it builds
nothing). Every cookie at once: :func:`all_cookies`, for the readers that look at several (the
pending sign-in slots, the pending logout and its Lax twin). What an upstream may see of a
Cookie header: :func:`without_cookies` (proxy mode, and the forward-auth answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import _unquote

from saml_gate.config.settings import GateSettings


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


def find_cookie(header: str, name: str) -> str | None:
    """One cookie's value, scanning the header without building a dict (hot path)."""
    start = 0
    needle = name + "="
    while True:
        index = header.find(needle, start)
        if index < 0:
            return None
        if index == 0 or header[index - 1] in "; ":
            end = header.find(";", index)
            return header[index + len(needle) : end if end >= 0 else len(header)].strip()
        start = index + 1


def cookie_header(
    settings: GateSettings,
    name: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "/",
    cross_site: bool = False,
) -> bytes:
    """A Set-Cookie value. ``cross_site`` cookies must survive the IdP's cross-site POST."""
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
    if settings.cookie_domain:
        parts.append(f"Domain={settings.cookie_domain}")
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
