"""The request-side corpus: what a case is, what it expects, and how its bytes are built.

A :class:`Case` has an id (``<class>/<slug>``), a class name (methods, paths, root-paths,
headers, cookies, relay, websocket), the raw request it sends (built against a :class:`Ctx`:
the target's Host and the session cookies of the principals it names), who the requester
really is (``who``: the principals whose credentials the request carries), and what the gate
must answer (:class:`Expect`) once the request-side fixes are in. Whatever it expects, every
case is also judged by the oracle (see :mod:`tests.request_side`).

The cases live in the ``cases_*`` modules, one per class; :mod:`.catalogue` collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tests.request_side.wire import WS_KEY, Ending, request

#: The same two as ``starlette`` and ``proxy`` on uvicorn's other stack (httptools, uvloop: what
#: ``uvicorn[standard]`` installs), whose parser reads some request lines otherwise than h11.
FAST: tuple[str, ...] = ("starlette-fast", "proxy-fast")
#: Targets of plain HTTP cases: middleware over Starlette, over Django, and proxy mode, on both
#: of uvicorn's HTTP parsers.
HTTP: tuple[str, ...] = ("starlette", "django", "proxy", *FAST)
#: Proxy mode in front of real frameworks (:mod:`.real_upstreams`): for the cases about what an
#: upstream reads (methods, overrides, paths, formats).
REAL: tuple[str, ...] = ("sinatra", "rails", "symfony", "laravel")
EVERY: tuple[str, ...] = HTTP + REAL
#: Django's ASGI handler refuses WebSocket scopes, so handshakes go to the other two.
WS: tuple[str, ...] = ("starlette", "proxy")
#: uvicorn with root_path="/prefix" in front of the middleware targets.
ROOT: tuple[str, ...] = ("starlette-root", "django-root")

Header = tuple[bytes, bytes]


class Ctx(Protocol):
    @property
    def host(self) -> bytes: ...

    def session(self, principal: str) -> bytes:
        """The session cookie's value for a principal (signed in through this target)."""
        ...

    def token(self, principal: str, **wrong: Any) -> bytes:
        """An access token of the test authorization server for a token principal (``wrong``:
        :meth:`~saml_gate.testing.access_tokens.AccessTokenIssuer.token`'s spoilers)."""
        ...

    @property
    def token_jwks(self) -> str:
        """The authorization server's published key set (what an attacker can read)."""
        ...


Build = Callable[[Ctx], bytes]


@dataclass(frozen=True)
class Expect:
    """What the gate must answer. ``any``: only the oracle's checks; ``status``: one of
    ``statuses``; ``served``: the app served ``resource`` (a benign control); ``on_site``: a
    relay case whose sign-in must end on ``location`` (or anywhere on the site when None)."""

    kind: Literal["any", "status", "served", "on_site"]
    statuses: frozenset[int] = frozenset()
    resource: str | None = None
    location: str | None = None

    def __str__(self) -> str:
        if self.kind == "status":
            return "status " + "/".join(str(s) for s in sorted(self.statuses))
        if self.kind == "served":
            return f"served {self.resource or ''}".strip()
        if self.kind == "on_site":
            return f"on site {self.location or ''}".strip()
        return "oracle only"


ANY = Expect("any")


def status(*codes: int) -> Expect:
    return Expect("status", frozenset(codes))


BAD = status(400)
"""The gate (or the HTTP server) refuses the request as malformed."""
FORBIDDEN = status(403)
LOGIN = status(303, 401)
"""Not signed in: a browser is sent to the IdP (303), anything else gets 401."""


def served(resource: str | None = None) -> Expect:
    """The app served ``resource`` (any resource when None)."""
    return Expect("served", resource=resource)


def on_site(location: str | None = None) -> Expect:
    return Expect("on_site", location=location)


@dataclass(frozen=True)
class Case:
    id: str
    cls: str
    title: str
    build: Build
    who: tuple[str, ...]
    expect: Expect = ANY
    targets: tuple[str, ...] = HTTP
    ws: bool = False
    identity: bool = False
    """Proxy: the upstream must see exactly the identity of ``who`` (nothing the client sent)."""
    relay: bool = False
    """The answer starts a sign-in: complete it as ``users``; the redirect must stay on the site."""
    ending: Ending = "reply"
    """How a WebSocket client ends (:func:`~tests.request_side.wire.handshake`)."""


def http(
    method: bytes | str,
    target: bytes | str,
    *headers: Header,
    body: bytes = b"",
    host: bool = True,
    version: bytes = b"HTTP/1.1",
) -> Callable[[Sequence[str]], Build]:
    """A request builder; the Cookie header carries the sessions of ``who`` (given later by the
    case), Host the target's, and Content-Length the body's size (unless ``headers`` frame the
    body themselves)."""
    m = method.encode("latin-1") if isinstance(method, str) else method
    t = target.encode("latin-1") if isinstance(target, str) else target

    def for_who(who: Sequence[str]) -> Build:
        def build(ctx: Ctx) -> bytes:
            lines: list[Header] = [(b"Host", ctx.host)] if host else []
            lines += headers
            if who:
                value = b"; ".join(b"saml_gate_session=" + ctx.session(p) for p in who)
                lines.append((b"Cookie", value))
            framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers)
            if body and not framed:
                lines.append((b"Content-Length", str(len(body)).encode()))
            lines.append((b"Connection", b"close"))
            return request(m, t, lines, body, version=version)

        return build

    return for_who


def ws_http(
    target: bytes | str, *headers: Header, method: bytes = b"GET"
) -> Callable[[Sequence[str]], Build]:
    """A WebSocket handshake to ``target`` (no Connection: close: the socket upgrades)."""
    t = target.encode("latin-1") if isinstance(target, str) else target
    fixed: list[Header] = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", WS_KEY),
        (b"Sec-WebSocket-Version", b"13"),
        *headers,
    ]

    def for_who(who: Sequence[str]) -> Build:
        def build(ctx: Ctx) -> bytes:
            lines: list[Header] = [(b"Host", ctx.host), *fixed]
            if who:
                value = b"; ".join(b"saml_gate_session=" + ctx.session(p) for p in who)
                lines.append((b"Cookie", value))
            return request(method, t, lines)

        return build

    return for_who


def raw(build: Build) -> Callable[[Sequence[str]], Build]:
    """A request written by hand (the case's ``who`` only informs the oracle)."""
    return lambda who: build


class Registry:
    """Collects the cases of one class."""

    def __init__(self, cls: str, targets: tuple[str, ...] = HTTP) -> None:
        self.cls = cls
        self.targets = targets
        self.cases: list[Case] = []

    def add(
        self,
        slug: str,
        title: str,
        make: Callable[[Sequence[str]], Build],
        *,
        who: str | Sequence[str] = "users",
        expect: Expect = ANY,
        targets: tuple[str, ...] | None = None,
        **flags: Any,
    ) -> None:
        holders = (who,) if isinstance(who, str) else tuple(who)
        if holders == ("anon",):
            holders = ()
        self.cases.append(
            Case(
                id=f"{self.cls}/{slug}",
                cls=self.cls,
                title=title,
                build=make(holders),
                who=holders,
                expect=expect,
                targets=targets or self.targets,
                **flags,
            )
        )
