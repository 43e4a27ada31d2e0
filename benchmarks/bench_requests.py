"""Section 1: what the gate costs on an authenticated request, beside SessionMiddleware.

Direct ASGI calls in process (no server, no client): the bare app, the app behind SamlGate with
a real session cookie (obtained through a real sign-in at the ACS), and the app behind
Starlette's SessionMiddleware holding the same identity. Overhead = time - bare time. Machine
access, in the same run: one gate whose rule takes sessions and tokens, asked with the session
cookie, a gate service token and an IdP access token (each token's first use checked it; the
rows measure what every later request pays, its auth event included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from bench_common import (
    ASGI,
    NAME_ID,
    Budget,
    Report,
    Row,
    World,
    acs_scope,
    call,
    header_values,
    hello_app,
    http_scope,
    mint_login,
    new_request_id,
    response_b64,
    status_of,
)
from starlette.middleware.sessions import SessionMiddleware

from saml_gate import SamlGate
from saml_gate.session.gate_tokens import GateTokens
from saml_gate.session.sessions import _CACHE_SIZE, Session
from saml_gate.testing.access_tokens import AUDIENCE, ISSUER, AccessTokenIssuer

SECTION = "1 request"


async def sign_in(gate: SamlGate, world: World) -> bytes:
    """A real session cookie ("name=value") from a real sign-in at the ACS."""
    request_id = new_request_id()
    login = mint_login(
        gate.settings,
        response_b64(world, "both-signed", request_id=request_id),
        request_id,
        gate.core.relay,
    )
    sent = await call(gate, acs_scope(login), login.body)
    assert status_of(sent) == 303, sent
    name = gate.core.sessions.name.encode() + b"="
    return next(c.split(b";")[0] for c in header_values(sent, b"set-cookie") if c.startswith(name))


async def per_request(app: ASGI, scopes: list[dict[str, Any]], n: int, rounds: int) -> float:
    """Best-of-rounds seconds per request, cycling through ``scopes``."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    count = len(scopes)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            await app(dict(scopes[i % count]), receive, send)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def other_user(session: Session, i: int) -> Session:
    return replace(session, user=replace(session.user, session_id=f"bench-{i}"))


def forward_auth(cookie: bytes) -> dict[str, Any]:
    """nginx's auth_request sub-request for a page of another host, with the session."""
    headers = [
        (b"x-original-url", b"https://app.example.com/hello?x=1"),
        (b"x-original-method", b"GET"),
        (b"accept", b"text/html"),
        (b"cookie", cookie),
    ]
    return http_scope("GET", "/saml/auth", headers)


def page(cookie: bytes | None, token: str | None = None) -> dict[str, Any]:
    headers = [(b"accept", b"text/html")]
    if cookie:
        headers.append((b"cookie", cookie))
    if token:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    return http_scope("GET", "/hello", headers)


async def token_rows(world: World) -> dict[str, tuple[ASGI, list[dict[str, Any]]]]:
    """A gate whose rule takes sessions and tokens: the same page with a session cookie, a
    gate service token (memory store) and an IdP access token (RS256, the key set inline)."""
    issuer = AccessTokenIssuer(world.idp)
    gate = world.gate(
        hello_app,
        access_rules=["/ accept=session,token"],
        access_token_issuer=ISSUER,
        access_token_audiences=[AUDIENCE],
        access_token_keys=issuer.jwks,
    )
    cookie = await sign_in(gate, world)
    core = gate.core
    gate_token = await GateTokens(core.store, core.revocations, time.time, 90.0).create(
        "bench", ["deployers"], 3600
    )
    rows = {
        "t-session": (gate, [page(cookie)]),
        "t-gate": (gate, [page(None, gate_token)]),
        "t-idp": (gate, [page(None, issuer.token(time.time(), groups=["deployers"]))]),
    }
    for app, scopes in rows.values():
        assert status_of(await call(app, dict(scopes[0]))) == 200
    return rows


async def starlette_cookie(identity: dict[str, Any]) -> bytes:
    """A SessionMiddleware cookie holding ``identity``, made by SessionMiddleware itself."""

    async def set_user(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["user"] = identity
        await hello_app(scope, receive, send)

    sent = await call(SessionMiddleware(set_user, secret_key="s" * 40), page(None))
    return header_values(sent, b"set-cookie")[0].split(b";")[0]


async def set_cookie_count(app: ASGI, scope: dict[str, Any], n: int) -> int:
    """How many of ``n`` responses carry a Set-Cookie header."""
    count = 0
    for _ in range(n):
        if header_values(await call(app, dict(scope)), b"set-cookie"):
            count += 1
    return count


@dataclass
class Subjects:
    """The gate with a real session cookie, and SessionMiddleware holding the same identity."""

    gate: SamlGate
    cookie: bytes
    session: Session
    sessions: SessionMiddleware
    s_cookie: bytes

    @classmethod
    async def create(cls, world: World) -> Subjects:
        # the middleware, /saml/auth too, serving the forward-auth row's app host
        gate = world.gate(hello_app, forward_auth=True, allowed_hosts=["app.example.com"])
        cookie = await sign_in(gate, world)
        session = gate.core.sessions.decode(cookie.split(b"=", 1)[1].decode())
        assert session is not None and session.user.name_id == NAME_ID
        sessions = SessionMiddleware(hello_app, secret_key="s" * 40)
        return cls(gate, cookie, session, sessions, await starlette_cookie(session.user.as_dict()))

    def rows(self) -> dict[str, tuple[ASGI, list[dict[str, Any]]]]:
        """The three requests every overhead is measured between: bare app, gate, middleware."""
        return {
            "bare": (hello_app, [page(None)]),
            "gated": (self.gate, [page(self.cookie)]),
            "starlette": (self.sessions, [page(self.s_cookie)]),
        }


async def interleaved(
    rows: dict[str, tuple[ASGI, list[dict[str, Any]]]], n: int, rounds: int
) -> dict[str, float]:
    """Best-of-rounds seconds per request of each row, rows taking turns round after round (a
    disturbance hits all of them alike); a row of many scopes cycles through them once."""
    best = dict.fromkeys(rows, float("inf"))
    for _ in range(rounds):
        for name, (app, scopes) in rows.items():
            count = n if len(scopes) == 1 else len(scopes)
            best[name] = min(best[name], await per_request(app, scopes, count, 1))
    return best


async def overheads(world: World, n: int, rounds: int) -> tuple[float, float]:
    """(gate, SessionMiddleware) seconds of overhead per authenticated request."""
    best = await interleaved((await Subjects.create(world)).rows(), n, rounds)
    return best["gated"] - best["bare"], best["starlette"] - best["bare"]


async def run(budget: Budget, report: Report, world: World) -> None:
    n, rounds = budget.n(40_000, 200), budget.rounds + 2
    subjects = await Subjects.create(world)
    gate, cookie, session = subjects.gate, subjects.cookie, subjects.session

    # Many distinct users: more session cookies than the gate's decoded-cookie cache holds,
    # cycled, so every request pays the HMAC and the JSON decoding.
    codec = gate.core.sessions
    many = [
        page(f"{codec.name}={codec.encode(other_user(session, i))}".encode())
        for i in range(_CACHE_SIZE + 1000)
    ]

    sent = await call(gate, forward_auth(cookie))
    assert status_of(sent) == 200 and header_values(sent, b"x-saml-gate-jwt"), sent
    rows = subjects.rows()
    rows["cold"] = (gate, many)
    rows["auth"] = (gate, [forward_auth(cookie)])
    rows |= await token_rows(world)
    best = await interleaved(rows, n, rounds)
    bare = best["bare"]
    g, s = best["gated"] - bare, best["starlette"] - bare
    c, a = best["cold"] - bare, best["auth"] - bare

    def us(x: float) -> str:
        return f"{x * 1e6:.2f} µs"

    report.add(Row(SECTION, "bare ASGI app", us(bare) + "/request"))
    report.add(Row(SECTION, "Starlette SessionMiddleware, overhead", "+" + us(s)))
    report.add(Row(SECTION, "SamlGate authenticated, overhead", "+" + us(g)))
    report.add(
        Row(
            SECTION,
            "gate overhead / SessionMiddleware overhead",
            f"{g / s:.2f}",
            "≤ 0.30",
            g / s <= 0.3,
        )
    )
    report.add(
        Row(
            SECTION,
            "gate overhead, cookie not in its cache",
            f"+{us(c)} ({c / s:.2f}x SessionMiddleware's)",
            note=f"{len(many)} users cycled, > cache size",
        )
    )
    report.add(
        Row(
            SECTION,
            "forward-auth /saml/auth (signed in, JWT cached), overhead",
            f"+{us(a)} ({a / s:.2f}x SessionMiddleware's)",
            "≤ 0.50",
            a / s <= 0.5,
            note="an answer of its own, measured like the middleware: time - bare app",
        )
    )
    ts, tg, ti = (best[k] - bare for k in ("t-session", "t-gate", "t-idp"))
    report.add(
        Row(
            SECTION,
            "token route, session cookie, overhead",
            "+" + us(ts),
            note="a rule with accept=session,token",
        )
    )
    for name, value in (("gate service token", tg), ("IdP access token (RS256)", ti)):
        report.add(
            Row(
                SECTION,
                f"token route, {name}, overhead",
                f"+{us(value)} ({value / ts:.2f}x the session's)",
                note="checked once, then from this process's cache; a token_auth event each",
            )
        )
    checked = budget.n(10_000, 100)
    with_cookie = await set_cookie_count(gate, page(cookie), checked)
    report.add(
        Row(
            SECTION,
            "Set-Cookie on requests needing no refresh",
            f"{with_cookie} of {checked}",
            "0",
            with_cookie == 0,
        )
    )
    # And the refresh does happen once the cookie is older than the refresh interval.
    later = world.gate(hello_app, clock=lambda: time.time() + gate.core.sessions.refresh_after + 1)
    refreshed = await set_cookie_count(later, page(cookie), 1)
    report.add(
        Row(
            SECTION,
            "Set-Cookie when a refresh is due",
            f"{refreshed} of 1",
            "1",
            refreshed == 1,
        )
    )
