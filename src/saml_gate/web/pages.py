"""What people see: error pages and JSON bodies, the sign-out pages, the setup sheet.

All of the gate's HTML is written here, and everything put into it is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import HTMLResponse, JSONResponse, Response

from saml_gate.errors import GateError

if TYPE_CHECKING:
    from saml_gate.ops.setup_sheet import SetupSheet

_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f6f7f9;color:#1d2330;
margin:0;padding:1rem;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:10px;box-shadow:0 2px 12px #0002;padding:2rem 2.5rem;
width:100%;max-width:40rem;min-width:0;overflow-wrap:anywhere}
h1{font-size:1.3rem;margin-top:0}code{background:#eef;padding:.1rem .3rem;border-radius:4px}
.hint{color:#37425a}.detail{background:#fff6e0;border-left:4px solid #e0a000;padding:.6rem .8rem;
white-space:pre-wrap;word-break:break-word}.muted{color:#667;font-size:.85rem}
.links a{display:inline-block;margin:0 1.2rem .4rem 0}
table.sheet{border-collapse:collapse;width:100%}
table.sheet th{text-align:left;vertical-align:top;padding:.4rem 1rem .4rem 0}
table.sheet td{padding:.4rem 0}table.sheet code{word-break:break-all}
pre{background:#f3f4f7;padding:.6rem;overflow-x:auto;font-size:.75rem;max-width:100%}
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #345;
background:#2b4c8c;color:#fff;cursor:pointer}
@media (max-width:600px){body{padding:.5rem}main{padding:1.2rem 1rem}
table.sheet th,table.sheet td{display:block;padding:.2rem 0}table.sheet td{padding-bottom:.7rem}}
"""


#: A link on an error page: (label, URL).
Link = tuple[str, str]


def page_document(title: str, body: str) -> str:
    """A whole HTML document in the gate's style; ``body`` is HTML (escape what goes in)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def html_page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    all_headers.update(headers or {})
    return HTMLResponse(page_document(title, body), status_code=status, headers=all_headers)


def error_response(
    error: GateError,
    *,
    wants_json: bool,
    show_detail: bool,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    hint_context: Mapping[str, str] | None = None,
    links: Sequence[Link] = (),
    groups: Sequence[str] | None = None,
) -> Response:
    """The error as JSON (``extra`` added to the body) or as a page with ``links`` (or a "Sign
    in again" link to ``extra["login_url"]``), the request ID and the person's ``groups``."""
    info = error.info
    hint = error.hint(hint_context or {})
    extra = extra or {}
    if wants_json:
        body: dict[str, Any] = {"error": error.code, "message": info.title, "hint": hint}
        if show_detail and error.detail:
            body["detail"] = error.detail
        if groups is not None:
            body["groups"] = list(groups)
        body.update(extra)
        all_headers = {"Cache-Control": "no-store"}
        all_headers.update(headers or {})
        return JSONResponse(body, status_code=error.status, headers=all_headers)
    return html_page(
        info.title,
        error_body(error, hint, show_detail=show_detail, extra=extra, links=links, groups=groups),
        status=error.status,
        headers=headers,
    )


def error_body(
    error: GateError,
    hint: str,
    *,
    show_detail: bool,
    extra: Mapping[str, Any],
    links: Sequence[Link] = (),
    groups: Sequence[str] | None = None,
) -> str:
    """The HTML of an error page (also used by the framework integrations)."""
    detail = (
        f"<p class=detail>{html.escape(error.detail)}</p>" if show_detail and error.detail else ""
    )
    if not links and "login_url" in extra:
        links = [("Sign in again", str(extra["login_url"]))]
    shown = "".join(
        f"<a href='{html.escape(url)}'>{html.escape(label)}</a>" for label, url in links
    )
    nav = f"<p class=links>{shown}</p>" if shown else ""
    who = ""
    if groups is not None:
        names = ", ".join(f"<code>{html.escape(g)}</code>" for g in groups) or "none"
        who = (
            f"<p class=groups>Your groups, as the IdP sent them (names are case-sensitive):"
            f" {names}</p>"
        )
    request_id = extra.get("request_id")
    rid = f" · Request ID: <code>{html.escape(str(request_id))}</code>" if request_id else ""
    return (
        f"<h1>{html.escape(error.info.title)}</h1>"
        f"<p class=hint>{html.escape(hint)}</p>{detail}{who}{nav}"
        f"<p class=muted>Error code: <code>{html.escape(error.code)}</code>{rid}</p>"
    )


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
    """``note`` is HTML: escape what goes into it (the notes used are fixed texts)."""
    return html_page(
        "Signed out",
        f"<h1>You are signed out</h1><p>Your session in this application has ended. {note}</p>"
        f"<p><a href='{html.escape(login_url)}'>Sign in again</a></p>",
    )


#: What the signed-out page says after the IdP answered our LogoutRequest (``?done=``).
IDP_LOGOUT_NOTES: Final[Mapping[str, str]] = {
    "idp": "You are also signed out at your identity provider.",
    "idp_failed": "Your identity provider could not end every session (its answer is in the"
    " gate's log).",
}


def setup_page(sheet: SetupSheet) -> Response:
    return html_page("IdP setup", sheet.as_html())
