"""The demo's app when no example app is at hand (``saml-gate demo`` outside a checkout): one
page saying who signed in, with a sign-out link; JSON for API clients."""

from __future__ import annotations

import html
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from saml_gate.web.pages import html_page


def whoami_app(prefix: str = "/saml") -> Starlette:
    """A Starlette app answering ``/`` with the signed-in person (``request.user``)."""

    async def whoami(request: Request) -> Response:
        user = request.user
        facts = user.as_dict()
        if "json" in request.headers.get("accept", "") and "html" not in request.headers.get(
            "accept", ""
        ):
            return JSONResponse(facts)
        root = request.scope.get("root_path", "")
        return html_page("Signed in", _page(facts, root + prefix))

    return Starlette(routes=[Route("/", whoami)])


def _page(facts: dict[str, Any], prefix: str) -> str:
    e = html.escape
    groups = "".join(f"<li><code>{e(g)}</code></li>" for g in facts["groups"]) or "<li>none</li>"
    attributes = "".join(
        f"<tr><th>{e(name)}</th><td>{e(', '.join(values))}</td></tr>"
        for name, values in sorted(facts["attributes"].items())
    )
    rows = "".join(
        f"<tr><th>{e(label)}</th><td>{e(str(facts[key] or '—'))}</td></tr>"
        for label, key in (
            ("NameID", "name_id"),
            ("Email", "email"),
            ("Name", "name"),
            ("IdP", "issuer"),
            ("Signed in at", "authenticated_at"),
            ("Session ends", "expires_at"),
        )
    )
    return (
        f"<h1 id=greeting>Hello, {e(facts['name'] or facts['email'] or facts['name_id'])}</h1>"
        "<p>saml-gate signed you in; this page is the app behind it.</p>"
        f"<table class=sheet>{rows}</table>"
        f"<h2>Groups</h2><ul id=groups>{groups}</ul>"
        + (f"<h2>Attributes</h2><table class=sheet>{attributes}</table>" if attributes else "")
        + f"<p class=links><a href='{e(prefix)}/logout'>Sign out</a>"
        f"<a href='{e(prefix)}/session'>Session as JSON</a>"
        f"<a href='{e(prefix)}/setup'>Setup sheet</a></p>"
    )
