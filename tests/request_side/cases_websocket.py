"""WebSocket handshakes: the same rules as GET, the same readings of the path and method.

A refused handshake gets an HTTP answer (uvicorn supports ``websocket.http.response``); an
accepted one is answered 101 by the app, whose first frame reports what it served.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    ANY,
    BAD,
    FORBIDDEN,
    WS,
    Expect,
    Registry,
    served,
    status,
    ws_http,
)

R = Registry("websocket", WS)


def add(
    slug: str,
    target: bytes | str,
    expect: Expect,
    who: str = "users",
    method: bytes = b"GET",
    *headers: tuple[bytes, bytes],
) -> None:
    text = target if isinstance(target, str) else target.decode("latin-1")
    R.add(
        slug,
        f"{method.decode('latin-1')} {text} handshake as {who}",
        ws_http(target, *headers, method=method),
        who=who,
        expect=expect,
        ws=True,
    )


UNAUTHENTICATED = status(401)
REFUSED_METHOD = status(400, 405)
"""uvicorn's WebSocket protocol itself answers 405 to a handshake whose method is not GET."""
add("anon", "/ws", UNAUTHENTICATED, who="anon")
add("users", "/ws", served())
add("admin-users", "/admin/ws", FORBIDDEN)
add("admin-admins", "/admin/ws", served(), who="admins")
add("admin-anon", "/admin/ws", UNAUTHENTICATED, who="anon")
add("reports-users", "/reports/7", FORBIDDEN)
add("static-anon", "/static/ws", served(), who="anon")
add("semicolon", "/admin;x/ws", BAD)
add("semicolon-end", "/admin/ws;x", BAD)
add("semicolon-root", "/;/admin/ws", BAD)
add("encoded-slash", "/admin%2Fws", BAD)
add("encoded-dots", "/static/%2e%2e/admin/ws", BAD)
add("dotdot", "/static/../admin/ws", BAD)
add("double-slash", "//admin/ws", FORBIDDEN)
add("backslash", b"/admin\\ws", FORBIDDEN)
add("fragment", "/admin#/ws", ANY)
add("upper-case", "/ADMIN/ws", ANY)
add("lower-get", "/admin/ws", REFUSED_METHOD, "users", b"get")
add("title-get", "/admin/ws", REFUSED_METHOD, "users", b"Get")
add("lower-get-public", "/static/ws", REFUSED_METHOD, "anon", b"get")
add("post-upgrade", "/admin/ws", ANY, "users", b"POST")
add(
    "override-header",
    "/docs/ws",
    FORBIDDEN,
    "users",
    b"GET",
    (b"X-HTTP-Method-Override", b"DELETE"),
)
add(
    "forged-cookie",
    "/ws",
    UNAUTHENTICATED,
    "anon",
    b"GET",
    (b"Cookie", b"saml_gate_session=forged.value"),
)
R.add(
    "client-closes-first",
    "the client closes right after the first frame",
    ws_http("/ws?hold"),
    ws=True,
    ending="close-first",
    expect=served(),
)
R.add(
    "client-drops",
    "the client drops the connection after the first frame",
    ws_http("/ws?hold"),
    ws=True,
    ending="drop",
    expect=served(),
)
