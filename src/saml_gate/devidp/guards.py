"""Who may use the development IdP: loopback clients, addressing it by a loopback name, and
form posts from its own pages only. It signs in anyone as anyone, so these keep it local."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from saml_gate.config.settings import is_loopback_host
from saml_gate.devidp.problems import Problem, short
from saml_gate.ip_addresses import ClientAddresses, peer_of


def hostname(url: str) -> str:
    """The URL's host name, or "" when it has none or is malformed (e.g. "[::1")."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


def check_loopback(request: Request, public_url: str) -> None:
    """403 unless the peer, any proxy-reported client and the Host are all loopback.

    The peer alone is not enough: a tunnel such as ngrok connects from 127.0.0.1, but it
    reports the real client in X-Forwarded-For and the public name in Host.
    """
    if not ClientAddresses.is_local(peer_of(request.scope), request.scope["headers"]):
        raise Problem(403, "Forbidden", "The development IdP only answers loopback clients.")
    headers = request.headers
    for name in ("host", "x-forwarded-host"):
        for value in headers.getlist(name):
            host = hostname("//" + value.split(",", 1)[0])
            if value and not is_loopback_host(host):
                raise Problem(
                    403,
                    "Forbidden",
                    f"The development IdP only answers requests addressed to a loopback "
                    f"host, not {short(host, 100)!r}. Browse to it at {public_url}.",
                )


def check_origin(request: Request) -> None:
    """Refuse cross-site form posts (login CSRF): a POST's Origin, if any, is loopback."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = hostname(origin)  # "" for the opaque origin "null"
    if not host or not is_loopback_host(host):
        raise Problem(
            403, "Forbidden", "This form can only be posted from the development IdP's pages."
        )
