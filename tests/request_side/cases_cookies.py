"""Cookies: tossing, duplicates, forgeries, sizes, spellings, and sessions of other gates.

A request may carry several credentials; the requester holds what any *valid* one grants
(the oracle's ``who``), so cookie tricks are bypasses only when the gate grants more than
that. A session cookie minted by another gate configuration that shares the secret (another
``base_url``, or the same one with another ``entity_id``) is worth nothing here. A request with
the session cookie twice (a sibling subdomain planted one on a longer path, which the browser
sends first) is refused with 401 ``duplicate_session``, whichever of them is valid: picking one
would let the planter choose who the person is. The same value twice is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tests.request_side.corpus import ANY, LOGIN, Build, Ctx, Registry, http, raw, served, status

R = Registry("cookies")
DUPLICATE = status(401)


def with_cookie(path: str, cookie: Callable[[Ctx], bytes]) -> Callable[[Sequence[str]], Build]:
    """GET ``path`` with exactly this Cookie header."""
    return raw(
        lambda c: (
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: "
            + c.host
            + b"\r\nCookie: "
            + cookie(c)
            + b"\r\nConnection: close\r\n\r\n"
        )
    )


def s(principal: str) -> Callable[[Ctx], bytes]:
    return lambda c: b"saml_gate_session=" + c.session(principal)


def forged(c: Ctx) -> bytes:
    """The users session's signature on the admins session's payload."""
    users, admins = c.session("users"), c.session("admins")
    return b"saml_gate_session=" + admins.rsplit(b".", 1)[0] + b"." + users.rsplit(b".", 1)[1]


R.add("control", "a valid session", http("GET", "/page"), expect=served("page"))
R.add(
    "toss-junk-first",
    "junk session cookie first, users' last",
    with_cookie("/page", lambda c: b"saml_gate_session=junk; " + s("users")(c)),
    expect=DUPLICATE,
)
R.add(
    "toss-junk-last",
    "users' session first, junk last",
    with_cookie("/page", lambda c: s("users")(c) + b"; saml_gate_session=junk"),
    expect=DUPLICATE,
)
R.add(
    "toss-users-then-admins",
    "users' and admins' sessions, to /admin/",
    with_cookie("/admin/users", lambda c: s("users")(c) + b"; " + s("admins")(c)),
    who=("users", "admins"),
    expect=DUPLICATE,
)
R.add(
    "toss-admins-then-users",
    "admins' and users' sessions, to /admin/",
    with_cookie("/admin/users", lambda c: s("admins")(c) + b"; " + s("users")(c)),
    who=("users", "admins"),
    expect=DUPLICATE,
)
R.add(
    "two-cookie-headers-junk-first",
    "a junk session line, then the users' session line",
    raw(
        lambda c: (
            b"GET /admin/users HTTP/1.1\r\nHost: " + c.host + b"\r\nCookie: "
            b"saml_gate_session=junk\r\nCookie: " + s("users")(c) + b"\r\nConnection: close"
            b"\r\n\r\n"
        )
    ),
    expect=DUPLICATE,
)
R.add(
    "two-cookie-headers-valid-second",
    "Cookie: a=1, then the users' session line",
    raw(
        lambda c: (
            b"GET /page HTTP/1.1\r\nHost: "
            + c.host
            + b"\r\nCookie: a=1\r\nCookie: "
            + s("users")(c)
            + b"\r\nConnection: close\r\n\r\n"
        )
    ),
    expect=served("page"),
)
R.add(
    "forged-value",
    "a made-up session value",
    with_cookie("/page", lambda c: b"saml_gate_session=forged.value"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "forged-payload",
    "the admins' payload under the users' signature",
    with_cookie("/admin/users", forged),
    who="anon",
    expect=LOGIN,
)
R.add(
    "truncated-signature",
    "the users' session with its signature cut short",
    with_cookie("/page", lambda c: s("users")(c)[:-4]),
    who="anon",
    expect=LOGIN,
)
R.add(
    "empty-value",
    "saml_gate_session=",
    with_cookie("/page", lambda c: b"saml_gate_session="),
    who="anon",
    expect=LOGIN,
)
R.add(
    "only-separators",
    "Cookie: ; ; ;",
    with_cookie("/page", lambda c: b"; ; ;"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "oversized-with-session",
    "8 KB of other cookies, then the session",
    with_cookie("/page", lambda c: b"junk=" + b"j" * 8000 + b"; " + s("users")(c)),
    expect=served("page"),
)
R.add(
    "oversized-70k",
    "a 70 KB cookie, then the session",
    with_cookie("/page", lambda c: b"junk=" + b"j" * 70_000 + b"; " + s("users")(c)),
    # h11 refuses a request head over 16 KiB when it arrives in more than one read (how loopback
    # splits 70 KB varies with load): served, or the HTTP server's 400; the oracle decides.
    expect=ANY,
)
R.add(
    "quoted-value",
    'saml_gate_session="<value>"',
    with_cookie("/page", lambda c: b'saml_gate_session="' + c.session("users") + b'"'),
)
R.add(
    "spaces-around-equals",
    "saml_gate_session = <value>",
    with_cookie("/page", lambda c: b"saml_gate_session = " + c.session("users")),
)
R.add(
    "upper-case-name",
    "SAML_GATE_SESSION=<admins' value> to /admin/",
    with_cookie("/admin/users", lambda c: b"SAML_GATE_SESSION=" + c.session("admins")),
    who="admins",
)
R.add(
    "name-suffix-collision",
    "xsaml_gate_session=<admins>; saml_gate_session=<users>",
    with_cookie("/admin/users", lambda c: b"x" + s("admins")(c) + b"; " + s("users")(c)),
    who=("users", "admins"),
)
R.add(
    "comma-separated",
    "the session and another cookie separated by a comma",
    with_cookie("/page", lambda c: s("users")(c) + b", other=1"),
)

# ---------------------------------------------------------------- other gate configurations
for who in ("foreign-base", "foreign-entity"):
    R.add(
        f"{who}-admin",
        f"an admins' session minted by another gate ({who}) to /admin/",
        http("GET", "/admin/users"),
        who=who,
        expect=LOGIN,
    )
    R.add(
        f"{who}-page",
        f"an admins' session minted by another gate ({who})",
        http("GET", "/page"),
        who=who,
        expect=LOGIN,
    )
R.add(
    "foreign-tossed-before-users",
    "another gate's admins' session first, users' last",
    with_cookie("/admin/users", lambda c: s("foreign-base")(c) + b"; " + s("users")(c)),
    who=("foreign-base", "users"),
    expect=DUPLICATE,
)
R.add(
    "same-session-twice",
    "the users' session twice: the same value, no question who it is",
    with_cookie("/page", lambda c: s("users")(c) + b"; " + s("users")(c)),
    expect=served("page"),
)
R.add(
    "planted-admins-to-page",
    "an admins' session planted before the users' one, to a page both may see",
    with_cookie("/page", lambda c: s("admins")(c) + b"; " + s("users")(c)),
    who=("users", "admins"),
    expect=DUPLICATE,
)
R.add(
    "empty-then-valid",
    "an empty session cookie, then the users' one",
    with_cookie("/page", lambda c: b"saml_gate_session=; " + s("users")(c)),
    expect=DUPLICATE,
)
R.add(
    "duplicate-on-public-path",
    "two session cookies on a public path: nobody is asked who they are",
    with_cookie("/static/a.css", lambda c: s("admins")(c) + b"; " + s("users")(c)),
    who=("users", "admins"),
    expect=served("static"),
)
R.add(
    "duplicate-to-session-endpoint",
    "two session cookies to /saml/session",
    with_cookie("/saml/session", lambda c: s("admins")(c) + b"; " + s("users")(c)),
    who=("users", "admins"),
    expect=DUPLICATE,
)
