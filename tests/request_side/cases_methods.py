"""Methods: spellings the rules do not list, unknown methods, and method overrides.

The rules limit ``/api/`` writes to editors and ``DELETE`` on ``/docs/`` to admins. Django,
Tomcat and Express upper-case the method, and many frameworks let a header or a ``_method``
parameter replace a POST's method (the servlet upstream honours them all): the gate must refuse
a method that is not an upper-case token, and allow a request only if its own method *and*
every override are allowed.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    BAD,
    EVERY,
    FORBIDDEN,
    HTTP,
    LOGIN,
    Registry,
    http,
    raw,
    served,
    status,
)

R = Registry("methods", EVERY)
FORM = (b"Content-Type", b"application/x-www-form-urlencoded")

# ---------------------------------------------------------------- spellings of a method
for slug, method, path in [
    ("lower-post-api", "post", "/api/items"),
    ("title-post-api", "Post", "/api/items"),
    ("camel-post-api", "pOST", "/api/items"),
    ("lower-put-api", "put", "/api/items"),
    ("lower-patch-api", "patch", "/api/items"),
    ("lower-delete-api", "delete", "/api/items"),
    ("lower-delete-docs", "delete", "/docs/handbook"),
    ("title-delete-docs", "Delete", "/docs/handbook"),
    ("lower-get-admin", "get", "/admin/users"),
    ("lower-head-admin", "head", "/admin/users"),
]:
    R.add(slug, f"{method} {path}: not an upper-case token", http(method, path), expect=BAD)
R.add(
    "lower-get-static-anon",
    "get on a public path",
    http("get", "/static/a.css"),
    who="anon",
    expect=BAD,
)
R.add(
    "lower-post-api-anon",
    "post /api/ anonymous",
    http("post", "/api/items"),
    who="anon",
    expect=BAD,
)
R.add(
    "lower-post-api-editor",
    "post /api/ by an editor",
    http("post", "/api/items"),
    who="editors",
    expect=BAD,
)
R.add("nul-in-method", "G\\x00ET", http(b"G\x00ET", "/admin/users"), expect=BAD)
R.add("double-space", "GET, two spaces, path", http(b"GET ", "/admin/users"), expect=BAD)
R.add(
    "tab-separator",
    "GET\\t/path",
    raw(
        lambda c: (
            b"GET\t/admin/users HTTP/1.1\r\nHost: " + c.host + b"\r\nConnection: close\r\n\r\n"
        )
    ),
    expect=BAD,
)
R.add("trailing-junk-method", "GET/ before the path", http(b"GET/", "/admin/users"), expect=BAD)
# What the gate does with them (the real upstreams refuse them on their own: Puma with 400 or
# by closing the connection, PHP's server with 501).
R.add(
    "long-upper-method",
    "a 4 KB upper-case method on /api/",
    http(b"PROPPATCH" * 450, "/api/items"),
    targets=HTTP,
)
R.add(
    "long-lower-method", "a 4 KB lower-case method", http(b"post" * 1000, "/api/items"), expect=BAD
)
R.add("huge-method", "a 70 KB upper-case method", http(b"P" * 70_000, "/api/items"), targets=HTTP)
R.add("digit-method", "a method with digits", http(b"POST2", "/api/items"))
R.add(
    "non-ascii-method",
    "a method with a non-ASCII byte",
    http(b"P\xc3\x96ST", "/api/items"),
    expect=BAD,
)

# ---------------------------------------------------------------- HEAD, unknown methods
R.add("head-api", "HEAD /api/ (reads are open)", http("HEAD", "/api/items"), expect=served("api"))
R.add("head-admin", "HEAD /admin/ is GET's rule", http("HEAD", "/admin/users"), expect=FORBIDDEN)
R.add("head-reports", "HEAD on a regex rule", http("HEAD", "/reports/7"), expect=FORBIDDEN)
R.add(
    "head-admin-anon",
    "HEAD /admin/ anonymous",
    http("HEAD", "/admin/users"),
    who="anon",
    expect=LOGIN,
)
R.add("propfind-api", "PROPFIND /api/ (no rule lists it)", http("PROPFIND", "/api/items"))
R.add("propfind-admin", "PROPFIND /admin/", http("PROPFIND", "/admin/users"), expect=FORBIDDEN)
R.add("m-search-admin", "M-SEARCH /admin/", http("M-SEARCH", "/admin/users"), expect=FORBIDDEN)
R.add(
    "m-search-admin-anon",
    "M-SEARCH anonymous",
    http("M-SEARCH", "/admin/"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "options-admin",
    "OPTIONS /admin/ (no passthrough)",
    http("OPTIONS", "/admin/users"),
    expect=FORBIDDEN,
)
R.add("trace-admin", "TRACE /admin/", http("TRACE", "/admin/users"), expect=FORBIDDEN)
R.add("connect-authority", "CONNECT host:port", http("CONNECT", "127.0.0.1:9"), expect=BAD)
R.add("put-reports", "PUT on a regex rule", http("PUT", "/reports/7"), expect=FORBIDDEN)

# ---------------------------------------------------------------- overrides: headers
for slug, name in [
    ("x-http-method-override", b"X-HTTP-Method-Override"),
    ("x-http-method", b"X-HTTP-Method"),
    ("x-method-override", b"X-Method-Override"),
    ("lower-name", b"x-http-method-override"),
    ("underscore-name", b"X_HTTP_Method_Override"),
    ("mixed-separators", b"X-Http_Method-Override"),
    ("underscore-x-method", b"X_Method_Override"),
]:
    R.add(
        f"override-{slug}",
        f"POST /docs/ with {name.decode()}: DELETE",
        http("POST", "/docs/handbook", (name, b"DELETE")),
        expect=FORBIDDEN,
    )
R.add(
    "override-lower-value",
    "override value 'delete'",
    http("POST", "/docs/handbook", (b"X-HTTP-Method-Override", b"delete")),
    expect=FORBIDDEN,
)
R.add(
    "override-twice-delete-last",
    "two override headers, DELETE last",
    http(
        "POST",
        "/docs/handbook",
        (b"X-HTTP-Method-Override", b"POST"),
        (b"X-HTTP-Method-Override", b"DELETE"),
    ),
    expect=FORBIDDEN,
)
R.add(
    "override-twice-delete-first",
    "two override headers, DELETE first",
    http(
        "POST",
        "/docs/handbook",
        (b"X-HTTP-Method-Override", b"DELETE"),
        (b"X-HTTP-Method-Override", b"POST"),
    ),
    expect=FORBIDDEN,
)
R.add(
    "override-two-names",
    "X-HTTP-Method: GET and X-Method-Override: DELETE",
    http("POST", "/docs/handbook", (b"X-HTTP-Method", b"GET"), (b"X-Method-Override", b"DELETE")),
    expect=FORBIDDEN,
)
R.add(
    "override-comma-list",
    "override 'DELETE, POST'",
    http("POST", "/docs/handbook", (b"X-HTTP-Method-Override", b"DELETE, POST")),
    expect=status(400, 403),
)
R.add(
    "override-on-get",
    "GET with an override to DELETE",
    http("GET", "/docs/handbook", (b"X-HTTP-Method-Override", b"DELETE")),
    expect=FORBIDDEN,
)
R.add(
    "override-put-api",
    "POST /api/ by users, override PUT",
    http("POST", "/api/items", (b"X-HTTP-Method-Override", b"PUT")),
    expect=FORBIDDEN,
)
R.add(
    "override-get-from-post",
    "POST /api/ by users, override GET (the real POST counts)",
    http("POST", "/api/items", (b"X-HTTP-Method-Override", b"GET")),
    expect=FORBIDDEN,
)
R.add(
    "override-junk-value",
    "override value 'DEL ETE'",
    http("POST", "/docs/handbook", (b"X-HTTP-Method-Override", b"DEL ETE")),
    expect=BAD,
)
R.add(
    "override-anon",
    "anonymous POST with override GET",
    http("POST", "/api/items", (b"X-HTTP-Method-Override", b"GET")),
    who="anon",
    expect=LOGIN,
)
R.add(
    "override-editor-get",
    "an editor's POST /api/ with override GET is allowed",
    http("POST", "/api/items", (b"X-HTTP-Method-Override", b"GET")),
    who="editors",
    expect=served("api"),
)
R.add(
    "override-admin-delete",
    "an admin's POST /docs/ with override DELETE is allowed",
    http("POST", "/docs/handbook", (b"X-HTTP-Method-Override", b"DELETE")),
    who="admins",
    expect=served("docs"),
)

# ---------------------------------------------------------------- overrides: _method
for slug, query in [
    ("query", "_method=DELETE"),
    ("query-lower-value", "_method=delete"),
    ("query-twice-delete-last", "_method=GET&_method=DELETE"),
    ("query-twice-delete-first", "_method=DELETE&_method=GET"),
    ("query-encoded-name", "%5Fmethod=DELETE"),
    ("query-encoded-value", "_method=DEL%45TE"),
    ("query-after-other", "a=1&_method=DELETE"),
]:
    R.add(
        f"method-param-{slug}",
        f"POST /docs/handbook?{query}",
        http("POST", f"/docs/handbook?{query}"),
        expect=FORBIDDEN,
    )
R.add(
    "method-param-on-get",
    "GET /docs/handbook?_method=DELETE",
    http("GET", "/docs/handbook?_method=DELETE"),
    expect=FORBIDDEN,
)
R.add(
    "method-param-form-body",
    "_method=DELETE in a POST form body",
    http("POST", "/docs/handbook", FORM, body=b"_method=DELETE&title=x"),
)
R.add(
    "method-param-form-put-api",
    "_method=PUT in a POST form body to /api/ (POST is refused)",
    http("POST", "/api/items", FORM, body=b"_method=PUT"),
    expect=FORBIDDEN,
)
R.add(
    "method-param-admin-allowed",
    "an admin's POST /docs/?_method=DELETE is allowed",
    http("POST", "/docs/handbook?_method=DELETE"),
    who="admins",
    expect=served("docs"),
)
