"""A FastAPI app behind SamlGate: a page, a JSON API, an admin page and a WebSocket.

Run the demo (embedded development IdP, no Okta needed):   saml-gate demo
Run it behind the gate with flags: ``app`` is the app without a gate, ``saml-gate run`` adds one:
    saml-gate run examples.fastapi_app.main:app --idp-metadata okta-metadata.xml \\
    --base-url https://acme.ngrok.app --secret-key-file secret.txt \\
    --rule '/healthz public' --rule '/admin/ max_authn_age=600'
Or with uvicorn: ``create_app`` adds the gate itself (ACCESS_RULES included), configured by the
environment:
    SAML_GATE_IDP_METADATA=okta-metadata.xml SAML_GATE_BASE_URL=https://acme.ngrok.app \\
    SAML_GATE_SECRET_KEY=... uvicorn --factory examples.fastapi_app.main:create_app

The gate signs everyone in before FastAPI runs. The app reads the person with the dependencies
of ``saml_gate.contrib.fastapi``; ``ACCESS_RULES`` (the gate's policy) keeps ``/healthz``
public and asks for a sign-in at most ten minutes old before ``/admin`` (ForceAuthn, so Okta
applies its MFA policy again), while ``require_groups("admins")`` limits ``/admin`` and
``/api/admin/...`` to the admins group (403 for everyone else).
"""

from __future__ import annotations

import html
import os
from typing import Any, Unpack

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, PlainTextResponse

from saml_gate import GateOptions, SamlGate, sign_out_form
from saml_gate.contrib.fastapi import (
    GATE_RESPONSES,
    CurrentUser,
    require_groups,
    use_gate_error_pages,
)
from saml_gate.policy import Rule

ACCESS_RULES = (
    Rule("/healthz", public=True),
    Rule("/admin/", max_authn_age=600),
)

_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>saml-gate example</title>"
    "<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto}}"
    "th{{text-align:left;padding-right:1rem}}td,th{{padding:.3rem}}</style></head><body>"
    "{body}<p><a href='/'>Home</a> · <a href='/api/me'>/api/me</a> · <a href='/admin'>Admin</a>"
    " · <a href='/docs'>API docs</a> · <a href='/saml/session'>/saml/session</a></p>"
    "{sign_out}</body></html>"
)


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def build_app() -> FastAPI:
    """The application itself: it reads the signed-in person, the gate does the rest."""
    app = FastAPI(title="saml-gate FastAPI example")
    use_gate_error_pages(app)  # a browser refused by require_groups gets the gate's page

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, user: CurrentUser) -> str:
        rows = [
            ("Email", user.email or ""),
            ("Name", user.name or ""),
            ("NameID", user.name_id),
            ("Groups", ", ".join(user.groups) or "(none)"),
            ("Session expires", user.expires.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ]
        return _PAGE.format(
            body=f"<h1>Hello, {html.escape(user.display_name)}</h1>"
            f"<p>You reached this page through SAML single sign-on.</p>{_table(rows)}",
            sign_out=sign_out_form(request),  # one click, no confirmation page
        )

    @app.get(
        "/admin", response_class=HTMLResponse, dependencies=[Depends(require_groups("admins"))]
    )
    async def admin(request: Request, user: CurrentUser) -> str:
        return _PAGE.format(
            body="<h1>Admin</h1><p>Only the admins group sees this page, and only with a"
            f" sign-in less than ten minutes old.</p>{_table([('Signed in as', user.name_id)])}",
            sign_out=sign_out_form(request),
        )

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    api = APIRouter(prefix="/api", tags=["api"], responses=GATE_RESPONSES)

    @api.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        """Who is signed in (JSON)."""
        return user.as_dict()

    @api.get("/admin/stats", dependencies=[Depends(require_groups("admins"))])
    async def admin_stats(user: CurrentUser) -> dict[str, Any]:
        """An admins-only JSON route."""
        return {"requested_by": user.name_id, "groups": list(user.groups)}

    app.include_router(api)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, user: CurrentUser) -> None:
        """Greets the signed-in person, then echoes messages (refused before accept if signed
        out: the gate answers the handshake with 401)."""
        await websocket.accept()
        await websocket.send_json({"hello": user.name_id, "groups": list(user.groups)})
        async for text in websocket.iter_text():
            await websocket.send_text(f"{user.display_name}: {text}")

    return app


#: The app without a gate, for ``saml-gate run examples.fastapi_app.main:app`` (which puts one in
#: front). Served alone it signs no one in: every page but /healthz answers 401.
app = build_app()


def create_app(**gate_options: Unpack[GateOptions]) -> FastAPI:
    """The app behind the gate; options not given are read from SAML_GATE_* variables.

    ``ACCESS_RULES`` apply unless rules come from elsewhere: ``access_rules`` given here, the
    environment, or a configuration file (``config_file`` here, ``--config``,
    ``SAML_GATE_CONFIG_FILE``), whose ``[[rules]]`` a keyword would otherwise override.
    """
    rules_elsewhere = (
        "access_rules" in gate_options
        or gate_options.get("config_file")
        or os.environ.get("SAML_GATE_ACCESS_RULES")
        or os.environ.get("SAML_GATE_CONFIG_FILE")
    )
    if not rules_elsewhere:
        gate_options["access_rules"] = ACCESS_RULES
    app = build_app()
    app.add_middleware(SamlGate, **gate_options)
    return app
