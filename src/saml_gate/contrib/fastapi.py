"""FastAPI dependencies that read the identity SamlGate attached to the request.

    from saml_gate.contrib.fastapi import CurrentUser, require_groups

    @app.get("/api/me")
    async def me(user: CurrentUser) -> dict[str, Any]: ...

    @app.get("/admin", dependencies=[Depends(require_groups("admins"))])
    async def admin() -> ...: ...

Call ``use_gate_error_pages(app)`` once so that a person a dependency refuses in a browser sees
the gate's error page (with the groups the route asks for, their own groups and links to sign in
again or out); API clients keep the JSON answer either way.

The gate signs people in (or refuses them) before FastAPI runs; these dependencies only read
``scope["user"]``. They answer 401 where there is no identity (a public path, or an app that is
not behind the gate) and 403 when the person is in none of the groups. In the OpenAPI schema they
appear as an ``apiKey`` security scheme (the gate's session cookie), with the required groups as
the requirement's roles (OpenAPI 3.1); add ``responses=GATE_RESPONSES`` to a route or router to
document the 401 and 403 answers too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, HTTPException, Request, Security, WebSocketException
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.status import WS_1008_POLICY_VIOLATION

from saml_gate.errors import ERRORS, ErrorCode, GateError, members_of
from saml_gate.user import SamlUser
from saml_gate.web.pages import error_body, page_document
from saml_gate.web.sign_in import is_page_load, login_url_for

__all__ = [
    "GATE_RESPONSES",
    "CurrentUser",
    "OptionalUser",
    "SamlSession",
    "optional_user",
    "require_groups",
    "require_user",
    "use_gate_error_pages",
]

_ERROR_BODY: Final = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
                "login_url": {"type": "string"},
            },
            "required": ["error", "message"],
        }
    },
}

#: OpenAPI descriptions of the 401 and 403 answers, for ``responses=`` of a route or router.
GATE_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {
        "description": "Not signed in through the gate (error `not_authenticated`)",
        "content": {"application/json": {"schema": _ERROR_BODY}},
    },
    403: {
        "description": "Signed in, but in none of the required groups (error `forbidden`)",
        "content": {"application/json": {"schema": _ERROR_BODY}},
    },
}


class SamlSession(SecurityBase):
    """The gate's session as a FastAPI security dependency: returns the :class:`SamlUser`.

    Security scopes of the form ``group:<name>`` (from :func:`require_groups`, or
    ``Security(require_user, scopes=[...])``) require membership of one of those groups.
    Give ``cookie_name`` and ``prefix`` when the gate's ``cookie_prefix`` or ``prefix`` differ
    from the defaults: they are only used for the schema and the ``login_url``.
    """

    def __init__(
        self,
        *,
        cookie_name: str = "saml_gate_session",
        prefix: str = "/saml",
        scheme_name: str = "saml-gate",
    ) -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.cookie},  # type: ignore[arg-type]
            name=cookie_name,
            description="The saml-gate session cookie, set after signing in through the IdP"
            f" ({prefix}/login). Groups listed for an operation: membership of any one.",
        )
        self.scheme_name = scheme_name
        self.prefix = prefix
        self.login_path = prefix + "/login"

    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> SamlUser:
        user = connection.scope.get("user")
        if not isinstance(user, SamlUser):
            path = connection.url.path + (
                "?" + connection.url.query if connection.url.query else ""
            )
            raise _refusal(
                connection, "not_authenticated", login_url=login_url_for(self.login_path, path)
            )
        groups = [
            s.removeprefix("group:") for s in security_scopes.scopes if s.startswith("group:")
        ]
        if groups and not user.in_group(*groups):
            needed = GateError("forbidden", hint_values={"access_needed": members_of(groups)})
            hint = needed.hint({})
            raise _refusal(connection, "forbidden", hint=hint, user=user, prefix=self.prefix)
        return user


class GateRefusal(HTTPException):
    """A dependency's 401 or 403: JSON, or with :func:`use_gate_error_pages` a page for browsers."""

    def __init__(
        self, code: ErrorCode, detail: dict[str, str], headers: dict[str, str] | None, **page: Any
    ) -> None:
        super().__init__(ERRORS[code].status, detail=detail, headers=headers)
        self.code = code
        self.body = detail
        self.page = page


def _refusal(
    connection: HTTPConnection,
    code: ErrorCode,
    *,
    hint: str | None = None,
    user: SamlUser | None = None,
    prefix: str = "/saml",
    **extra: str,
) -> Exception:
    info = ERRORS[code]
    if connection.scope["type"] == "websocket":
        return WebSocketException(WS_1008_POLICY_VIOLATION, reason=code)
    detail = {"error": code, "message": info.title, "hint": hint or info.hint, **extra}
    headers = {"WWW-Authenticate": 'SAML realm="saml-gate"'} if info.status == 401 else None
    return GateRefusal(code, detail, headers, user=user, prefix=prefix)


def use_gate_error_pages(app: FastAPI) -> None:
    """Answer the dependencies' refusals to a browser's page load with the gate's error page."""
    app.add_exception_handler(GateRefusal, _answer_refusal)


async def _answer_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GateRefusal)
    if not is_page_load(request.method, request.headers):
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    detail = exc.body
    user: SamlUser | None = exc.page.get("user")
    prefix: str = exc.page.get("prefix", "/saml")
    root = request.scope.get("root_path", "")
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    links = [
        ("Sign in again", login_url_for(root + prefix + "/login", here)),
        ("Back to the application", root + "/"),
    ]
    if user is not None:
        links.append(("Sign out", root + prefix + "/logout"))
    body = error_body(
        GateError(exc.code),
        detail["hint"],
        show_detail=False,
        extra={"request_id": request.headers.get("x-request-id", "")},
        links=links,
        groups=user.groups if user is not None else None,
    )
    page = HTMLResponse(page_document(detail["message"], body), exc.status_code, exc.headers)
    page.headers["cache-control"] = "no-store"
    return page


require_user: Final = SamlSession()
"""``Depends(require_user)``: the signed-in :class:`SamlUser`, or 401."""

CurrentUser = Annotated[SamlUser, Security(require_user)]
"""A path-operation parameter type: ``async def me(user: CurrentUser)``."""


async def optional_user(connection: HTTPConnection) -> SamlUser | None:
    """The signed-in person, or None on public paths (never refuses)."""
    user = connection.scope.get("user")
    return user if isinstance(user, SamlUser) else None


OptionalUser = Annotated[SamlUser | None, Depends(optional_user)]


def require_groups(*groups: str) -> Callable[..., Awaitable[SamlUser]]:
    """A dependency requiring membership of any one of ``groups`` (403 otherwise)."""
    if not groups or not all(isinstance(g, str) and g for g in groups):
        raise ValueError("require_groups needs at least one group name")
    scopes = ["group:" + g for g in groups]

    member = Security(require_user, scopes=scopes)

    # A default rather than Annotated: annotations are strings here, and ``member`` is local.
    async def member_of_groups(user: SamlUser = member) -> SamlUser:
        return user

    member_of_groups.__name__ = "require_groups_" + "_".join(groups)
    return member_of_groups
