"""What the gate reads from a request: the lazy request view, where the gate's prefix begins,
the method check, posted forms."""

from __future__ import annotations

import re
import uuid
from functools import cached_property
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from starlette.types import Receive, Scope

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ip_addresses import ClientAddresses, peer_of
from saml_gate.policy.hosts import is_number
from saml_gate.policy.request_line import route_path
from saml_gate.session.cookies import all_cookies, cookie_header_of
from saml_gate.web.forms import parse_form
from saml_gate.web.sign_in import is_page_load, wants_json

FORM_TYPE: Final = "application/x-www-form-urlencoded"
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestView:
    """Just what the gate needs to know about a request, read lazily from the scope."""

    def __init__(self, scope: Scope, addresses: ClientAddresses) -> None:
        self.scope = scope
        self._addresses = addresses

    @cached_property
    def headers(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope["headers"]}

    @cached_property
    def cookie_header(self) -> str | None:
        return cookie_header_of(self.scope["headers"])

    @property
    def cookies(self) -> dict[str, str]:
        """Every cookie of the request (for readers of several, such as the pending sign-ins)."""
        return all_cookies(self.cookie_header or "")

    @property
    def method(self) -> str:
        return str(self.scope.get("method", "GET"))

    @cached_property
    def peer(self) -> str:
        """The address of whoever opened the connection (a proxy, or the client itself)."""
        return peer_of(self.scope)

    @cached_property
    def client_host(self) -> str:
        """The client's address, as far as ``trusted_proxies`` vouch for it."""
        return self._addresses.client(self.peer, self.scope["headers"])

    @cached_property
    def is_local(self) -> bool:
        """A loopback client not behind any proxy (ngrok's agent connects from loopback too)."""
        return self._addresses.is_local(self.peer, self.scope["headers"])

    @cached_property
    def wants_json(self) -> bool:
        """JSON rather than a page (:func:`~saml_gate.web.sign_in.wants_json`)."""
        return wants_json(self.headers)

    @cached_property
    def request_id(self) -> str:
        """The proxy's X-Request-ID when it looks sane, else a new one (ties log lines together)."""
        given = self.headers.get("x-request-id", "")
        return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]

    def event_fields(self) -> dict[str, Any]:
        return {
            "client": self.client_host,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.scope["path"],
        }

    @cached_property
    def public_host(self) -> str:
        """The host the browser used, as far as the request tells (for diagnostics only)."""
        forwarded = self.headers.get("x-forwarded-host")
        host = forwarded.split(",")[0] if forwarded else self.headers.get("host", "")
        return host.strip().lower()

    @property
    def scheme(self) -> str:
        """The scheme the browser used, as far as the request tells (like ``public_host``)."""
        forwarded = self.headers.get("x-forwarded-proto")
        scheme = forwarded.split(",")[0] if forwarded else str(self.scope.get("scheme", "http"))
        return scheme.strip().lower()

    @property
    def is_navigation(self) -> bool:
        """A page load (:func:`~saml_gate.web.sign_in.is_page_load`)."""
        return is_page_load(self.method, self.headers)

    @property
    def raw_path(self) -> str:
        """The path as the browser sent it (percent-encoded, with any root path)."""
        raw = self.scope.get("raw_path")
        return raw.decode("latin-1") if raw else quote(self.scope["path"])

    @property
    def path_and_query(self) -> str:
        query = self.scope.get("query_string", b"")
        return self.raw_path + ("?" + query.decode("latin-1") if query else "")

    @property
    def query_string(self) -> str:
        return str(self.scope.get("query_string", b"").decode("latin-1"))

    def query(self, name: str) -> str | None:
        values = parse_qs(self.query_string).get(name)
        return values[0] if values else None

    def app_path(self, return_path: str) -> str:
        """The path the app routes for a return path (which the browser sees whole)."""
        return route_path(unquote(urlsplit(return_path).path), self.scope.get("root_path", ""))

    def gate_path(self, prefix: str) -> str:
        """The path under the gate's prefix (``/acs``), or the routed path outside it."""
        path = route_path(self.scope["path"], self.scope.get("root_path", ""))
        sub = gate_subpath(path, prefix)
        return path if sub is None else sub


def gate_subpath(path: str, prefix: str) -> str | None:
    """``/acs`` for ``/saml/acs`` (``/`` for the prefix itself); None outside the prefix (also
    for ``/samlx``). ``path``: the path the app routes (without ``root_path``)."""
    if not path.startswith(prefix):
        return None
    size = len(prefix)
    if len(path) == size:
        return "/"
    return path[size:] if path[size] == "/" else None


def names_base_url(settings: GateSettings, host: str) -> bool:
    """Whether ``host`` (from Host / X-Forwarded-Host) names base_url, default ports aside."""
    if not host:
        return True
    default = ":443" if settings.is_https else ":80"
    ours = urlsplit(settings.base_url).netloc
    return host.removesuffix(default) == ours.removesuffix(default)


def require_method(view: RequestView, *methods: str) -> None:
    if view.method not in methods:
        raise GateError("method_not_allowed", f"use {' or '.join(methods)}")


def saml_form_limit(settings: GateSettings) -> int:
    """The most a form carrying a SAML message may post: ``max_response_bytes`` of XML as
    base64 (4/3 as long), plus room for RelayState and the other fields."""
    return (settings.max_response_bytes * 4) // 3 + 16384


def is_form(view: RequestView) -> bool:
    """Whether the request's body is declared a posted form."""
    content_type = view.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == FORM_TYPE


async def read_form(
    view: RequestView, receive: Receive, *, limit: int, encoded: tuple[str, ...] = ()
) -> dict[str, str]:
    """The posted form's fields; those named in ``encoded`` still percent-encoded."""
    if not is_form(view):
        raise GateError("bad_request", f"expected {FORM_TYPE}")
    declared = view.headers.get("content-length")
    if declared is not None and is_number(declared) and int(declared) > limit:
        raise GateError("response_too_large", f"{declared} bytes posted")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GateError("bad_request", "the client went away")
        body += message.get("body", b"")
        if len(body) > limit:
            raise GateError("response_too_large", f"more than {limit} bytes posted")
        if not message.get("more_body", False):
            break
    return parse_form(bytes(body), max_fields=20, encoded=encoded)
