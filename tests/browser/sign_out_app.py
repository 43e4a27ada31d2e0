"""The app of tests/browser/test_sign_out_click.py: a page with the one-click sign-out button,
and a form that, like Django admin's "Log out", posts to the app, which answers with a 307 to
the gate's sign-out (saml_gate.contrib.django.sign_out_at_the_gate does that for Django)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from saml_gate import sign_out_form


async def home(request: Request) -> HTMLResponse:
    who = getattr(request.user, "email", None) or "nobody"
    return HTMLResponse(
        f"<p id=who>{who}</p>{sign_out_form(request, 'One click')}"
        "<form method=post action='/app-logout'><button id=app-logout>Log out</button></form>"
    )


async def app_logout(request: Request) -> RedirectResponse:
    return RedirectResponse("/saml/logout", status_code=307)


app = Starlette(routes=[Route("/", home), Route("/app-logout", app_logout, methods=["POST"])])
