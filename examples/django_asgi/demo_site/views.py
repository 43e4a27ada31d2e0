"""Views reading the signed-in person from the ASGI scope that SamlGate filled in.

Django's ``ASGIRequest`` keeps the ASGI scope as ``request.scope``; the gate stores a
:class:`saml_gate.SamlUser` under ``"user"`` (or an unauthenticated user on ``public_paths``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from saml_gate import SamlUser

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def saml_user(request: HttpRequest) -> SamlUser | None:
    """The signed-in person, or None (a public path, or not served through the gate)."""
    scope: dict[str, Any] = getattr(request, "scope", {})
    user = scope.get("user")
    return user if isinstance(user, SamlUser) else None


async def home(request: HttpRequest) -> HttpResponse:
    user = saml_user(request)
    context: dict[str, Any] = {"user": user}
    if user is not None:
        context.update(
            groups=list(user.groups),
            authenticated_at=_format(user.authenticated_at) if user.authenticated_at else None,
            expires=_format(user.expires_at),
        )
    # Django templates escape every {{ value }}: names and attributes come from the IdP.
    return render(request, "demo_site/home.html", context)


async def me(request: HttpRequest) -> JsonResponse:
    user = saml_user(request)
    if user is None:
        return JsonResponse({"error": "not_authenticated"}, status=401)
    return JsonResponse({**user.as_dict(), "served_by": "django"})


def _format(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_TIME_FORMAT)
