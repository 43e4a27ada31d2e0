"""One-click sign-out from an app: a POST to the gate's ``/logout`` that the browser says comes
from the site itself, and the form an app renders to send it.

A sign-out must not be something another site can trigger (a cross-site POST that signs people
out). The gate's own confirmation form carries a session-bound token for that; an app's "Sign
out" button (its own page, Django admin's "Log out") cannot know the token, so the browser's word
stands in for it: the ``Origin`` header of the POST is this gate's origin (``base_url``'s) or
that of a host in ``allowed_hosts``, or, where the browser sends no usable ``Origin`` (a
``Referrer-Policy: no-referrer`` page sends ``null``), ``Sec-Fetch-Site`` is ``same-origin``.
Browsers set both headers themselves and a page cannot forge them. Without either, the gate
shows its confirmation form instead of signing out. The hosts are those of the access policy in
force (:meth:`~saml_gate.policy.live.LivePolicy.known_hosts`), so a reloaded ``allowed_hosts``
applies to the next POST.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from saml_gate.config.settings import GateSettings
from saml_gate.policy.hosts import KnownHosts

DEFAULT_PREFIX: Final = "/saml"


class SignOutOrigins:
    """Decides whether a POST to ``/logout`` comes from a page of this site (or of an app on
    one of ``allowed_hosts``). ``hosts``: the hosts in force, asked at each POST."""

    def __init__(self, settings: GateSettings, hosts: Callable[[], KnownHosts]) -> None:
        base = urlsplit(settings.base_url)
        self._scheme = base.scheme
        self._origin = f"{base.scheme}://{base.netloc}".lower()
        self._hosts = hosts

    def posted_from_site(self, headers: Mapping[str, str]) -> bool:
        origin = headers.get("origin", "").strip().lower()
        if origin and origin != "null":
            return self._allowed_origin(origin)
        return headers.get("sec-fetch-site") == "same-origin"

    def _allowed_origin(self, origin: str) -> bool:
        if origin == self._origin:
            return True
        parts = urlsplit(origin)
        if parts.scheme != self._scheme or parts.path or parts.query or not parts.hostname:
            return False
        try:
            port = parts.port
        except ValueError:
            return False
        # allowed_hosts only: base_url's host on another port is another origin, not this site
        return self._hosts().in_allowed_hosts(parts.hostname, port)


def sign_out_form(
    request: HTTPConnection, label: str = "Sign out", *, prefix: str = DEFAULT_PREFIX
) -> str:
    """The HTML of a one-click "Sign out" button for an app behind the gate (Starlette, FastAPI):
    a form that POSTs to the gate's ``/logout`` under the app's root path. Put it in a page as it
    is (it is escaped); style it with the ``saml-gate-sign-out`` class. ``prefix``: the gate's
    ``prefix`` setting when it is not ``/saml``."""
    action = request.scope.get("root_path", "") + prefix + "/logout"
    return (
        f"<form method=post action='{html.escape(action)}' class=saml-gate-sign-out>"
        f"<button type=submit>{html.escape(label)}</button></form>"
    )
