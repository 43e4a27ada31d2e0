"""The development IdP as a small ASGI app: metadata, SP- and IdP-initiated sign-in pages.

It signs whatever identity the person at the keyboard picks or types, with no password, so it
refuses to run anywhere but on a loopback address unless explicitly told otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from lxml import etree
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from saml_gate.config.settings import is_loopback_host
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from saml_gate.web.forwarded import ClientAddresses

log = logging.getLogger("saml_gate.devidp")

#: Okta-like entity ID (Okta's are ``http://www.okta.com/exk`` + 17 characters).
DEFAULT_ENTITY_ID: Final = "http://www.okta.com/exkDEVIDP0saml0gate7"


@dataclass(frozen=True)
class DevUser:
    """A user offered on the login page."""

    email: str
    name: str
    groups: tuple[str, ...] = ()


DEFAULT_USERS: Final[tuple[DevUser, ...]] = (
    DevUser("alice@example.com", "Alice Admin", ("admins", "users")),
    DevUser("bob@example.com", "Bob User", ("users",)),
    DevUser("carol@example.com", "Carol Contractor", ("contractors",)),
)

MAX_BODY_BYTES: Final = 256 * 1024
MAX_SAML_REQUEST_CHARS: Final = 128 * 1024
MAX_AUTHN_REQUEST_BYTES: Final = 256 * 1024
MAX_RELAY_STATE_CHARS: Final = 2048
MAX_EMAIL_CHARS: Final = 254
MAX_NAME_CHARS: Final = 256
MAX_GROUP_CHARS: Final = 64
MAX_GROUPS: Final = 50

_ID_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,255}")
_CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]")
_AUTO_SUBMIT_JS: Final = 'document.getElementById("saml-post").submit();'
_AUTO_SUBMIT_HASH: Final = base64.b64encode(
    hashlib.sha256(_AUTO_SUBMIT_JS.encode()).digest()
).decode()
_SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The auto-submit script is allowed by hash: no other script can run on these pages.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_AUTO_SUBMIT_HASH}'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class _Problem(Exception):
    """An error shown to the developer as an HTML page (the text is escaped when shown)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def _bad(detail: str) -> _Problem:
    return _Problem(400, "Bad request", detail)


def _hostname(url: str) -> str:
    """The URL's host name, or "" when it has none or is malformed (e.g. "[::1")."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


def _short(value: str, limit: int = 200) -> str:
    """For quoting a value in an error page: bounded length, printable."""
    value = _CONTROL_RE.sub("?", value)
    return value if len(value) <= limit else value[:limit] + "…"


@dataclass(frozen=True)
class _AuthnRequest:
    id: str
    force_authn: bool


class DevIdP:
    """The embedded development IdP (pure ASGI app), mounted by the gate at ``mount_path``.

    Routes, relative to the mount: ``GET /metadata``; ``GET /sso`` (HTTP-Redirect binding) and
    ``POST /sso`` with ``SAMLRequest`` (HTTP-POST binding) show the login page; ``POST /sso``
    from that page issues the Response; ``GET|POST /initiate`` is IdP-initiated sign-in.
    Requests are refused (403) unless they come from, and are addressed to, loopback.
    """

    def __init__(
        self,
        *,
        public_url: str,
        keypair: KeyPair,
        sp_entity_id: str,
        sp_acs_url: str,
        users: Sequence[DevUser] = DEFAULT_USERS,
        entity_id: str = DEFAULT_ENTITY_ID,
        sign_response: bool = True,
        sign_assertion: bool = True,
        encrypt_to: bytes | None = None,
        clock: Callable[[], float] = time.time,
        allow_non_loopback: bool = False,
        mount_path: str | None = None,
    ) -> None:
        public_url = public_url.rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public_url {public_url!r} must be an absolute http(s) URL")
        if not allow_non_loopback and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"public_url {public_url!r} is not on a loopback host (127.0.0.1, ::1, "
                "localhost): the development IdP signs in anyone as anyone and must never be "
                "reachable from elsewhere"
            )
        self._public_url = public_url
        self._mount_path = (parts.path if mount_path is None else mount_path).rstrip("/")
        self._keypair = keypair
        self._sp_entity_id = sp_entity_id
        self._sp_acs_url = sp_acs_url
        self._users = tuple(users)
        self._entity_id = entity_id
        self._sign_response = sign_response
        self._sign_assertion = sign_assertion
        self._encrypt_to = encrypt_to
        self._clock = clock
        self._allow_non_loopback = allow_non_loopback
        self._routes: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {
            "/": {"GET": self._index},
            "/metadata": {"GET": self._metadata_response},
            "/sso": {"GET": self._sso_get, "POST": self._sso_post},
            "/initiate": {"GET": self._initiate_get, "POST": self._initiate_post},
        }
        self._metadata = idp_metadata_xml(
            entity_id=entity_id, sso_url=self.sso_url, slo_url=None, keypair=keypair
        )
        log.warning(
            "DEVELOPMENT IdP ENABLED at %s: it signs in ANYONE as ANY user without a password. "
            "For local development only; NEVER use it in production.%s",
            public_url,
            " It accepts NON-LOOPBACK clients!" if allow_non_loopback else "",
        )

    # ------------------------------------------------------------------ public API
    @property
    def entity_id(self) -> str:
        return self._entity_id

    @property
    def public_url(self) -> str:
        return self._public_url

    @property
    def sso_url(self) -> str:
        return self._public_url + "/sso"

    @property
    def metadata_url(self) -> str:
        return self._public_url + "/metadata"

    @property
    def initiate_url(self) -> str:
        return self._public_url + "/initiate"

    def metadata_xml(self) -> bytes:
        return self._metadata

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope, receive)
        try:
            response = await self._dispatch(request)
        except _Problem as problem:
            response = self._problem_page(problem)
        await response(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _route(self, path: str) -> str:
        mount = self._mount_path
        if mount and (path == mount or path.startswith(mount + "/")):
            path = path[len(mount) :]
        return path.rstrip("/") or "/"

    async def _dispatch(self, request: Request) -> Response:
        if not self._allow_non_loopback:
            self._check_loopback(request)
        route = self._route(request.scope["path"])
        method = request.method
        routes = self._routes.get(route)
        if routes is None:
            raise _Problem(404, "Not found", "The development IdP has no page at this address.")
        handler = routes.get("GET" if method == "HEAD" else method)
        if handler is None:
            page = self._problem_page(
                _Problem(405, "Method not allowed", f"Use {' or '.join(routes)} here.")
            )
            page.headers["Allow"] = ", ".join(routes)
            return page
        if method == "POST" and not self._allow_non_loopback:
            self._check_origin(request)
        return await handler(request)

    def _check_loopback(self, request: Request) -> None:
        """403 unless the peer, any proxy-reported client and the Host are all loopback.

        The peer alone is not enough: a tunnel such as ngrok connects from 127.0.0.1, but it
        reports the real client in X-Forwarded-For and the public name in Host.
        """
        client = request.scope.get("client")
        peer = str(client[0]) if client and client[0] else ""
        if not ClientAddresses.is_local(peer, request.scope["headers"]):
            raise _Problem(403, "Forbidden", "The development IdP only answers loopback clients.")
        headers = request.headers
        for name in ("host", "x-forwarded-host"):
            for value in headers.getlist(name):
                host = _hostname("//" + value.split(",", 1)[0])
                if value and not is_loopback_host(host):
                    raise _Problem(
                        403,
                        "Forbidden",
                        f"The development IdP only answers requests addressed to a loopback "
                        f"host, not {_short(host, 100)!r}. Browse to it at {self._public_url}.",
                    )

    def _check_origin(self, request: Request) -> None:
        """Refuse cross-site form posts (login CSRF): a POST's Origin, if any, is loopback."""
        origin = request.headers.get("origin")
        if origin is None:
            return
        host = _hostname(origin)  # "" for the opaque origin "null"
        if not host or not is_loopback_host(host):
            raise _Problem(
                403, "Forbidden", "This form can only be posted from the development IdP's pages."
            )

    # ------------------------------------------------------------------ pages
    async def _index(self, request: Request) -> Response:
        body = (
            "<h1>Development IdP</h1>"
            f"<p>Entity ID: <code>{_e(self._entity_id)}</code></p>"
            f"<p>Trusted SP: <code>{_e(self._sp_entity_id)}</code>, "
            f"ACS <code>{_e(self._sp_acs_url)}</code></p>"
            "<ul>"
            f'<li><a href="{_e(self.initiate_url)}">Sign in to the app (IdP-initiated)</a></li>'
            f'<li><a href="{_e(self.metadata_url)}">IdP metadata</a></li>'
            "</ul>"
        )
        return _html_page("Development IdP", body)

    async def _metadata_response(self, request: Request) -> Response:
        return Response(
            self._metadata,
            media_type="application/samlmetadata+xml",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def _sso_get(self, request: Request) -> Response:
        params = request.query_params
        saml_request = params.get("SAMLRequest")
        if saml_request is None:
            raise _bad(
                "No SAMLRequest parameter. This address receives sign-in requests from the "
                f"app; to sign in directly, open {self.initiate_url}."
            )
        relay_state = _relay_state(params.get("RelayState"))
        # SigAlg / Signature are ignored: the metadata says WantAuthnRequestsSigned="false".
        authn = self._parse_authn_request(_decode_saml_request(saml_request, deflated=True))
        return self._login_page(authn, relay_state)

    async def _sso_post(self, request: Request) -> Response:
        form = await _read_form(request)
        if "SAMLRequest" in form:  # HTTP-POST binding AuthnRequest
            relay_state = _relay_state(form.get("RelayState"))
            authn = self._parse_authn_request(
                _decode_saml_request(form["SAMLRequest"], deflated=False)
            )
            return self._login_page(authn, relay_state)
        in_response_to = form.get("in_response_to", "")
        if not _ID_RE.fullmatch(in_response_to):
            raise _bad(
                "The sign-in form lost the ID of the app's request; start the sign-in again "
                f"from the app, or use {self.initiate_url} for IdP-initiated sign-in."
            )
        user = self._user_from_form(form)
        return self._issue(user, in_response_to, _relay_state(form.get("relay_state")))

    async def _initiate_get(self, request: Request) -> Response:
        intro = (
            "<p>IdP-initiated sign-in, like clicking the app's tile on the Okta dashboard: "
            "the app receives an unsolicited Response (no InResponseTo). The app must allow "
            "IdP-initiated sign-in.</p>"
        )
        relay = (
            "<label>RelayState (optional, e.g. the path to land on) "
            '<input name="relay_state" maxlength="2048"></label>'
        )
        return self._users_page(
            title="Sign in to the app (IdP-initiated)",
            intro=intro,
            action=self.initiate_url,
            hidden={},
            extra_field=relay,
        )

    async def _initiate_post(self, request: Request) -> Response:
        form = await _read_form(request)
        user = self._user_from_form(form)
        return self._issue(user, None, _relay_state(form.get("relay_state")))

    def _login_page(self, authn: _AuthnRequest, relay_state: str | None) -> Response:
        intro = (
            f"<p>The app <code>{_e(self._sp_entity_id)}</code> asks who you are "
            f"(request <code>{_e(authn.id)}</code>).</p>"
        )
        if authn.force_authn:
            intro += "<p>The app asked for a fresh sign-in (ForceAuthn).</p>"
        hidden = {"in_response_to": authn.id}
        if relay_state is not None:
            hidden["relay_state"] = relay_state
        return self._users_page(
            title="Sign in", intro=intro, action=self.sso_url, hidden=hidden, extra_field=""
        )

    def _users_page(
        self,
        *,
        title: str,
        intro: str,
        action: str,
        hidden: Mapping[str, str],
        extra_field: str,
    ) -> Response:
        hidden_html = "".join(
            f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in hidden.items()
        )
        buttons = []
        for index, user in enumerate(self._users):
            groups = ", ".join(user.groups) if user.groups else "no groups"
            buttons.append(
                f'<button class="user" type="submit" name="user" value="{index}">'
                f"<strong>{_e(user.name)}</strong><br>{_e(user.email)}<br>"
                f'<span class="groups">{_e(groups)}</span></button>'
            )
        users_form = (
            f'<form method="post" action="{_e(action)}">{hidden_html}{extra_field}'
            f'<div class="users">{"".join(buttons)}</div></form>'
            if buttons
            else ""
        )
        custom_form = (
            f'<form method="post" action="{_e(action)}" class="custom">{hidden_html}'
            "<h2>Or sign in as someone else</h2>"
            '<label>Email <input name="email" type="email" required maxlength="254" '
            'placeholder="dave@example.com"></label>'
            '<label>Display name <input name="name" maxlength="256" placeholder="Dave"></label>'
            '<label>Groups (comma-separated) <input name="groups" '
            'placeholder="users, admins"></label>'
            f"{extra_field}"
            '<button type="submit">Sign in</button></form>'
        )
        body = f"<h1>{_e(title)}</h1>{intro}{users_form}{custom_form}"
        return _html_page(title, body)

    # ------------------------------------------------------------------ logic
    def _parse_authn_request(self, xml: bytes) -> _AuthnRequest:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            root = etree.fromstring(xml, parser)
        except etree.XMLSyntaxError:
            raise _bad("The SAMLRequest is not well-formed XML.") from None
        docinfo = root.getroottree().docinfo
        if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            raise _bad("The SAMLRequest contains a DOCTYPE, which is never allowed.")
        if root.tag != f"{{{X.NS_SAMLP}}}AuthnRequest":
            raise _bad("The SAMLRequest is not a SAML 2.0 AuthnRequest.")
        request_id = root.get("ID") or ""
        if not _ID_RE.fullmatch(request_id):
            raise _bad("The AuthnRequest has no usable ID attribute.")
        issuer_el = root.find(f"{{{X.NS_SAML}}}Issuer")
        issuer = (issuer_el.text or "").strip() if issuer_el is not None else ""
        if issuer != self._sp_entity_id:
            raise _bad(
                f"The AuthnRequest comes from {_short(issuer) or 'no Issuer'!r}, but this "
                f"development IdP is set up for the SP {self._sp_entity_id!r}."
            )
        acs_url = root.get("AssertionConsumerServiceURL")
        if acs_url is not None and acs_url != self._sp_acs_url:
            raise _bad(
                f"The AuthnRequest asks for the response at {_short(acs_url)!r}, but the SP's "
                f"assertion consumer service is {self._sp_acs_url!r}."
            )
        binding = root.get("ProtocolBinding")
        if binding is not None and binding != X.BINDING_HTTP_POST:
            raise _bad(
                f"The AuthnRequest asks for the {_short(binding)!r} binding; the development "
                "IdP only answers with HTTP-POST."
            )
        force = (root.get("ForceAuthn") or "").strip() in ("true", "1")
        return _AuthnRequest(id=request_id, force_authn=force)

    def _user_from_form(self, form: Mapping[str, str]) -> DevUser:
        choice = form.get("user")
        if choice is not None:
            if not choice.isdigit() or int(choice) >= len(self._users):
                raise _bad("No such user.")
            return self._users[int(choice)]
        email = form.get("email", "").strip()
        if not email or "@" not in email:
            raise _bad("Give an email address (it must contain @).")
        if len(email) > MAX_EMAIL_CHARS:
            raise _bad(f"The email address is longer than {MAX_EMAIL_CHARS} characters.")
        if _CONTROL_RE.search(email) or any(c.isspace() for c in email):
            raise _bad("The email address contains spaces or control characters.")
        name = " ".join(form.get("name", "").split()) or email
        if len(name) > MAX_NAME_CHARS or _CONTROL_RE.search(name):
            raise _bad(f"The display name must be at most {MAX_NAME_CHARS} printable characters.")
        groups: list[str] = []
        for raw in form.get("groups", "").split(","):
            group = raw.strip()
            if not group or group in groups:
                continue
            if len(group) > MAX_GROUP_CHARS or _CONTROL_RE.search(group):
                raise _bad(f"Each group must be at most {MAX_GROUP_CHARS} printable characters.")
            groups.append(group)
        if len(groups) > MAX_GROUPS:
            raise _bad(f"At most {MAX_GROUPS} groups.")
        return DevUser(email=email, name=name, groups=tuple(groups))

    def _issue(
        self, user: DevUser, in_response_to: str | None, relay_state: str | None
    ) -> Response:
        attributes: dict[str, list[str]] = {"email": [user.email], "displayName": [user.name]}
        if user.groups:
            attributes["groups"] = list(user.groups)
        spec = ResponseSpec(
            issuer=self._entity_id,
            destination=self._sp_acs_url,
            audience=self._sp_entity_id,
            name_id=user.email,
            name_id_format=X.NAMEID_EMAIL,
            attributes=attributes,
            in_response_to=in_response_to,
            now=datetime.fromtimestamp(self._clock(), UTC),
        )
        try:
            xml = issue_response(
                spec,
                self._keypair,
                sign_response=self._sign_response,
                sign_assertion=self._sign_assertion,
                encrypt_to=self._encrypt_to,
            )
        except ValueError:  # lxml: a string that XML cannot carry
            raise _bad("The user's details contain characters that XML cannot carry.") from None
        log.info(
            "development IdP issued a SAML Response for %s (%s)",
            user.email,
            f"InResponseTo {in_response_to}" if in_response_to else "IdP-initiated",
        )
        fields = {"SAMLResponse": base64.b64encode(xml).decode("ascii")}
        if relay_state:
            fields["RelayState"] = relay_state
        inputs = "".join(
            f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items()
        )
        groups = ", ".join(user.groups) or "no groups"
        body = (
            f"<h1>Signing in as {_e(user.name)}</h1>"
            f"<p>{_e(user.email)} &middot; {_e(groups)}</p>"
            f'<form id="saml-post" method="post" action="{_e(self._sp_acs_url)}">{inputs}'
            "<p>Sending the SAML Response to the app&hellip; If nothing happens, press "
            '<button type="submit">Continue</button></p></form>'
            f"<script>{_AUTO_SUBMIT_JS}</script>"
        )
        return _html_page("Signing in", body)

    def _problem_page(self, problem: _Problem) -> HTMLResponse:
        body = f"<h1>{_e(problem.title)}</h1><p>{_e(problem.detail)}</p>"
        return _html_page(problem.title, body, status=problem.status)


# ---------------------------------------------------------------------- helpers
def _e(value: str) -> str:
    return html.escape(value, quote=True)


_CSS: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
.banner{background:#b91c1c;color:#fff;padding:14px 20px;font-size:1.15em;font-weight:700;
text-align:center;letter-spacing:.02em}
main{max-width:760px;margin:24px auto;padding:0 20px}
h1{font-size:1.5em}h2{font-size:1.1em;margin-top:0}
code{background:#eaeef2;padding:1px 4px;border-radius:4px;word-break:break-all}
.users{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
button{font:inherit;cursor:pointer;border:1px solid #8c959f;border-radius:8px;background:#fff;
padding:8px 14px}
button.user{text-align:left;min-width:200px;padding:12px 16px}
button:hover{border-color:#0969da;background:#f0f6ff}
.groups{color:#57606a;font-size:.9em}
form.custom{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;
margin-top:16px}
label{display:block;margin:8px 0}
input{font:inherit;display:block;width:100%;box-sizing:border-box;padding:6px 8px;
margin-top:4px;border:1px solid #8c959f;border-radius:6px}
"""


def _html_page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Development IdP</title><style>{_CSS}</style></head><body>"
        '<div class="banner" role="alert">Development IdP — for local development only, '
        "never in production</div>"
        f"<main>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=dict(_SECURITY_HEADERS))


def _relay_state(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_RELAY_STATE_CHARS:
        raise _bad(f"RelayState is longer than {MAX_RELAY_STATE_CHARS} characters.")
    if _CONTROL_RE.search(value):
        raise _bad("RelayState contains control characters.")
    return value


def _decode_saml_request(value: str, *, deflated: bool) -> bytes:
    """Base64 (+ raw DEFLATE for HTTP-Redirect) to XML bytes, with size limits."""
    if len(value) > MAX_SAML_REQUEST_CHARS:
        raise _bad("The SAMLRequest is too large.")
    # A "+" left unescaped in a query string arrives as a space.
    text = "".join(value.replace(" ", "+").split())
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("The SAMLRequest is not valid base64.") from None
    if not deflated:
        return raw
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(raw, MAX_AUTHN_REQUEST_BYTES)
    except zlib.error:
        raise _bad(
            "The SAMLRequest is not DEFLATE-compressed as the HTTP-Redirect binding requires."
        ) from None
    if inflater.unconsumed_tail:
        raise _bad("The SAMLRequest is too large once decompressed.")
    return xml


async def _read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict (first value of each name), at most MAX_BODY_BYTES."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        raise _bad("Expected a form post (application/x-www-form-urlencoded).")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise _Problem(413, "Request too large", "The form is too large.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=64
        )
    except (UnicodeDecodeError, ValueError):
        raise _bad("The form could not be read.") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form
