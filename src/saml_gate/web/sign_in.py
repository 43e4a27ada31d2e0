"""Asking for a sign-in, the same way in every mode (and in ``contrib.fastapi``): the login URL
that comes back to a page, whether a request is a page load (a browser is sent to sign in) or
not (it gets 401 JSON carrying that URL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from starlette.responses import Response

from saml_gate.errors import GateError
from saml_gate.web.pages import error_response
from saml_gate.web.responses import with_cookies


def login_url_for(login_url: str, return_to: str) -> str:
    """The gate's login URL that comes back to ``return_to`` after signing in."""
    return login_url + "?" + urlencode({"return_to": return_to})


def wants_json(headers: Mapping[str, str]) -> bool:
    """Whether the client reads JSON rather than a page: it says so (``Accept`` with JSON and
    without HTML, ``X-Requested-With``), or its browser says it is no navigation
    (``Sec-Fetch-Mode``). ``headers``: lower-case names, or a case-insensitive mapping."""
    accept = headers.get("accept", "")
    if headers.get("x-requested-with") or ("json" in accept and "text/html" not in accept):
        return True
    return headers.get("sec-fetch-mode", "navigate") not in ("navigate", "nested-navigate")


def is_page_load(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request loads a page, so a sign-in may redirect it: a GET or HEAD from a client
    that does not ask for JSON (:func:`wants_json`) and is no WebSocket handshake (which a proxy
    describing it to forward-auth may pass without its ``Upgrade``). A client that says nothing
    (curl, an old browser) counts as loading a page."""
    return (
        (method == "GET" or method == "HEAD")
        and "sec-websocket-key" not in headers
        and not wants_json(headers)
    )


def sign_in_needed(
    login_url: str, return_to: str, error: GateError | None, cookies: Iterable[bytes] = ()
) -> Response:
    """The 401 (JSON, with the ``login_url`` to open) for a request that needs a sign-in."""
    response = error_response(
        error or GateError("not_authenticated"),
        wants_json=True,
        show_detail=False,
        extra={"login_url": login_url_for(login_url, return_to)},
        headers={"WWW-Authenticate": 'SAML realm="saml-gate"'},
    )
    return with_cookies(response, cookies)
