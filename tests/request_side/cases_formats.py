"""Format suffixes: ``/admin.json`` is ``/admin`` to Rails and to Spring MVC before 5.3.

Every Rails route ends in ``(.:format)``: ActionDispatch routes ``/admin.json`` (and
``/admin.json/``, ``/admin.j%73on``) to the ``/admin`` route with ``format=json``, and
``/reports/7.json`` to ``/reports/:id``; the format is what follows the *last* ``.`` of the
last segment (``/admin.tar.gz`` is the glob route's ``admin.tar``). Spring MVC's suffix pattern
matching (on before 5.3) serves ``/admin`` for ``/admin.<anything>`` (the servlet-style upstream
does it). So a rule for ``/x`` or
``/x/`` must also decide ``/x.<ext>``: the gate requires the rule of the literal path *and* the
rule of the path without the suffix (cut at the first and at the last dot).
"""

from __future__ import annotations

from tests.request_side.corpus import EVERY, FORBIDDEN, LOGIN, Registry, http, served

R = Registry("formats", EVERY)

for slug, method, target in [
    ("admin-json", "GET", "/admin.json"),
    ("admin-xml", "GET", "/admin.xml"),
    ("admin-json-trailing-slash", "GET", "/admin.json/"),
    ("admin-encoded-format", "GET", "/admin.j%73on"),
    ("admin-two-suffixes", "GET", "/admin.tar.gz"),
    ("admin-trailing-dot", "GET", "/admin."),
    ("admin-upper-case-format", "GET", "/admin.JSON"),
    ("admin-head", "HEAD", "/admin.json"),
    ("admin-users-json", "GET", "/admin/users.json"),
    ("sub-admin-json", "GET", "/sub/admin.json"),
    ("reports-json", "GET", "/reports/7.json"),
    ("reports-json-trailing-slash", "GET", "/reports/7.json/"),
    ("docs-delete-json", "DELETE", "/docs.json"),
    ("api-post-json", "POST", "/api.json"),
    ("api-put-json", "PUT", "/api.json"),
    ("forms-get-json", "GET", "/forms.json"),
]:
    R.add(slug, f"{method} {target} as users", http(method, target), expect=FORBIDDEN)
R.add(
    "reports-json-admins",
    "GET /reports/7.json as admins (finance only)",
    http("GET", "/reports/7.json"),
    who="admins",
    expect=FORBIDDEN,
)
R.add(
    "admin-json-anon",
    "GET /admin.json anonymously",
    http("GET", "/admin.json"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "health-json-anon",
    "GET /health.json anonymously: /health is public, /health.json is not",
    http("GET", "/health.json"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "forms-post-json-anon",
    "an anonymous POST /forms.json without a body: /forms is public for POST, /forms.json not",
    http("POST", "/forms.json", (b"Content-Length", b"0")),
    who="anon",
    expect=LOGIN,
)

# ---------------------------------------------------------------- benign controls
R.add(
    "admin-json-admins",
    "GET /admin.json as admins",
    http("GET", "/admin.json"),
    who="admins",
    expect=served(),
)
R.add(
    "static-min-js-anon",
    "GET /static/app.min.js anonymously",
    http("GET", "/static/app.min.js"),
    who="anon",
    expect=served("static"),
)
R.add("page-html", "GET /page.html", http("GET", "/page.html"), expect=served())
R.add("docs-pdf", "GET /docs/guide.pdf", http("GET", "/docs/guide.pdf"), expect=served("docs"))
R.add(
    "dot-in-earlier-segment",
    "GET /admin.d/users: only the last segment has a format",
    http("GET", "/admin.d/users"),
    expect=served(),
)
R.add(
    "reports-number-dot-anon",
    "GET /reports/7.json anonymously",
    http("GET", "/reports/7.json"),
    who="anon",
    expect=LOGIN,
)
