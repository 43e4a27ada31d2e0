"""The development IdP's HTML pages: the index, the sign-in forms, the page that posts the
Response to the app, and error pages. All carry a "development only" banner and strict headers."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence
from typing import Final

from starlette.responses import HTMLResponse

from saml_gate.devidp.inputs import AuthnRequest
from saml_gate.devidp.problems import Problem
from saml_gate.devidp.users import DevUser

_AUTO_SUBMIT_JS: Final = 'document.getElementById("saml-post").submit();'
_AUTO_SUBMIT_HASH: Final = base64.b64encode(
    hashlib.sha256(_AUTO_SUBMIT_JS.encode()).digest()
).decode()
_SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The auto-submit script is allowed by hash: no other script can run on these pages.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_AUTO_SUBMIT_HASH}'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_CSS: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
.banner{background:#b91c1c;color:#fff;padding:14px 20px;font-size:1.15em;font-weight:700;
text-align:center;letter-spacing:.02em}
main{max-width:760px;margin:24px auto;padding:0 20px}
h1{font-size:1.5em}h2{font-size:1.1em;margin-top:0}
code{background:#eaeef2;padding:1px 4px;border-radius:4px;word-break:break-all}
.users{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
button{font:inherit;cursor:pointer;border:1px solid #8c959f;border-radius:8px;background:#fff;
padding:8px 14px}
button.user{text-align:left;min-width:200px;padding:12px 16px}
button:hover{border-color:#0969da;background:#f0f6ff}
.groups{color:#57606a;font-size:.9em}
form.custom{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;
margin-top:16px}
label{display:block;margin:8px 0}
input{font:inherit;display:block;width:100%;box-sizing:border-box;padding:6px 8px;
margin-top:4px;border:1px solid #8c959f;border-radius:6px}
"""


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _html_page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · Development IdP</title><style>{_CSS}</style></head><body>"
        '<div class="banner" role="alert">Development IdP — for local development only, '
        "never in production</div>"
        f"<main>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=dict(_SECURITY_HEADERS))


def _hidden_inputs(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items()
    )


def index_page(
    *,
    entity_id: str,
    sp_entity_id: str,
    sp_acs_url: str,
    initiate_url: str,
    metadata_url: str,
    session_url: str = "",
) -> HTMLResponse:
    body = (
        "<h1>Development IdP</h1>"
        f"<p>Entity ID: <code>{_e(entity_id)}</code></p>"
        f"<p>Trusted SP: <code>{_e(sp_entity_id)}</code>, "
        f"ACS <code>{_e(sp_acs_url)}</code></p>"
        "<ul>"
        f'<li><a href="{_e(initiate_url)}">Sign in to the app (IdP-initiated)</a></li>'
        f'<li><a href="{_e(metadata_url)}">IdP metadata</a></li>'
        + (
            f'<li><a href="{_e(session_url)}">IdP session (re-assertion: change the groups,'
            " or end it)</a></li>"
            if session_url
            else ""
        )
        + "</ul>"
    )
    return _html_page("Development IdP", body)


def login_page(
    users: Sequence[DevUser],
    authn: AuthnRequest,
    relay_state: str | None,
    *,
    sp_entity_id: str,
    action: str,
) -> HTMLResponse:
    """Who to sign in as, in answer to the SP's AuthnRequest."""
    intro = (
        f"<p>The app <code>{_e(sp_entity_id)}</code> asks who you are "
        f"(request <code>{_e(authn.id)}</code>).</p>"
    )
    if authn.force_authn:
        intro += "<p>The app asked for a fresh sign-in (ForceAuthn).</p>"
    hidden = {"in_response_to": authn.id}
    if relay_state is not None:
        hidden["relay_state"] = relay_state
    return _users_page(
        users, title="Sign in", intro=intro, action=action, hidden=hidden, extra_field=""
    )


def initiate_page(users: Sequence[DevUser], *, action: str) -> HTMLResponse:
    """Who to sign in as, unasked (IdP-initiated), with an optional RelayState."""
    intro = (
        "<p>IdP-initiated sign-in, like clicking the app's tile on the Okta dashboard: "
        "the app receives an unsolicited Response (no InResponseTo). The app must allow "
        "IdP-initiated sign-in.</p>"
    )
    relay = (
        "<label>RelayState (optional, e.g. the path to land on) "
        '<input name="relay_state" maxlength="2048"></label>'
    )
    return _users_page(
        users,
        title="Sign in to the app (IdP-initiated)",
        intro=intro,
        action=action,
        hidden={},
        extra_field=relay,
    )


def _users_page(
    users: Sequence[DevUser],
    *,
    title: str,
    intro: str,
    action: str,
    hidden: Mapping[str, str],
    extra_field: str,
) -> HTMLResponse:
    hidden_html = _hidden_inputs(hidden)
    buttons = []
    for index, user in enumerate(users):
        groups = ", ".join(user.groups) if user.groups else "no groups"
        buttons.append(
            f'<button class="user" type="submit" name="user" value="{index}">'
            f"<strong>{_e(user.name)}</strong><br>{_e(user.email)}<br>"
            f'<span class="groups">{_e(groups)}</span></button>'
        )
    users_form = (
        f'<form method="post" action="{_e(action)}">{hidden_html}{extra_field}'
        f'<div class="users">{"".join(buttons)}</div></form>'
        if buttons
        else ""
    )
    custom_form = (
        f'<form method="post" action="{_e(action)}" class="custom">{hidden_html}'
        "<h2>Or sign in as someone else</h2>"
        '<label>Email <input name="email" type="email" required maxlength="254" '
        'placeholder="dave@example.com"></label>'
        '<label>Display name <input name="name" maxlength="256" placeholder="Dave"></label>'
        '<label>Groups (comma-separated) <input name="groups" '
        'placeholder="users, admins"></label>'
        f"{extra_field}"
        '<button type="submit">Sign in</button></form>'
    )
    body = f"<h1>{_e(title)}</h1>{intro}{users_form}{custom_form}"
    return _html_page(title, body)


def auto_post_page(
    user: DevUser | None, *, acs_url: str, fields: Mapping[str, str]
) -> HTMLResponse:
    """The page whose script posts ``fields`` (SAMLResponse, RelayState) to the SP's ACS;
    ``user`` None: a NoPassive answer (nobody is signed in here)."""
    if user is None:
        heading = (
            "<h1>Nobody is signed in at the development IdP</h1>"
            "<p>Telling the app (NoPassive): it ends the session and signs in again.</p>"
        )
    else:
        groups = ", ".join(user.groups) or "no groups"
        heading = (
            f"<h1>Signing in as {_e(user.name)}</h1><p>{_e(user.email)} &middot; {_e(groups)}</p>"
        )
    body = (
        heading
        + f'<form id="saml-post" method="post" action="{_e(acs_url)}">{_hidden_inputs(fields)}'
        "<p>Sending the SAML Response to the app&hellip; If nothing happens, press "
        '<button type="submit">Continue</button></p></form>'
        f"<script>{_AUTO_SUBMIT_JS}</script>"
    )
    return _html_page("Signing in", body)


def session_page(user: DevUser | None, *, action: str) -> HTMLResponse:
    """The IdP session: who a passive request (the app re-asserting) is answered for, a form
    to change their groups, and a button that ends it (the next passive answer: NoPassive)."""
    if user is None:
        body = (
            "<h1>No IdP session</h1><p>Nobody is signed in at the development IdP: the app's"
            " next re-assertion is answered NoPassive, and its session ends.</p>"
        )
        return _html_page("IdP session", body)
    groups = ", ".join(user.groups)
    body = (
        f"<h1>IdP session: {_e(user.name)}</h1><p>{_e(user.email)}</p>"
        "<p>The app's next re-assertion (reassert_interval) is answered for this person, with"
        " these groups:</p>"
        f'<form method="post" action="{_e(action)}" class="custom">'
        f'<label>Groups (comma-separated) <input name="groups" value="{_e(groups)}"></label>'
        '<button type="submit">Change the groups</button></form>'
        f'<form method="post" action="{_e(action)}"><input type="hidden" name="end" value="1">'
        '<p><button type="submit">End the IdP session</button> (as a sign-out at the IdP or'
        " a deactivation would)</p></form>"
    )
    return _html_page("IdP session", body)


def problem_page(problem: Problem) -> HTMLResponse:
    body = f"<h1>{_e(problem.title)}</h1><p>{_e(problem.detail)}</p>"
    return _html_page(problem.title, body, status=problem.status)
