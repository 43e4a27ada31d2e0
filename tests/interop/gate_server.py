"""The gate as a user runs it: a small app behind SamlGate, served by a real uvicorn server."""

from __future__ import annotations

import html
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.interop.servers import UvicornThread

SECRET = "interop-test-secret-0123456789-abcdefghijkl"


async def page(request: Request) -> HTMLResponse:
    """The protected page: who is signed in and in which groups."""
    user = request.user
    groups = "".join(f"<li>{html.escape(g)}</li>" for g in user.groups)
    return HTMLResponse(
        "<!doctype html><html><head><title>Acme internal app</title></head><body>"
        f"<h1 id=greeting>Hello, {html.escape(user.display_name)}</h1>"
        f"<p>Signed in as <b id=name-id>{html.escape(user.name_id)}</b>"
        f" (email <span id=email>{html.escape(user.email or '')}</span>)</p>"
        f"<p>Groups:</p><ul id=groups>{groups}</ul>"
        f"<p class=issuer>Identity provider: {html.escape(user.issuer)}</p>"
        f"<p class=path>Page: {html.escape(request.url.path)}</p></body></html>"
    )


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "name_id": user.name_id,
            "email": user.email,
            "name": user.name,
            "groups": list(user.groups),
            "issuer": user.issuer,
            "scheme": request.url.scheme,
        }
    )


async def echo(request: Request) -> JSONResponse:
    """What the server told the app about the request (a public path: no sign-in needed)."""
    client = request.client
    return JSONResponse(
        {
            "scheme": request.url.scheme,
            "host": request.headers.get("host"),
            "client": client.host if client else None,
            "x_forwarded_host": request.headers.get("x-forwarded-host"),
            "x_forwarded_for": request.headers.get("x-forwarded-for"),
        }
    )


def protected_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/public/echo", echo),
            Route("/", page),
            Route("/{rest:path}", page),
        ]
    )


@dataclass
class GateServer:
    gate: SamlGate
    server: UvicornThread
    base_url: str

    @property
    def local_url(self) -> str:
        """Where the gate's uvicorn listens (what the proxy forwards to)."""
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def acs_url(self) -> str:
        return self.gate.settings.acs_url

    @property
    def entity_id(self) -> str:
        return self.gate.settings.entity_id

    def stop(self) -> None:
        self.server.stop()


def start_gate(
    sock: socket.socket,
    *,
    base_url: str,
    idp_metadata: str,
    sp_keys: KeyPair,
    state_dir: Path,
    **settings: Any,
) -> GateServer:
    """The gate around :func:`protected_app` on ``sock``; ``settings`` are GateSettings fields."""
    gate = SamlGate(
        protected_app(),
        idp_metadata=idp_metadata,
        base_url=base_url,
        secret_key=SECRET,
        sp_key=sp_keys.key_pem.decode(),
        sp_cert=sp_keys.cert_pem.decode(),
        state_dir=str(state_dir),
        **settings,
    )
    server = UvicornThread(sock).start(gate)
    return GateServer(gate=gate, server=server, base_url=base_url)
