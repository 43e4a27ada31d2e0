"""Root paths: a Starlette ``Mount`` and uvicorn's ``root_path``.

Under ``root_path="/prefix"`` a front proxy has stripped ``/prefix`` from the public URL, and
uvicorn puts it back in front of ``scope["path"]``: the app (Starlette, Django's SCRIPT_NAME)
routes the path *without* it, so the rules must match that path, and the gate's own endpoints
(``/prefix/saml/...`` publicly) must answer. The requests below are what reaches uvicorn.
Inside a ``Mount("/sub", ...)`` the gate sees the site's path: the rule for ``/sub/admin/``
applies, whatever the sub-app calls it.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    BAD,
    FORBIDDEN,
    LOGIN,
    ROOT,
    Registry,
    http,
    on_site,
    served,
    status,
    ws_http,
)

R = Registry("root-paths", ROOT)

# ---------------------------------------------------------------- uvicorn root_path
R.add(
    "sign-in",
    "a whole sign-in under root_path: back to the page's public URL, /prefix/page",
    http("GET", "/page", (b"Accept", b"text/html")),
    who="anon",
    expect=on_site("/prefix/page"),
    relay=True,
)
R.add(
    "metadata",
    "GET /saml/metadata under root_path (the gate's endpoint)",
    http("GET", "/saml/metadata"),
    who="anon",
    expect=status(200),
)
R.add(
    "gate-health",
    "GET /saml/health under root_path",
    http("GET", "/saml/health"),
    who="anon",
    expect=status(200),
)
R.add(
    "login",
    "GET /saml/login?return_to=/admin/users under root_path",
    http("GET", "/saml/login?return_to=/admin/users", (b"Accept", b"text/html")),
    who="anon",
    expect=status(303),
)
R.add(
    "static-anon",
    "a public path under root_path",
    http("GET", "/static/a.css"),
    who="anon",
    expect=served("static"),
)
R.add(
    "health-anon",
    "an exact public path under root_path",
    http("GET", "/health"),
    who="anon",
    expect=served("health"),
)
R.add("admin-anon", "GET /admin/ anonymous", http("GET", "/admin/users"), who="anon", expect=LOGIN)
R.add("admin-users", "GET /admin/ as users", http("GET", "/admin/users"), expect=FORBIDDEN)
R.add(
    "admin-admins",
    "GET /admin/ as admins",
    http("GET", "/admin/users"),
    who="admins",
    expect=served("admin"),
)
R.add("api-post-users", "POST /api/ as users", http("POST", "/api/items"), expect=FORBIDDEN)
R.add("api-get-users", "GET /api/ as users", http("GET", "/api/items"), expect=served("api"))
R.add("reports-users", "a regex rule under root_path", http("GET", "/reports/7"), expect=FORBIDDEN)
R.add(
    "docs-delete-users",
    "DELETE /docs/ as users",
    http("DELETE", "/docs/handbook"),
    expect=FORBIDDEN,
)
R.add("page-users", "the default rule under root_path", http("GET", "/page"), expect=served("page"))
R.add("page-anon", "the default rule, anonymous", http("GET", "/page"), who="anon", expect=LOGIN)
R.add(
    "prefix-not-stripped",
    "the public URL sent as is (/prefix twice in scope path)",
    http("GET", "/prefix/admin/users"),
)
R.add("semicolon-under-root", "';' under root_path", http("GET", "/admin;x/users"), expect=BAD)
R.add(
    "dotdot-under-root",
    "'..' under root_path",
    http("GET", "/static/../admin/users"),
    who="anon",
    expect=BAD,
)
R.add(
    "ws-admin-users",
    "WebSocket to /admin/ws under root_path",
    ws_http("/admin/ws"),
    targets=("starlette-root",),
    ws=True,
    expect=FORBIDDEN,
)

# ---------------------------------------------------------------- Starlette Mount("/sub")
M = Registry("root-paths")
M.add(
    "mount-control",
    "a page of the mounted sub-app",
    http("GET", "/sub/page"),
    expect=served("sub"),
    targets=("starlette",),
)
M.add(
    "mount-served-by-all",
    "/sub/page on every target (a plain page elsewhere)",
    http("GET", "/sub/page"),
    expect=served(),
)
M.add(
    "mount-admin-users",
    "the /sub/admin/ rule inside the mount",
    http("GET", "/sub/admin/panel"),
    expect=FORBIDDEN,
)
M.add(
    "mount-admin-admins",
    "the /sub/admin/ rule, as admins",
    http("GET", "/sub/admin/panel"),
    who="admins",
    expect=served(),
)
M.add(
    "mount-admin-anon",
    "the mount anonymous",
    http("GET", "/sub/admin/panel"),
    who="anon",
    expect=LOGIN,
)
M.add(
    "mount-double-slash", "//sub//admin/panel", http("GET", "//sub//admin/panel"), expect=FORBIDDEN
)
M.add("mount-dotdot", "/sub/x/../admin/panel", http("GET", "/sub/x/../admin/panel"), expect=BAD)
M.add("mount-encoded-slash", "/sub%2Fadmin/panel", http("GET", "/sub%2Fadmin/panel"), expect=BAD)
M.add(
    "mount-ws-admin",
    "WebSocket into the mount's /admin/",
    ws_http("/sub/admin/ws"),
    targets=("starlette",),
    ws=True,
    expect=FORBIDDEN,
)
R.cases.extend(M.cases)
