"""Headers: Host, client-address headers toward a loopback-only page, identity spoofing.

``/saml/status`` is for loopback clients not behind any proxy: a same-host proxy (the ngrok
agent) reports the remote client in one of several headers, so any of them naming a
non-loopback address makes the request remote (403). In proxy mode the upstream must never
see an identity header the client sent, under any spelling (``_`` for ``-``, any case, twice,
folded): only the gate's own, for a signed-in person, and none on public paths.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    BAD,
    FORBIDDEN,
    Registry,
    http,
    raw,
    served,
    status,
    ws_http,
)

R = Registry("headers")
REMOTE = b"203.0.113.9"

# ---------------------------------------------------------------- /saml/status from "remote"
R.add(
    "status-local-control",
    "GET /saml/status from loopback, no proxy header",
    http("GET", "/saml/status"),
    who="anon",
    expect=status(200),
)
for slug, headers in [
    ("xff", [(b"X-Forwarded-For", REMOTE)]),
    ("forwarded", [(b"Forwarded", b"for=" + REMOTE)]),
    ("forwarded-ipv6", [(b"Forwarded", b'for="[2001:db8::1]:4711"')]),
    ("forwarded-second-element", [(b"Forwarded", b"for=127.0.0.1, for=" + REMOTE)]),
    ("x-real-ip", [(b"X-Real-IP", REMOTE)]),
    ("second-xff-line", [(b"X-Forwarded-For", b"127.0.0.1"), (b"X-Forwarded-For", REMOTE)]),
    ("xff-list", [(b"X-Forwarded-For", b"127.0.0.1, " + REMOTE)]),
    ("xff-remote-first", [(b"X-Forwarded-For", REMOTE + b", 127.0.0.1")]),
    ("xff-unknown", [(b"X-Forwarded-For", b"unknown")]),
    ("true-client-ip", [(b"True-Client-IP", REMOTE)]),
    ("cf-connecting-ip", [(b"CF-Connecting-IP", REMOTE)]),
    ("xff-upper-name", [(b"X-FORWARDED-FOR", REMOTE)]),
]:
    R.add(
        f"status-{slug}",
        f"/saml/status with {headers}",
        http("GET", "/saml/status", *headers),
        who="anon",
        expect=FORBIDDEN,
    )
R.add(
    "status-xff-folded",
    "/saml/status with X-Forwarded-For folded onto a second line",
    raw(
        lambda c: (
            b"GET /saml/status HTTP/1.1\r\nHost: " + c.host + b"\r\nX-Forwarded-For: "
            b"127.0.0.1\r\n " + REMOTE + b"\r\nConnection: close\r\n\r\n"
        )
    ),
    who="anon",
    expect=FORBIDDEN,
)
R.add(
    "status-head-remote",
    "HEAD /saml/status with X-Forwarded-For",
    http("HEAD", "/saml/status", (b"X-Forwarded-For", REMOTE)),
    who="anon",
    expect=FORBIDDEN,
)
R.add(
    "status-signed-in-remote",
    "a signed-in person (not in status_group), remote",
    http("GET", "/saml/status", (b"X-Forwarded-For", REMOTE)),
    expect=FORBIDDEN,
)

# ---------------------------------------------------------------- Host
R.add(
    "duplicate-host",
    "two Host headers",
    raw(
        lambda c: (
            b"GET /admin/users HTTP/1.1\r\nHost: " + c.host + b"\r\nHost: evil.example"
            b"\r\nConnection: close\r\n\r\n"
        )
    ),
    expect=BAD,
)
R.add("no-host", "HTTP/1.1 without Host", http("GET", "/page", host=False), expect=BAD)
R.add(
    "http10-no-host",
    "HTTP/1.0 without Host to /admin/",
    http("GET", "/admin/users", host=False, version=b"HTTP/1.0"),
    expect=BAD,  # bad_host: no host to decide on (tests.request_side.cases_hosts)
)
R.add(
    "other-host",
    "Host: evil.example",
    http("GET", "/page", (b"Host", b"evil.example"), host=False),
    expect=status(303, 421),  # unknown_host (a page load: sent to base_url once)
)
R.add(
    "host-with-path",
    "Host: 127.0.0.1/admin",
    raw(lambda c: b"GET /page HTTP/1.1\r\nHost: 127.0.0.1/admin\r\nConnection: close\r\n\r\n"),
    who="anon",
)

# ---------------------------------------------------------------- identity spoofing (proxy)
SPOOFS = [
    ("user", [(b"X-Forwarded-User", b"mallory@evil.example")]),
    ("user-underscore", [(b"X_Forwarded_User", b"mallory@evil.example")]),
    (
        "user-twice",
        [(b"x-forwarded-user", b"mallory@evil.example"), (b"x-forwarded-user", b"ada@example.com")],
    ),
    ("user-upper", [(b"X-FORWARDED-USER", b"mallory@evil.example")]),
    ("groups", [(b"X-Forwarded-Groups", b"admins")]),
    ("groups-mixed-separators", [(b"X-Forwarded_Groups", b"admins")]),
    ("email", [(b"X-Forwarded-Email", b"ada@example.com")]),
    (
        "all-three",
        [
            (b"X-Forwarded-User", b"ada@example.com"),
            (b"X-Forwarded-Email", b"ada@example.com"),
            (b"X-Forwarded-Groups", b"admins,users"),
        ],
    ),
]
for slug, headers in SPOOFS:
    R.add(
        f"spoof-{slug}",
        f"users send {headers}",
        http("GET", "/page", *headers),
        targets=("proxy",),
        identity=True,
        expect=served("page"),
    )
R.add(
    "spoof-user-folded",
    "X-Forwarded-User folded onto a second line",
    raw(
        lambda c: (
            b"GET /page HTTP/1.1\r\nHost: " + c.host + b"\r\nX-Forwarded-User: mallory"
            b"\r\n @evil.example\r\nCookie: saml_gate_session="
            + c.session("users")
            + b"\r\nConnection: close\r\n\r\n"
        )
    ),
    targets=("proxy",),
    identity=True,
)
R.add(
    "spoof-anon-static",
    "anonymous X-Forwarded-User on a public path",
    http("GET", "/static/a.css", (b"X-Forwarded-User", b"ada@example.com")),
    who="anon",
    targets=("proxy",),
    identity=True,
    expect=served("static"),
)
R.add(
    "spoof-anon-health-underscore",
    "anonymous X_Forwarded_Groups on a public path",
    http("GET", "/health", (b"X_Forwarded_Groups", b"admins")),
    who="anon",
    targets=("proxy",),
    identity=True,
    expect=served("health"),
)
R.add(
    "spoof-groups-to-admin",
    "X-Forwarded-Groups: admins does not open /admin/",
    http("GET", "/admin/users", (b"X-Forwarded-Groups", b"admins")),
    expect=FORBIDDEN,
)
R.add(
    "spoof-websocket",
    "a WebSocket handshake with X-Forwarded-User",
    ws_http("/ws", (b"X-Forwarded-User", b"mallory@evil.example")),
    targets=("proxy",),
    ws=True,
    identity=True,
    expect=served(),
)

# ---------------------------------------------------------------- path-rewriting headers (proxy)
for slug, name in [
    ("x-original-url", b"X-Original-URL"),
    ("x-rewrite-url", b"X-Rewrite-URL"),
    ("x-original-url-underscore", b"X_Original_URL"),
]:
    R.add(
        f"rewrite-{slug}",
        f"GET /page with {name.decode()}: /admin/users (the upstream routes on it)",
        http("GET", "/page", (name, b"/admin/users")),
        expect=served("page"),
    )

# ---------------------------------------------------------------- odd headers
R.add(
    "obs-fold",
    "a folded header on a refused request",
    raw(
        lambda c: (
            b"GET /admin/users HTTP/1.1\r\nHost: " + c.host + b"\r\nX-A: 1\r\n b\r\n"
            b"Cookie: saml_gate_session=" + c.session("users") + b"\r\nConnection: close\r\n\r\n"
        )
    ),
    expect=FORBIDDEN,
)
R.add(
    "large-header",
    "a 12 KB header",
    http("GET", "/page", (b"X-Junk", b"j" * 12_000)),
    expect=served("page"),
)
R.add(
    "huge-header",
    "a 100 KB header to /admin/",
    http("GET", "/admin/users", (b"X-Junk", b"j" * 100_000)),
    expect=FORBIDDEN,
)
R.add(
    "many-headers",
    "1000 headers",
    http("GET", "/page", *[(b"X-N%d" % i, b"v") for i in range(1000)]),
)
R.add(
    "nul-in-value",
    "a NUL byte in a header value",
    http("GET", "/page", (b"X-A", b"a\x00b")),
    expect=BAD,
)
R.add(
    "space-before-colon",
    "X-Forwarded-User : x (space before the colon)",
    http("GET", "/page", (b"X-Forwarded-User ", b"mallory")),
    expect=BAD,
)
R.add(
    "cl-and-te",
    "Content-Length and Transfer-Encoding, a request smuggled in the body",
    raw(
        lambda c: (
            b"POST /static/x HTTP/1.1\r\nHost: " + c.host + b"\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
            b"GET /admin/users HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    ),
    who="anon",
)
R.add(
    "expect-100",
    "Expect: 100-continue on a refused POST",
    http("POST", "/api/items", (b"Expect", b"100-continue"), body=b"x=1"),
    expect=FORBIDDEN,
)
