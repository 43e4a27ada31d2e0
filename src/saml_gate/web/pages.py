"""What people see: error pages and JSON bodies, the sign-out pages, the setup sheet.

All of the gate's HTML is written here, and everything put into it is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from saml_gate.errors import GateError

if TYPE_CHECKING:
    from saml_gate.ops.setup_sheet import SetupSheet

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f6f7f9;color:#1d2330;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:10px;box-shadow:0 2px 12px #0002;padding:2rem 2.5rem;
max-width:40rem}
h1{font-size:1.3rem;margin-top:0}code{background:#eef;padding:.1rem .3rem;border-radius:4px}
.hint{color:#37425a}.detail{background:#fff6e0;border-left:4px solid #e0a000;padding:.6rem .8rem;
white-space:pre-wrap;word-break:break-word}.muted{color:#667;font-size:.85rem}
table.sheet th{text-align:left;vertical-align:top;padding:.4rem 1rem .4rem 0;white-space:nowrap}
table.sheet td{padding:.4rem 0}
pre{background:#f3f4f7;padding:.6rem;overflow-x:auto;font-size:.75rem}
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #345;
background:#2b4c8c;color:#fff;cursor:pointer}
"""


def html_page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    all_headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    all_headers.update(headers or {})
    return HTMLResponse(document, status_code=status, headers=all_headers)


def error_response(
    error: GateError,
    *,
    wants_json: bool,
    show_detail: bool,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    hint_context: Mapping[str, str] | None = None,
) -> Response:
    info = error.info
    hint = error.hint(hint_context or {})
    if wants_json:
        body: dict[str, Any] = {"error": error.code, "message": info.title, "hint": hint}
        if show_detail and error.detail:
            body["detail"] = error.detail
        body.update(extra or {})
        all_headers = {"Cache-Control": "no-store"}
        all_headers.update(headers or {})
        return JSONResponse(body, status_code=error.status, headers=all_headers)
    detail = (
        f"<p class=detail>{html.escape(error.detail)}</p>" if show_detail and error.detail else ""
    )
    login = ""
    if extra and "login_url" in extra:
        login = f"<p><a href='{html.escape(str(extra['login_url']))}'>Sign in again</a></p>"
    body_html = (
        f"<h1>{html.escape(info.title)}</h1>"
        f"<p class=hint>{html.escape(hint)}</p>{detail}{login}"
        f"<p class=muted>Error code: <code>{html.escape(error.code)}</code></p>"
    )
    return html_page(info.title, body_html, status=error.status, headers=headers)


def sign_out_form(action: str, display_name: str, token: str) -> Response:
    """The sign-out confirmation: a POST form carrying the session-bound token."""
    return html_page(
        "Sign out",
        f"<h1>Sign out of this application?</h1>"
        f"<p>Signed in as <b>{html.escape(display_name)}</b>.</p>"
        f"<form method=post action='{html.escape(action)}'>"
        f"<input type=hidden name=token value='{html.escape(token)}'>"
        f"<button type=submit>Sign out</button></form>",
    )


def signed_out_page(
    login_url: str, note: str = "You may still be signed in at your identity provider."
) -> Response:
    """``note`` is HTML: escape what goes into it."""
    return html_page(
        "Signed out",
        f"<h1>You are signed out</h1><p>Your session in this application has ended. {note}</p>"
        f"<p><a href='{html.escape(login_url)}'>Sign in again</a></p>",
    )


def idp_logout_note(success: bool, status: str, partial: bool) -> str:
    """What the signed-out page says about the IdP's answer to our LogoutRequest (HTML)."""
    if success:
        return "You are also signed out at your identity provider."
    return (
        "Your identity provider could not end every session"
        f" (status {html.escape(status)}{', partial' if partial else ''})."
    )


def setup_page(sheet: SetupSheet) -> Response:
    return html_page("Okta setup", sheet.as_html())
