"""Forward-auth: ``/saml/auth`` answers a reverse proxy's sub-request (nginx ``auth_request``,
Caddy ``forward_auth``, Traefik ``forwardAuth``). Served only where forward-auth is configured
(the ``forward_auth`` setting, or ``saml-gate forward-auth``).

The original request is read from ``X-Original-URL`` + ``X-Original-Method`` (nginx) or else
``X-Forwarded-Method``, ``-Proto``, ``-Host`` and ``-Uri`` (Traefik, Caddy), each exactly once,
and only when the peer is one of ``trusted_proxies`` (anyone else gets 403
``untrusted_proxy``: a client reaching the gate directly could otherwise name any URL). The URL
must be ``http(s)://host[:port]/path[?query]`` with nothing else (no userinfo, whitespace or
control characters); that request then goes to the same decision as an app request in the other
modes (:class:`~saml_gate.web.gatekeeper.Gatekeeper`: the rules and the request-side hardening,
the session, the policy), and this module only carries its verdict out.

Answers: 200 with the identity headers and the JWT (public paths: 200, with them only when a
live session came with the request), and a
``Cookie`` header: the request's Cookie lines joined, without the gate's own cookies (as proxy
mode forwards them), absent when nothing else is left. The shipped configurations send exactly
that to the app in place of the client's Cookie (none when it is absent), so that no app ever
sees, and can replay, a session of the gate (Traefik: ``authResponseHeaders``, which always
removes the client's copy first); 401 JSON
with a ``login_url`` without a session, except a 302 to that ``login_url`` for a browser's page
load described Traefik/Caddy-style outside ``api_paths`` (nginx turns the 401 into a redirect
itself with ``error_page 401``); 403 when signed in but not allowed (421 ``unknown_host``, 400,
503 for the other refusals). A
session cookie due for refresh comes back as ``Set-Cookie`` on the 200 (nginx:
``auth_request_set`` + ``add_header``), and one that is no good is cleared on the 401 or 302.
"""

from __future__ import annotations

import functools
import re
from typing import Final, NamedTuple
from urllib.parse import unquote, urlsplit

from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.identity.headers import IdentityHeaders
from saml_gate.identity.tokens import jwt_header_name
from saml_gate.ip_addresses import ClientAddresses, peer_of
from saml_gate.policy.hosts import parse_host
from saml_gate.session.cookies import without_cookies
from saml_gate.session.decision import DuplicateSession
from saml_gate.user import SamlUser
from saml_gate.web.gatekeeper import Admit, AppRequest, Gatekeeper, Public, SignIn
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView
from saml_gate.web.responses import NO_STORE, with_cookies
from saml_gate.web.sign_in import is_page_load, login_url_for, sign_in_needed

_URL: Final = re.compile(r"(https?)://([^/?#]+)(/[^#]*)", re.IGNORECASE)
_UNSAFE: Final = re.compile(r"[\x00-\x20\x7f-\xff\\]")
_NGINX: Final = (b"x-original-url", b"x-original-method")
_FORWARDED: Final = (
    b"x-forwarded-method",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-uri",
)
_DESCRIBING: Final = frozenset(_NGINX + _FORWARDED)
_ALLOWED_HEADERS: Final = ((b"content-length", b"0"), (b"cache-control", b"no-store"))
#: The Cookie header the app may see, on a 200 (see the module docstring).
APP_COOKIE_HEADER: Final = b"cookie"
Header = tuple[bytes, bytes]
#: Sessions whose identity headers are kept (the hot path).
_CACHE_SIZE: Final = 10_000


class OriginalRequest(NamedTuple):
    """The request the proxy asks about: its method, absolute URL, host, and a scope for the
    decision. ``forwarded_style``: described with X-Forwarded-* (Traefik, Caddy), which pass a
    redirect on to the browser."""

    method: str
    url: str
    path: str
    host: str
    scope: Scope
    forwarded_style: bool


#: A proxy's few hosts, each checked once (the hot path).
_valid_host = functools.lru_cache(maxsize=1024)(parse_host)


@functools.lru_cache(maxsize=1024)  # pages asked about again and again (the hot path)
def _target(url: str) -> tuple[str, bytes, bytes, str] | None:
    """(path, raw path, query string, host) of a strictly well-formed URL, else None."""
    match = _URL.fullmatch(url)
    if match is None or _UNSAFE.search(url) or parse_host(match.group(2)) is None:
        return None
    raw_path, _, query = match.group(3).partition("?")
    host = match.group(2).lower()
    return unquote(raw_path), raw_path.encode("latin-1"), query.encode("latin-1"), host


def _described(headers: list[Header]) -> dict[bytes, str]:
    """The headers describing the original request, each at most once."""
    found: dict[bytes, str] = {}
    for key, value in headers:
        if key in _DESCRIBING:
            if key in found:
                raise GateError("bad_original_request", f"{key.decode()} sent more than once")
            found[key] = value.decode("latin-1")
    return found


def _check_agreement(url: str, method: str | None, found: dict[bytes, str]) -> None:
    """Both styles sent: they must describe the same request. A proxy that sets only one style
    (Caddy, Traefik) passes the client's own copy of the other, so the gate cannot tell which
    one the proxy wrote, and a disagreement is refused rather than resolved either way."""
    f_method, _, f_host, f_uri = (found.get(n) for n in _FORWARDED)
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    if (
        (f_uri is not None and f_uri != path_and_query)
        or (f_host is not None and f_host.lower() != parts.netloc.lower())
        or (f_method is not None and method is not None and f_method != method)
    ):
        raise GateError(
            "bad_original_request",
            "X-Original-URL/-Method and X-Forwarded-Uri/-Host/-Method describe different requests",
        )


def original_request(scope: Scope) -> OriginalRequest:
    """The original request from the proxy's headers (see the module docstring)."""
    headers = scope["headers"]
    found = _described(headers)
    url, method = found.get(b"x-original-url"), found.get(b"x-original-method")
    forwarded_style = url is None
    if url is not None:
        _check_agreement(url, method, found)
    if url is None:
        method, proto, host, uri = (found.get(n) for n in _FORWARDED)
        if proto is None or host is None or uri is None:
            raise GateError("bad_original_request", "no X-Original-URL nor X-Forwarded-Uri/-Host")
        if not uri.startswith("/") or _valid_host(host) is None:
            raise GateError("bad_original_request", "X-Forwarded-Host or -Uri is malformed")
        url = f"{proto}://{host}{uri}"
    if method is None:
        raise GateError("bad_original_request", "no X-Original-Method / X-Forwarded-Method")
    target = _target(url)
    if target is None:
        raise GateError("bad_original_request", f"the URL {url[:120]!r} is not http(s)://host/path")
    path, raw_path, query, host = target
    original: Scope = {
        "type": "http",
        "method": method.strip(),
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "http_version": "",  # unknown, and so is whether a POST had a body: it may have
        "query_string": query,
        "headers": headers,  # the original's own (the describing ones name no override)
        "client": scope.get("client"),
    }
    return OriginalRequest(original["method"], url, path, host, original, forwarded_style)


class _Allowed(Response):
    """200, no body, the given headers: sent as two messages (no task group, no rendering)."""

    def __init__(self, headers: list[Header]) -> None:
        self.status_code = 200
        self.body = b""
        self.background = None
        self.raw_headers = [*_ALLOWED_HEADERS, *headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b""})


class ForwardAuth:
    """The ``/auth`` endpoint: carries the decision's verdict out as 200, 401, 302 or 403."""

    def __init__(
        self,
        settings: GateSettings,
        gatekeeper: Gatekeeper,
        addresses: ClientAddresses,
        refusals: Refusals,
    ) -> None:
        self._settings = settings
        self._gatekeeper = gatekeeper
        self._addresses = addresses
        self._refusals = refusals
        self._jwt_header = jwt_header_name(settings)
        self._identity_headers = IdentityHeaders.of_settings(settings)
        self._identity: dict[str, list[tuple[bytes, bytes]]] = {}
        self._gate_cookie_prefix = settings.cookie_prefix + "_"

    def _identity_of(self, user: SamlUser) -> list[tuple[bytes, bytes]]:
        """The identity headers of a session's person (the same for the session's life)."""
        pairs = self._identity.get(user.session_id)
        if pairs is None:
            if len(self._identity) >= _CACHE_SIZE:
                self._identity.clear()
            pairs = self._identity[user.session_id] = self._identity_headers.of(user)
        return pairs

    def _app_cookie(self, headers: list[Header]) -> list[Header]:
        """What the proxy sends the app as ``Cookie``: every Cookie line of the request joined,
        the gate's own cookies taken out; nothing when nothing else is left."""
        prefix = self._gate_cookie_prefix
        kept = [without_cookies(v, prefix) for k, v in headers if k == b"cookie"]
        value = b"; ".join(cookie for cookie in kept if cookie)
        return [(APP_COOKIE_HEADER, value)] if value else []

    async def auth(self, view: RequestView, receive: Receive) -> Response:
        """``/auth``: the proxy's sub-request (see the module docstring)."""
        scope = view.scope  # read directly: this is a hot path (no cached properties)
        peer = peer_of(scope)
        if not self._addresses.trusts(peer):
            raise GateError("untrusted_proxy", f"peer {peer!r} is not in trusted_proxies")
        original = original_request(scope)
        request = AppRequest(
            original.scope,
            original.path,
            self._addresses,
            original.host,
            original.url,
            scheme=original.url[: original.url.index(":")].lower(),
            own_origin=True,
        )
        verdict = await self._gatekeeper.decide(request)
        if isinstance(verdict, Admit | Public):
            user = verdict.user
            if user is None:  # public, anonymous
                return _Allowed(self._app_cookie(scope["headers"]))
            response = _Allowed([*self._identity_of(user), *self._app_cookie(scope["headers"])])
            if verdict.jwt is not None:
                response.raw_headers.append((self._jwt_header, verdict.jwt))
            if isinstance(verdict, Admit) and verdict.refresh_cookie is not None:
                with_cookies(response, [verdict.refresh_cookie])
            return response
        if isinstance(verdict, SignIn):
            return self._sign_in(view, request, original.forwarded_style, verdict)
        # a refusal the decision logged: shown as the proxy's answer (403, 400, 503)
        error = verdict.error
        if isinstance(error, DuplicateSession):  # deleted where the browser sent them
            error.target = ((original.host,), original.scope["raw_path"].decode("latin-1"))
        return self._refusals.page(view, error, user=verdict.user)

    def _sign_in(
        self, view: RequestView, request: AppRequest, forwarded_style: bool, verdict: SignIn
    ) -> Response:
        """401 with the login URL; a 302 to it for a Traefik/Caddy-described page load (whose
        proxy passes a redirect on to the browser)."""
        clear = [verdict.clear_cookie] if verdict.clear_cookie is not None else []
        login_url = self._settings.login_url
        if verdict.api or not (
            forwarded_style and is_page_load(request.scope["method"], view.headers)
        ):
            return sign_in_needed(login_url, request.return_to, verdict.error, clear)
        location = login_url_for(login_url, request.return_to)
        return with_cookies(RedirectResponse(location, status_code=302, headers=NO_STORE), clear)
