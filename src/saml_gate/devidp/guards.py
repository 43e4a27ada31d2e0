"""Who may use the development IdP: loopback clients, addressing it by a loopback name, and
form posts from its own pages only. It signs in anyone as anyone, so these keep it local.

What they cannot see: a proxy on the same machine that connects from loopback, rewrites Host
to a loopback name and reports nothing about the client (nginx's bare ``proxy_pass
http://127.0.0.1:8000``) makes a remote request look local. The start-up warning says so."""

from __future__ import annotations

import re
from typing import Final
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


#: Headers naming the host the client asked for: its own, and the ones proxies report it in.
_HOST_HEADERS: Final = frozenset(
    {b"host", b"x-forwarded-host", b"x-original-host", b"x-host", b"x-http-host-override"}
)
_FORWARDED_HOST: Final = re.compile(r'(?:^|[;,])\s*host\s*=\s*"?([^;,"]*)', re.IGNORECASE)


def check_loopback(request: Request, public_url: str) -> None:
    """403 unless the peer, any proxy-reported client and every host the request names (its
    ``Host``, which it must have, and any ``X-Forwarded-Host``, ``Forwarded: host=``, ...) are
    all loopback.

    The peer alone is not enough: a tunnel such as ngrok connects from 127.0.0.1, but it
    reports the real client in X-Forwarded-For and the public name in Host.
    """
    if not ClientAddresses.is_local(peer_of(request.scope), request.scope["headers"]):
        raise Problem(403, "Forbidden", "The development IdP only answers loopback clients.")
    named: list[tuple[bytes, str]] = []
    for key, value in request.scope["headers"]:
        name, text = key.lower().replace(b"_", b"-"), value.decode("latin-1")
        if name in _HOST_HEADERS:
            named += [(name, item) for item in text.split(",")]
        elif name == b"forwarded":
            named += [(name, item) for item in _FORWARDED_HOST.findall(text)]
    if not any(name == b"host" for name, _ in named):
        named.append((b"host", ""))
    for name, value in named:
        host = hostname("//" + value.strip())
        if not is_loopback_host(host):
            raise Problem(
                403,
                "Forbidden",
                f"The development IdP only answers requests addressed to a loopback "
                f"host, not {short(host or value, 100)!r} ({name.decode()}). Browse to it at"
                f" {public_url}.",
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
