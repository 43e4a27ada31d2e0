"""The Starlette target: routes that report which resource they served, for any method.

Every answer of an app carries ``X-Served-Resource`` (its name), ``X-Served-Path`` (the site
path it routed, percent-encoded) and ``X-Served-Method``; a WebSocket endpoint accepts and
sends the same report as its first text frame. The gate's own answers carry none of them.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket


def report_headers(resource: str, path: str, method: str) -> dict[str, str]:
    return {
        "X-Served-Resource": resource,
        "X-Served-Path": quote(path, safe=""),
        "X-Served-Method": quote(method, safe=""),
    }


def report_body(resource: str, path: str, method: str) -> dict[str, str]:
    return {"resource": resource, "path": path, "method": method}


class Report:
    """An ASGI endpoint (so Starlette routes every method to it) naming the resource served.

    ``root`` is the server's root_path: uvicorn puts it in front of ``scope["path"]``, and the
    site path of a resource is what follows it (a ``Mount`` leaves ``scope["path"]`` whole)."""

    def __init__(self, resource: str, root: str) -> None:
        self.resource = resource
        self.root = root

    def site_path(self, scope: Scope) -> str:
        path: str = scope["path"]
        return path[len(self.root) :] if self.root and path.startswith(self.root) else path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self.site_path(scope)
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive, send)
            await websocket.accept()
            await websocket.send_text(json.dumps(report_body(self.resource, path, "GET")))
            if b"hold" in scope["query_string"]:  # leave the closing to the client
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
                return
            await websocket.close()
            return
        method = scope["method"]
        response = JSONResponse(
            report_body(self.resource, path, method),
            headers=report_headers(self.resource, path, method),
        )
        await response(scope, receive, send)


def starlette_app(root: str = "") -> Starlette:
    """The resources of the policy, a ``Mount("/sub", ...)`` sub-app and WebSocket routes."""

    def r(name: str) -> Report:
        return Report(name, root)

    sub = Starlette(
        routes=[
            WebSocketRoute("/{rest:path}", r("sub-ws")),
            Route("/{rest:path}", r("sub")),
        ]
    )
    return Starlette(
        routes=[
            Route("/health", r("health")),
            Route("/static/{rest:path}", r("static")),
            Route("/admin", r("admin")),
            WebSocketRoute("/admin/ws", r("admin-ws")),
            Route("/admin/{rest:path}", r("admin")),
            Route("/api/{rest:path}", r("api")),
            Route("/reports/{number:int}", r("reports")),
            Route("/docs/{rest:path}", r("docs")),
            Route("/forms/{rest:path}", r("forms")),
            Mount("/sub", app=sub),
            WebSocketRoute("/ws", r("ws")),
            Route("/", r("home")),
            WebSocketRoute("/{rest:path}", r("page-ws")),
            Route("/{rest:path}", r("page")),
        ]
    )
