"""A FastAPI app behind SamlGate.

Run the demo (embedded development IdP, no Okta needed):   saml-gate demo
Run it against a real IdP (Okta):
    SAML_GATE_IDP_METADATA=okta-metadata.xml SAML_GATE_BASE_URL=https://acme.ngrok.app \\
    SAML_GATE_SECRET_KEY=... uvicorn --factory examples.fastapi_app.main:create_app
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from saml_gate import SamlGate, SamlUser


def build_app() -> FastAPI:
    """The application itself, unaware of SAML except for reading ``request.user``."""
    app = FastAPI(title="saml-gate FastAPI example")

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> str:
        user: SamlUser = request.user
        groups = ", ".join(user.groups) or "(none)"
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in (
                ("Email", user.email or ""),
                ("Name", user.name or ""),
                ("NameID", user.name_id),
                ("Groups", groups),
                ("Session expires", user.expires.strftime("%Y-%m-%d %H:%M:%S UTC")),
            )
        )
        return (
            "<!doctype html><html><head><meta charset=utf-8><title>saml-gate example</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto}"
            "th{text-align:left;padding-right:1rem}td,th{padding:.3rem}</style></head><body>"
            f"<h1>Hello, {html.escape(user.display_name)}</h1>"
            f"<p>You reached this page through SAML single sign-on.</p><table>{rows}</table>"
            "<p><a href='/api/me'>/api/me</a> · <a href='/saml/session'>/saml/session</a> ·"
            " <a href='/saml/logout'>Sign out</a></p></body></html>"
        )

    @app.get("/api/me")
    async def me(request: Request) -> dict[str, Any]:
        user: SamlUser = request.user
        return user.as_dict()

    return app


def create_app(**gate_options: Any) -> FastAPI:
    """The app behind the gate; options not given are read from SAML_GATE_* variables."""
    app = build_app()
    app.add_middleware(SamlGate, **gate_options)
    return app
