"""A stand-in for the gate's ``/saml/auth`` (the contract, nothing more), so the harness and the
shipped proxy configurations are tested on their own: what each proxy tells the gate, what it
makes of each answer, and what reaches the upstream.

Signed in means a ``stub_session=<name>`` cookie; ``noemail`` is signed in without an email,
``blocked`` is not allowed. Like the gate, a 200 carries the app's ``Cookie``: the request's
Cookie lines joined without the stub's own cookies (``stub_*``), absent when none is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from saml_gate.session.cookies import without_cookies

LOGIN = "http://auth.example.test/saml/login"


@dataclass(frozen=True)
class Asked:
    """What a proxy's sub-request told the gate about the original request."""

    url: str
    method: str
    headers: list[tuple[str, str]]


class StubGate:
    def __init__(self) -> None:
        self.asked: list[Asked] = []
        self.app = Starlette(routes=[Route("/saml/auth", self._auth)])

    async def _auth(self, request: Request) -> Response:
        h = request.headers
        nginx_style = "x-original-url" in h
        if nginx_style:
            url, method = h["x-original-url"], h.get("x-original-method", "")
        else:
            url = f"{h.get('x-forwarded-proto')}://{h.get('x-forwarded-host')}{h.get('x-forwarded-uri')}"
            method = h.get("x-forwarded-method", "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        self.asked.append(Asked(url, method, headers))
        user = request.cookies.get("stub_session")
        if user == "blocked":
            return JSONResponse({"error": "not_allowed"}, status_code=403)
        if user:
            identity = {"X-Forwarded-User": user, "X-Forwarded-Groups": "admins,users"}
            if user != "noemail":
                identity["X-Forwarded-Email"] = f"{user}@example.test"
            identity["X-Saml-Gate-Jwt"] = "stub-token"
            answer = Response(status_code=200, headers=identity)
            app_cookie = without_cookies(
                b"; ".join(v for k, v in request.scope["headers"] if k == b"cookie"), "stub_"
            )
            if app_cookie:
                answer.raw_headers.append((b"cookie", app_cookie))
            return answer
        login = f"{LOGIN}?return_to={quote(url, safe='')}"
        if not nginx_style and "text/html" in h.get("accept", ""):
            return RedirectResponse(login, status_code=302)
        return JSONResponse(
            {"error": "not_authenticated", "login_url": login},
            status_code=401,
        )
