"""Okta Universal Logout: ``{prefix}/global-token-revocation`` ends every session of a person.

The Global Token Revocation request (draft-parecki-oauth-global-token-revocation) as Okta's
"Build Universal Logout for your app" profiles it: Okta's server POSTs JSON naming a person,
``{"sub_id": {"format": "email", "email": ...}}`` or ``{"format": "iss_sub", "iss": <the IdP's
entity ID>, "sub": <the NameID>}`` (the draft's -02 revision and Okta's guide call the member
``subject``: either is read, never both), with ``Authorization: Bearer <JWT>``. The JWT is
checked by :mod:`saml_gate.identity.remote_jwt` against the org's published keys
(``universal_logout_keys``): type ``global-token-revocation+jwt``, an asymmetric algorithm,
``iss`` the org (``universal_logout_issuer``), ``aud`` exactly this endpoint's URL, ``exp``
not passed and at most 10 minutes after ``iat``, ``sub`` the app when
``universal_logout_app_id`` says which, and a ``jti`` never seen before by any gate sharing
the store (kept until the token expires).

Answers, as the draft and Okta say: 401 for missing or invalid authentication (``WWW-
Authenticate: Bearer``), 403 for a token of another app, 400 for a malformed request or a
subject format other than ``email`` and ``iss_sub``, 422 when the sessions cannot be ended (the
store is unreachable), 204 when they are ended. A person without a session here is signed out
already: 204 too (never 404), so the answer tells nobody who has an account. The token and the
body are never logged; the event names the person and how many sessions ended.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import Response
from starlette.types import Receive

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ErrorCode, GateError
from saml_gate.identity.remote_jwt import JwtRefused, JwtRules, KeySource, RemoteJwtVerifier
from saml_gate.ops.events import AuthEvent, EventSink
from saml_gate.policy.hosts import is_number
from saml_gate.session.revocation import Revocations
from saml_gate.store import Store, StoreUnavailable
from saml_gate.web.pages import error_response
from saml_gate.web.request import RequestView, require_method

#: The JWT type Okta sends (its guide's "Endpoint authentication").
TOKEN_TYPE: Final = "global-token-revocation+jwt"  # noqa: S105 (a type, not a secret)
#: Okta's tokens live 5 minutes after iat (nbf 5 minutes before): twice that at most.
MAX_TOKEN_LIFETIME: Final = 600.0
MAX_BODY_BYTES: Final = 8 * 1024
MAX_IDENTIFIER: Final = 2048
_BEARER: Final = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_REFUSALS: Final[dict[str, ErrorCode]] = {
    "invalid": "universal_logout_token_invalid",
    "issuer": "universal_logout_wrong_issuer",
    "audience": "universal_logout_wrong_audience",
    "expired": "universal_logout_expired",
    "keys_unavailable": "universal_logout_keys_unavailable",
}


@dataclass(frozen=True)
class Subject:
    """Whom a request names: an email (``email``) or the IdP's issuer and NameID
    (``iss_sub``), read verbatim."""

    email: str | None = None
    issuer: str | None = None
    name_id: str | None = None


class UniversalLogout:
    """The endpoint (see the module docstring)."""

    def __init__(
        self,
        settings: GateSettings,
        keys: KeySource,
        revocations: Revocations,
        store: Store,
        events: EventSink,
    ) -> None:
        s = settings
        issuer = s.universal_logout_issuer
        assert issuer is not None, "built only where universal_logout_issuer is set"
        self._settings = s
        self._issuer = issuer
        self._app_id = s.universal_logout_app_id
        self._revocations = revocations
        self._store = store
        self._events = events
        rules = JwtRules(
            issuers=(issuer, issuer + "/"),
            audiences=(s.universal_logout_url,),
            one_audience=True,  # "the exact endpoint URL" (the draft, Okta's guide)
            leeway=s.clock_skew,
            token_type=TOKEN_TYPE,
            max_lifetime=MAX_TOKEN_LIFETIME,
            require=("iss", "aud", "sub", "exp", "iat", "jti"),
        )
        self._verifier = RemoteJwtVerifier(keys, rules, s.clock)

    async def revoke(self, view: RequestView, receive: Receive) -> Response:
        """``POST {prefix}/global-token-revocation``."""
        subject: Subject | None = None
        try:
            require_method(view, "POST")
            await self._authenticate(view)
            subject = await _read_subject(view, receive)
            ended = await self._end(subject)
        except GateError as error:
            return self._refused(view, error, subject)
        self._events.emit(
            AuthEvent(
                "universal_logout",
                "success",
                reason=f"Universal Logout: {ended} session(s) ended",
                name_id=subject.name_id,
                email=subject.email,
                issuer=subject.issuer,
                extra={"sessions": ended},
                **view.event_fields(),
            )
        )
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    async def _authenticate(self, view: RequestView) -> None:
        """The signed JWT checked, its jti recorded; a GateError otherwise."""
        values = [v for k, v in view.scope["headers"] if k == b"authorization"]
        if not values:
            raise GateError("universal_logout_unauthenticated", "no Authorization header")
        match = _BEARER.fullmatch(values[0].decode("latin-1").strip())
        if len(values) > 1 or match is None:
            raise GateError(
                "universal_logout_unauthenticated",
                "the Authorization header must be one 'Bearer <JWT>'",
            )
        try:
            claims = await self._verifier.verify(match.group(1))
        except JwtRefused as refused:
            raise GateError(_REFUSALS[refused.reason], refused.detail) from None
        if self._app_id is not None and claims.get("sub") != self._app_id:
            raise GateError(
                "universal_logout_wrong_app", f"sub {str(claims.get('sub'))[:80]!r} is not the app"
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise GateError("universal_logout_token_invalid", "jti is not a short string")
        s = self._settings
        ttl = float(claims["exp"]) + s.clock_skew - s.clock()
        try:
            fresh = await self._store.add_once(f"universal-logout:{claims['iss']}:{jti}", ttl)
        except StoreUnavailable as exc:
            raise GateError("universal_logout_failed", f"jti not checked: {exc}") from None
        if not fresh:
            raise GateError("universal_logout_replayed", "this jti was accepted before")

    async def _end(self, subject: Subject) -> int:
        """How many live sessions of the person ended, on every gate sharing the store."""
        revocations, now = self._revocations, self._settings.clock()
        try:
            if subject.email is not None:
                return await revocations.revoke_email(subject.email, now)
            assert subject.issuer is not None and subject.name_id is not None
            return await revocations.revoke_person(subject.issuer, subject.name_id, now)
        except StoreUnavailable as exc:
            raise GateError("universal_logout_failed", str(exc)) from None

    def _refused(self, view: RequestView, error: GateError, subject: Subject | None) -> Response:
        """JSON, with the RFC 6750 challenge on a 401; one auth event."""
        self._events.emit(
            AuthEvent(
                "universal_logout",
                "failure",
                error_code=error.code,
                reason=error.detail or error.info.title,
                name_id=subject.name_id if subject else None,
                email=subject.email if subject else None,
                issuer=subject.issuer if subject else None,
                **view.event_fields(),
            )
        )
        headers: dict[str, str] = {}
        if error.status == 401:
            unauthenticated = error.code == "universal_logout_unauthenticated"
            headers["WWW-Authenticate"] = (
                "Bearer" if unauthenticated else 'Bearer error="invalid_token"'
            )
        elif error.code == "method_not_allowed":
            headers["Allow"] = "POST"
        s = self._settings
        return error_response(
            error,
            wants_json=True,
            show_detail=s.debug or view.is_local,
            headers=headers,
            hint_context=s.public_values,
        )


async def _read_subject(view: RequestView, receive: Receive) -> Subject:
    """The person the JSON body names (400 ``universal_logout_bad_request`` otherwise)."""
    body = await _read_json(view, receive)
    named = [body[name] for name in ("sub_id", "subject") if name in body]
    if len(named) != 1 or not isinstance(named[0], dict):
        raise _bad("the body must hold one subject identifier object, sub_id")
    sub_id: dict[str, Any] = named[0]
    form = sub_id.get("format")
    if form == "email":
        return Subject(email=_identifier(sub_id, "email"))
    if form == "iss_sub":
        return Subject(issuer=_identifier(sub_id, "iss"), name_id=_identifier(sub_id, "sub"))
    raise _bad(f"subject format {str(form)[:40]!r} is not supported: use email or iss_sub")


def _identifier(sub_id: dict[str, Any], name: str) -> str:
    value = sub_id.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER:
        raise _bad(f"{name} must be a non-empty string")
    return value


async def _read_json(view: RequestView, receive: Receive) -> dict[str, Any]:
    content_type = view.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise _bad("Content-Type must be application/json")
    declared = view.headers.get("content-length")
    if declared is not None and is_number(declared) and int(declared) > MAX_BODY_BYTES:
        raise _bad(f"a body of {declared} bytes is too large")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _bad("the client went away")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise _bad(f"the body is larger than {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            break
    try:
        document = json.loads(bytes(body))
    except ValueError:
        raise _bad("the body is not JSON") from None
    if not isinstance(document, dict):
        raise _bad("the body is not a JSON object")
    return document


def _bad(detail: str) -> GateError:
    return GateError("universal_logout_bad_request", detail)
