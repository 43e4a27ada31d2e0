"""Quick measurements of the two hot paths, as ratios against peers measured in the same run.

    python benchmarks/bench_core.py

1. An authenticated request through SamlGate vs the same bare ASGI app, beside Starlette's
   SessionMiddleware measured the same way (direct ASGI calls, best of several rounds).
2. ACS verification of a dev-IdP Response (both signed; encrypted) by the gate's verifier.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.middleware.sessions import SessionMiddleware

from saml_gate import SamlGate
from saml_gate.devidp.keys import generate_keypair
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.session import Session
from saml_gate.user import SamlUser

BASE = "http://127.0.0.1:8000"
ROUNDS, N = 7, 20_000


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def scope_with(cookie: bytes | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/html")]
    if cookie:
        headers.append((b"cookie", cookie))
    return {
        "type": "http",
        "method": "GET",
        "path": "/page",
        "raw_path": b"/page",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "root_path": "",
    }


async def per_request(app: Callable[..., Awaitable[None]], scope: dict[str, Any]) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(N):
            await app(dict(scope), receive, send)
        best = min(best, (time.perf_counter() - start) / N)
    return best


async def request_overhead() -> None:
    state = tempfile.mkdtemp()
    gate = SamlGate(bare_app, base_url=BASE, dev_idp=True, secret_key="b" * 40, state_dir=state)
    now = time.time()
    user = SamlUser(
        name_id="alice@example.com",
        email="alice@example.com",
        name="Alice",
        groups=("admins", "users"),
        issuer="x",
        authenticated_at=now,
        expires_at=now + 3600,
        session_id="sid",
    )
    cookie = gate.core.sessions.encode(Session(user=user, last_seen=now))
    gate_scope = scope_with(f"saml_gate_session={cookie}".encode())

    sessions = SessionMiddleware(bare_app, secret_key="b" * 40)
    sent: list[bytes] = []

    async def capture(message: dict[str, Any]) -> None:
        for k, v in message.get("headers", []):
            if k == b"set-cookie":
                sent.append(v)

    async def set_session(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["user"] = {"email": "alice@example.com", "groups": ["admins", "users"]}
        await bare_app(scope, receive, send)

    await SessionMiddleware(set_session, secret_key="b" * 40)(
        scope_with(None), lambda: asyncio.sleep(0), capture
    )
    session_cookie = sent[0].split(b";")[0]

    bare = await per_request(bare_app, scope_with(None))
    gated = await per_request(gate, gate_scope)
    starlette = await per_request(sessions, scope_with(session_cookie))
    g, s = (gated - bare) * 1e6, (starlette - bare) * 1e6
    print(f"bare ASGI app                 {bare * 1e6:8.2f} µs/request")
    print(f"SamlGate, authenticated       {gated * 1e6:8.2f} µs/request  (+{g:.2f} µs)")
    print(f"Starlette SessionMiddleware   {starlette * 1e6:8.2f} µs/request  (+{s:.2f} µs)")
    print(f"gate overhead / SessionMiddleware overhead = {g / s:.2f}  (target ≤ 0.50)")


def acs_verification() -> None:
    state = tempfile.mkdtemp()
    idp, sp = generate_keypair("bench IdP"), generate_keypair("bench SP")
    metadata = idp_metadata_xml(
        entity_id="http://www.okta.com/exkBENCH", sso_url=BASE + "/sso", slo_url=None, keypair=idp
    ).decode()
    gate = SamlGate(
        bare_app,
        base_url=BASE,
        idp_metadata=metadata,
        secret_key="b" * 40,
        sp_key=sp.key_pem.decode(),
        sp_cert=sp.cert_pem.decode(),
        state_dir=state,
    )
    verifier = gate.core.verifier
    now = datetime.now(UTC)
    spec = ResponseSpec(
        issuer="http://www.okta.com/exkBENCH",
        destination=BASE + "/saml/acs",
        audience=BASE + "/saml/metadata",
        name_id="alice@example.com",
        attributes={"email": ["alice@example.com"], "groups": ["a", "b"]},
        in_response_to="id-bench",
        now=now,
    )
    for label, extra in (
        ("assertion-signed", {"sign_response": False}),
        ("both-signed", {}),
        ("encrypted, both-signed", {"encrypt_to": sp.cert_pem}),
    ):
        body = base64.b64encode(issue_response(spec, idp, **extra)).decode()
        times = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(200):
                verifier.verify(body, expected_request_ids={"id-bench"}, now=now.timestamp())
            times.append((time.perf_counter() - start) / 200)
        best = min(times)
        print(
            f"verify {label:24s} {best * 1e3:6.3f} ms  ({1 / best:7.0f}/s, median "
            f"{statistics.median(times) * 1e3:.3f} ms)"
        )


if __name__ == "__main__":
    asyncio.run(request_overhead())
    acs_verification()
