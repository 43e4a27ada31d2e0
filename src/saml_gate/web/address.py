"""A sign-in started at another address than ``base_url`` (``localhost`` for ``127.0.0.1``, the
wrong port): the IdP would send the browser back to base_url, where its pending sign-in cookie is
unknown. So the sign-in is not started there: a page load is sent to the same path on base_url
(only ever base_url itself), or, where base_url names another port of a loopback host (which then
serves nothing, most likely), shown the ``base_url_mismatch`` page.

A proxy that rewrites ``Host`` (nginx's default ``proxy_pass``) makes every request look foreign
although the browser is on base_url; a redirect to base_url then comes straight back. A short-lived
cookie set with the redirect tells: with it, the sign-in starts as before (and is logged).

A page load at a host the gate does not serve at all (``unknown_host``: ``localhost`` for a
base_url on ``127.0.0.1``) is sent to the same path on base_url the same way, once; with the
guard cookie (a proxy that rewrites ``Host`` to a name the gate does not serve) it gets the
``unknown_host`` page, whose hint says to pass the browser's ``Host``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ip_addresses import is_loopback_address
from saml_gate.web.request import RequestView, names_base_url
from saml_gate.web.responses import see_other

_GUARD_SECONDS = 120
_LOOPBACK_NAMES = ("localhost",)


def guard_cookie_name(settings: GateSettings) -> str:
    return settings.cookie_prefix + "_readdressed"


def guard_cookie(settings: GateSettings) -> bytes:
    """Set on the foreign host with the redirect: it only says "sent to base_url once"."""
    return (
        f"{guard_cookie_name(settings)}=1; Path=/; Max-Age={_GUARD_SECONDS}; HttpOnly; SameSite=Lax"
    ).encode("latin-1")


def wrong_address(view: RequestView, settings: GateSettings) -> str | GateError | None:
    """None: start the sign-in here. A URL on base_url: redirect there. A ``base_url_mismatch``
    error: show it (base_url names a port nothing here answers at)."""
    seen = view.public_host
    if names_base_url(settings, seen) or guard_cookie_name(settings) in view.cookies:
        return None
    base = urlsplit(settings.base_url)
    here = urlsplit("//" + seen)
    try:
        seen_port = here.port or (443 if view.scheme == "https" else 80)
    except ValueError:  # a Host header with a bad port: nothing to learn from it
        return None
    base_port = base.port or (443 if base.scheme == "https" else 80)
    if seen_port != base_port and _is_loopback_name(base.hostname or ""):
        return GateError(
            "base_url_mismatch",
            f"this page was opened at {seen!r} but base_url is {settings.base_url!r}, another"
            " port: the IdP would send the browser there",
        )
    return on_base_url(view, settings)


def away_from_unknown_host(view: RequestView, settings: GateSettings) -> Response | None:
    """The redirect to base_url for a page load at a host the gate does not serve, or None
    (anything else, or sent there once already: the ``unknown_host`` refusal then)."""
    if not view.is_navigation or guard_cookie_name(settings) in view.cookies:
        return None
    return see_other(on_base_url(view, settings), [guard_cookie(settings)])


def on_base_url(view: RequestView, settings: GateSettings) -> str:
    """This request's page on base_url (which includes the path the app is mounted at)."""
    here, root = view.path_and_query, view.scope.get("root_path", "")
    if root and here.startswith(root) and here[len(root) : len(root) + 1] in ("", "/", "?"):
        here = here[len(root) :]
    return settings.base_url + here


def _is_loopback_name(host: str) -> bool:
    return host in _LOOPBACK_NAMES or is_loopback_address(host)
