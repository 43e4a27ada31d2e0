"""The development IdP as a small ASGI app: metadata, SP- and IdP-initiated sign-in pages.

It signs whatever identity the person at the keyboard picks or types, with no password, so it
refuses to run anywhere but on a loopback address unless explicitly told otherwise. This module
routes and answers; the pages, the input checks and the loopback guards are its neighbours.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from saml_gate.config.settings import is_loopback_host
from saml_gate.devidp import pages
from saml_gate.devidp.guards import check_loopback, check_origin
from saml_gate.devidp.inputs import (
    ID_RE,
    AuthnRequest,
    checked_relay_state,
    decode_saml_request,
    parse_authn_request,
    read_form,
)
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.problems import Problem, bad_request
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.devidp.users import (
    DEFAULT_USERS,
    DevUser,
    session_user,
    session_value,
    user_from_form,
)
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair

log = logging.getLogger("saml_gate.devidp")

#: Okta-like entity ID (Okta's are ``http://www.okta.com/exk`` + 17 characters).
DEFAULT_ENTITY_ID: Final = "http://www.okta.com/exkDEVIDP0saml0gate7"
#: The IdP session: who signed in here last; a passive request is answered for them.
SESSION_COOKIE: Final = "saml_gate_devidp"


class DevIdP:
    """The embedded development IdP (pure ASGI app), mounted by the gate at ``mount_path``.

    Routes, relative to the mount: ``GET /metadata``; ``GET /sso`` (HTTP-Redirect binding) and
    ``POST /sso`` with ``SAMLRequest`` (HTTP-POST binding) show the login page; ``POST /sso``
    from that page issues the Response; ``GET|POST /initiate`` is IdP-initiated sign-in;
    ``GET|POST /session`` shows the IdP session (who signed in here last), changes its groups
    or ends it. A passive request (``IsPassive``: the gate re-asserting a session) is answered
    at once: for the IdP session's person, with its groups as they are now, or NoPassive when
    there is none. Requests are refused (403) unless they come from, and are addressed to,
    loopback.
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
            "/session": {"GET": self._session_get, "POST": self._session_post},
        }
        self._metadata = idp_metadata_xml(
            entity_id=entity_id, sso_url=self.sso_url, slo_url=None, keypair=keypair
        )
        log.warning(
            "DEVELOPMENT IdP ENABLED at %s: it signs in ANYONE as ANY user without a password. "
            "For local development only; NEVER use it in production.%s",
            public_url,
            " It accepts NON-LOOPBACK clients and hosts!"
            if allow_non_loopback
            else " It answers only loopback clients that name a loopback host (Host,"
            " X-Forwarded-Host, Forwarded): a proxy on this machine that rewrites Host to a"
            " loopback name and does not report the client (nginx's bare proxy_pass) hides"
            " remote browsers from it, so never put it behind one.",
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
        except Problem as problem:
            response = pages.problem_page(problem)
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
            check_loopback(request, self._public_url)
        route = self._route(request.scope["path"])
        method = request.method
        routes = self._routes.get(route)
        if routes is None:
            raise Problem(404, "Not found", "The development IdP has no page at this address.")
        handler = routes.get("GET" if method == "HEAD" else method)
        if handler is None:
            page = pages.problem_page(
                Problem(405, "Method not allowed", f"Use {' or '.join(routes)} here.")
            )
            page.headers["Allow"] = ", ".join(routes)
            return page
        if method == "POST" and not self._allow_non_loopback:
            check_origin(request)
        return await handler(request)

    # ------------------------------------------------------------------ handlers
    async def _index(self, request: Request) -> Response:
        return pages.index_page(
            entity_id=self._entity_id,
            sp_entity_id=self._sp_entity_id,
            sp_acs_url=self._sp_acs_url,
            initiate_url=self.initiate_url,
            metadata_url=self.metadata_url,
            session_url=self._public_url + "/session",
        )

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
            raise bad_request(
                "No SAMLRequest parameter. This address receives sign-in requests from the "
                f"app; to sign in directly, open {self.initiate_url}."
            )
        relay = checked_relay_state(params.get("RelayState"))
        # SigAlg / Signature are ignored: the metadata says WantAuthnRequestsSigned="false".
        authn = self._parse_authn_request(decode_saml_request(saml_request, deflated=True))
        return self._login_page(request, authn, relay)

    async def _sso_post(self, request: Request) -> Response:
        form = await read_form(request)
        if "SAMLRequest" in form:  # HTTP-POST binding AuthnRequest
            relay = checked_relay_state(form.get("RelayState"))
            authn = self._parse_authn_request(
                decode_saml_request(form["SAMLRequest"], deflated=False)
            )
            return self._login_page(request, authn, relay)
        in_response_to = form.get("in_response_to", "")
        if not ID_RE.fullmatch(in_response_to):
            raise bad_request(
                "The sign-in form lost the ID of the app's request; start the sign-in again "
                f"from the app, or use {self.initiate_url} for IdP-initiated sign-in."
            )
        user = user_from_form(form, self._users)
        return self._issue(user, in_response_to, checked_relay_state(form.get("relay_state")))

    async def _initiate_get(self, request: Request) -> Response:
        return pages.initiate_page(self._users, action=self.initiate_url)

    async def _initiate_post(self, request: Request) -> Response:
        form = await read_form(request)
        user = user_from_form(form, self._users)
        return self._issue(user, None, checked_relay_state(form.get("relay_state")))

    def _parse_authn_request(self, xml: bytes) -> AuthnRequest:
        return parse_authn_request(
            xml, sp_entity_id=self._sp_entity_id, sp_acs_url=self._sp_acs_url
        )

    def _login_page(self, request: Request, authn: AuthnRequest, relay: str | None) -> Response:
        if authn.is_passive:  # never a page: the IdP session's person, or NoPassive
            user = session_user(request.cookies.get(SESSION_COOKIE))
            if user is None:
                return self._no_passive(authn.id, relay)
            return self._issue(user, authn.id, relay, remember=False)
        return pages.login_page(
            self._users, authn, relay, sp_entity_id=self._sp_entity_id, action=self.sso_url
        )

    async def _session_get(self, request: Request) -> Response:
        user = session_user(request.cookies.get(SESSION_COOKIE))
        return pages.session_page(user, action=self._public_url + "/session")

    async def _session_post(self, request: Request) -> Response:
        """Change the IdP session's groups (``groups``), or end it (``end``): what the next
        passive request finds."""
        form = await read_form(request)
        user = session_user(request.cookies.get(SESSION_COOKIE))
        response: Response
        if "end" in form or user is None:
            response = pages.session_page(None, action=self._public_url + "/session")
            response.delete_cookie(SESSION_COOKIE, path=self._mount_path or "/")
            return response
        changed = user_from_form({"email": user.email, "name": user.name, **form}, ())
        response = pages.session_page(changed, action=self._public_url + "/session")
        self._remember(response, changed)
        return response

    def _remember(self, response: Response, user: DevUser) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            session_value(user),
            path=self._mount_path or "/",
            httponly=True,
            samesite="lax",
        )

    def _no_passive(self, in_response_to: str, relay_state: str | None) -> Response:
        """The answer to a passive request without an IdP session (Okta's, when its session
        ended): status Responder / NoPassive, no assertion."""
        spec = ResponseSpec(
            issuer=self._entity_id,
            destination=self._sp_acs_url,
            audience=self._sp_entity_id,
            name_id="",
            in_response_to=in_response_to,
            now=datetime.fromtimestamp(self._clock(), UTC),
            status_code=X.STATUS_RESPONDER,
            status_detail=X.STATUS_NO_PASSIVE,
            include_assertion=False,
        )
        xml = issue_response(spec, self._keypair, sign_response=True, sign_assertion=False)
        log.info("development IdP answered NoPassive to %s (no IdP session)", in_response_to)
        fields = {"SAMLResponse": base64.b64encode(xml).decode("ascii")}
        if relay_state:
            fields["RelayState"] = relay_state
        return pages.auto_post_page(None, acs_url=self._sp_acs_url, fields=fields)

    def _issue(
        self,
        user: DevUser,
        in_response_to: str | None,
        relay_state: str | None,
        *,
        remember: bool = True,
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
            raise bad_request(
                "The user's details contain characters that XML cannot carry."
            ) from None
        log.info(
            "development IdP issued a SAML Response for %s (%s)",
            user.email,
            f"InResponseTo {in_response_to}" if in_response_to else "IdP-initiated",
        )
        fields = {"SAMLResponse": base64.b64encode(xml).decode("ascii")}
        if relay_state:
            fields["RelayState"] = relay_state
        page = pages.auto_post_page(user, acs_url=self._sp_acs_url, fields=fields)
        if remember:  # an interactive sign-in opens the IdP session
            self._remember(page, user)
        return page
