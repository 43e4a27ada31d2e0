"""Views reading the signed-in person two ways.

The gate's identity: Django's ``ASGIRequest`` keeps the ASGI scope as ``request.scope``, where the
gate stores a :class:`saml_gate.SamlUser` under ``"user"`` (or an unauthenticated user on
``public_paths``). The Django user: ``saml_gate.contrib.django`` maps that identity to a
``django.contrib.auth`` user, ``await request.auser()`` in async views (``request.user`` in
sync ones).
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
    context: dict[str, Any] = {"user": user, "django_user": await request.auser()}
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
    account = await request.auser()
    django_user = {
        "username": account.get_username(),
        "is_staff": account.is_staff,
        "is_superuser": account.is_superuser,
        "groups": [g.name async for g in account.groups.order_by("name")],
    }
    return JsonResponse({**user.as_dict(), "served_by": "django", "django_user": django_user})


def _format(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_TIME_FORMAT)
