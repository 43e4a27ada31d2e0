"""Paths: every reading of the request target on which the gate and an app could differ.

``;`` parameters (servlet containers drop them), percent-encoded separators and dots (decoded
by some, not by others), dot segments, repeated slashes, backslashes (``/`` to some servers),
trailing dots and spaces, case, absolute-form targets, ``*``, very long and non-UTF-8 paths,
fragments (an HTTP client drops them before forwarding). The rules and apps are case-sensitive:
``/ADMIN/`` is another resource to every target here, so it is judged by the oracle only.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    BAD,
    EVERY,
    FORBIDDEN,
    LOGIN,
    Expect,
    Registry,
    http,
    served,
    status,
)

R = Registry("paths", EVERY)


def add(
    slug: str,
    target: bytes | str,
    expect: Expect,
    who: str = "users",
    method: str = "GET",
    title: str | None = None,
) -> None:
    text = target if isinstance(target, str) else target.decode("latin-1")
    R.add(
        slug,
        title or f"{method} {text[:80]} as {who}",
        http(method, target),
        who=who,
        expect=expect,
    )


# ---------------------------------------------------------------- benign controls
add("control-admin", "/admin/users", served("admin"), who="admins")
add("control-admin-bare", "/admin", served("admin"), who="admins")
add("control-api-get", "/api/items", served("api"))
add("control-api-post-editor", "/api/items", served("api"), who="editors", method="POST")
add("control-static-anon", "/static/a.css", served("static"), who="anon")
add("control-health-anon", "/health", served("health"), who="anon")
add("control-docs", "/docs/handbook", served("docs"))
add("control-home", "/", served("home"))
add("control-report-not-number", "/reports/x7", served("page"))
add("control-admin-anon", "/admin/users", LOGIN, who="anon")
add("control-page-anon", "/page", LOGIN, who="anon")
add("control-admin-users", "/admin/users", FORBIDDEN)
add("control-reports-admin", "/reports/7", FORBIDDEN, who="admins")
add("control-api-post-users", "/api/items", FORBIDDEN, method="POST")

# ---------------------------------------------------------------- ';' path parameters
for slug, target in [
    ("semicolon-segment", "/admin;x/users"),
    ("semicolon-empty", "/admin;/users"),
    ("jsessionid", "/admin;jsessionid=1/users"),
    ("semicolon-root-segment", "/;/admin/users"),
    ("semicolon-end", "/admin;x"),
    ("semicolon-last-segment", "/admin/users;x"),
    ("semicolon-reports", "/reports/7;x"),
    ("semicolon-sub", "/sub;x/admin/panel"),
    ("semicolon-dotdot", "/static;/../admin/users"),
    ("dotdot-semicolon", "/admin/..;/admin/users"),
    ("static-dotdot-semicolon", "/static/..;/admin/users"),
]:
    add(slug, target, BAD)
add("semicolon-api-post", "/api;x/items", BAD, method="POST")
add("semicolon-docs-delete", "/docs;x/handbook", BAD, method="DELETE")
add("semicolon-anon", "/admin;x/users", BAD, who="anon")
add("jsessionid-static-anon", "/static/a.css;jsessionid=1", BAD, who="anon")

# ---------------------------------------------------------------- percent-encoding
add("encoded-letter", "/%61dmin/users", FORBIDDEN)
add("encoded-letter-inner", "/adm%69n/users", FORBIDDEN)
add("encoded-letter-upper-hex", "/%61%64%6D%69%6E/users", FORBIDDEN)
add("encoded-letter-api-post", "/%61pi/items", FORBIDDEN, method="POST")
add("encoded-digit-reports", "/reports/%37", FORBIDDEN)
add("encoded-upper-letters", "/%41DMIN/users", Expect("any"))
for slug, target in [
    ("encoded-slash", "/admin%2Fusers"),
    ("encoded-slash-lower", "/admin%2fusers"),
    ("encoded-slash-first", "/%2Fadmin/users"),
    ("encoded-slash-dotdot", "/static%2F..%2Fadmin/users"),
    ("dotdot-encoded-slash", "/static/..%2Fadmin/users"),
    ("dotdot-encoded-slash-lower", "/static/..%2fadmin"),
    ("encoded-backslash", "/admin%5Cusers"),
    ("encoded-backslash-lower", "/admin%5cusers"),
    ("encoded-backslash-dotdot", "/static%5C..%5Cadmin/users"),
    ("encoded-semicolon", "/admin%3Bx/users"),
    ("encoded-semicolon-lower", "/admin%3bx/users"),
    ("encoded-dots", "/static/%2e%2e/admin/users"),
    ("encoded-dots-upper", "/static/%2E%2E/admin/users"),
    ("encoded-half-dots", "/static/.%2e/admin/users"),
    ("encoded-dot-segment", "/%2e/admin/users"),
    ("encoded-dot-in-name", "/static/a%2ecss"),
    ("double-encoded-dots", "/static/%252e%252e/admin/users"),
    ("double-encoded-slash", "/static/..%252Fadmin/users"),
    ("double-encoded-admin-slash", "/admin%252Fusers"),
    ("double-encoded-letter", "/%2561dmin/users"),
    ("encoded-nul", "/admin%00/users"),
    ("encoded-nul-dotdot", "/static/%00/../admin/users"),
]:
    add(slug, target, BAD)
add("encoded-slash-api-post", "/api%2Fitems", BAD, method="POST")
add("encoded-nul-static-anon", "/static/a.css%00.png", BAD, who="anon")
add("encoded-dots-anon", "/static/%2e%2e/admin/users", BAD, who="anon")
add("encoded-percent-anon", "/static/%25", BAD, who="anon")

# ---------------------------------------------------------------- dot segments
for slug, target in [
    ("dot-first", "/./admin/users"),
    ("dotdot-from-static", "/static/../admin/users"),
    ("dot-dotdot-from-static", "/static/./../admin/users"),
    ("dot-inside", "/admin/./users"),
    ("dotdot-twice", "/static/x/../../admin/users"),
    ("dotdot-above-root", "/static/../../admin"),
    ("dotdot-alone", "/.."),
    ("dotdot-trailing", "/static/.."),
    ("dotdot-many", "/static/" + "../" * 200 + "admin/users"),
]:
    add(slug, target, BAD)
add("dotdot-anon", "/static/../admin/users", BAD, who="anon")
add("three-dots", "/static/.../admin/users", Expect("any"))

# ---------------------------------------------------------------- slashes and backslashes
add("double-slash", "//admin/users", FORBIDDEN)
add("many-slashes", "///admin///users", FORBIDDEN)
add("inner-double-slash", "/admin//users", FORBIDDEN)
add("double-slash-reports", "//reports/7", FORBIDDEN)
add("double-slash-api-post", "//api/items", FORBIDDEN, method="POST")
add("double-slash-anon", "//admin/users", LOGIN, who="anon")
add("double-slash-host-like", "//127.0.0.1/admin/users", Expect("any"))
add("backslash", b"/admin\\users", FORBIDDEN)
add("backslash-dotdot", b"/static\\..\\admin\\users", BAD)
add("dotdot-backslash", b"/static/..\\admin/users", BAD)
add("backslash-dotdot-anon", b"/static\\..\\admin", BAD, who="anon")
add("backslash-first", b"\\admin\\users", BAD)

# ---------------------------------------------------------------- trailing dots, spaces, case
add("trailing-dot-segment", "/admin./users", Expect("any"))
add("trailing-dot", "/admin.", Expect("any"))
add("trailing-dot-inside-admin", "/admin/users.", FORBIDDEN)
add("encoded-space", "/admin%20/users", Expect("any"))
add("encoded-tab", "/admin%09/users", BAD)
add("raw-space", "/admin /users", BAD)
add(
    "reports-trailing-slash",
    "/reports/7/",
    Expect("any"),
    title="GET /reports/7/ (Spring matches /reports/{id} with a trailing slash)",
)
add("reports-trailing-dot", "/reports/7.", Expect("any"))
add("reports-encoded-space", "/reports/7%20", Expect("any"))
add("upper-case", "/ADMIN/users", Expect("any"))
add("title-case", "/Admin/users", Expect("any"))
add("mixed-case", "/aDmIn/", Expect("any"))

# ---------------------------------------------------------------- request-target forms
add("absolute-form", "http://127.0.0.1/admin/users", BAD)
add("absolute-form-dotdot", "http://evil.example/static/../admin", BAD)
add("absolute-form-upper-scheme", "HTTP://x/admin/users", BAD)
add("absolute-form-static-anon", "http://x/static/a.css", BAD, who="anon")
add("asterisk", "*", BAD, who="anon")
add("asterisk-options", "*", BAD, who="anon", method="OPTIONS")
add("relative-target", "admin/users", BAD)

# ---------------------------------------------------------------- long and non-ASCII paths
add("long-static-anon", "/static/" + "a" * 8000, served("static"), who="anon")
add("long-admin", "/admin/" + "a" * 8000, FORBIDDEN)
# h11 refuses a request head over 16 KiB only when it arrives in more than one read (how the
# bytes are split on loopback varies with load): the HTTP server's 400 or the gate's 403.
add("overlong-target", "/admin/" + "a" * 70_000, status(400, 403))
add("raw-utf8", "/admin/\xc3\xa9".encode("latin-1"), BAD)
add("overlong-utf8-dots", "/static/%c0%ae%c0%ae/admin/users", Expect("any"), who="anon")
add("overlong-utf8-slash", "/%c0%afadmin/users", Expect("any"))
add("invalid-utf8-admin", "/admin/%ff", FORBIDDEN)
add("fullwidth-dots", "/static/%ef%bc%8e%ef%bc%8e/admin/users", Expect("any"), who="anon")
add("fullwidth-slash", "/%ef%bc%8fadmin/users", Expect("any"))
add("bidi-mark", "/%e2%80%8eadmin/users", Expect("any"))

# ---------------------------------------------------------------- fragments and queries
add("fragment-admin", "/admin#/users", Expect("any"))
add("fragment-reports", "/reports/7#x", Expect("any"))
add("fragment-dotdot", "/static/x#/../../admin/users", BAD)
add("fragment-static-anon", "/static/#/admin/users", Expect("any"), who="anon")
add("encoded-hash", "/admin%23/users", Expect("any"))
add("encoded-question-mark", "/admin%3F/users", Expect("any"))
add("query-looks-public", "/admin?/static/", FORBIDDEN)
add("query-dotdot-anon", "/static/a.css?/../../admin", served("static"), who="anon")
