"""Failure behaviour with a real Redis that is stopped, frozen and started again.

Each test runs its own redis-server on a free loopback port, so stopping it disturbs nobody.
While it is unreachable: new sign-ins fail closed (503, one clear log line), the process keeps
answering, existing sessions follow ``store_outage`` (default "refuse": 503; "serve": valid
cookies still work, and the log line says which sign-outs are not enforced). Whatever the
policy, a revocation a process knows (made there, or pushed to it before the outage) is
enforced during the outage, and one made during the outage reaches Redis, and so every gate,
when it is back, as does one Redis lost by restarting empty. When it is back, everything
recovers without a restart. A frozen Redis (SIGSTOP: connections accepted, no answer) cannot
hang a request: ``store_timeout``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support import Harness

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}
#: Generous bound on any single request while Redis is down or frozen: far above store_timeout,
#: far below "hung". A guard against hangs, not a timing assertion.
HANG_GUARD = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own, without persistence, on a fixed loopback port."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server program: apt-get install redis-server (.ci/run does)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test froze it
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def freeze(self, frozen: bool) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Retry ``check`` (an async predicate) until it holds; the guard retries a dead store after
    one second, so recovery takes a moment."""
    for _ in range(100):
        if await check():
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def new_login(h: Harness) -> httpx.Response:
    h.client.cookies.delete("saml_gate_session")
    with anyio.fail_after(HANG_GUARD):
        return await h.login()


def use_cookie(h: Harness, cookie: str) -> None:
    """Make ``cookie`` the one session cookie ``h``'s client sends."""
    h.client.cookies.delete("saml_gate_session")
    h.client.cookies.set("saml_gate_session", cookie)


async def status_with(h: Harness, cookie: str) -> int:
    use_cookie(h, cookie)
    with anyio.fail_after(HANG_GUARD):
        return (await h.client.get("/private/p", headers=JSON)).status_code


def store_events(caplog: Any, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", "") == event]


async def test_outage_fails_logins_closed_serves_sessions_and_recovers(
    make_harness: Callable[..., Harness], redis_server: RedisServer, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="saml_gate")
    h = make_harness(store=redis_server.url, store_timeout=0.2, store_outage="serve")
    assert (await new_login(h)).status_code == 303
    cookie = h.client.cookies["saml_gate_session"]

    redis_server.stop()
    refused = await new_login(h)
    assert refused.status_code == 503 and "store_unavailable" in refused.text
    down = store_events(caplog, "store_down")
    assert len(down) == 1 and f"127.0.0.1:{redis_server.port}" in down[0].getMessage()
    assert "new sign-ins are refused with 503" in down[0].getMessage()
    assert "NOT sign-outs made on other gates or workers during the outage" in (
        down[0].getMessage()
    )
    assert any(getattr(r, "error_code", "") == "store_unavailable" for r in caplog.records)
    assert await status_with(h, cookie) == 200  # store_outage="serve"
    assert (await h.client.get("/saml/metadata")).status_code == 200  # the process is up
    out = await sign_out(h, cookie)
    # The revocation cannot be shared yet: say so; the browser's cookie goes anyway, and the
    # session ends in this process at once (a copy of the cookie gets 401).
    assert out.status_code == 503 and "saml_gate_session=;" in out.headers["set-cookie"]
    assert await status_with(h, cookie) == 401

    redis_server.start()  # an empty Redis on the same port: no restart of the gate
    await eventually(lambda: _logs_in(h), "sign-in works again")
    assert len(store_events(caplog, "store_up")) == 1
    assert await status_with(h, h.client.cookies["saml_gate_session"]) == 200
    assert await status_with(h, cookie) == 401  # the sign-out was not forgotten


async def _logs_in(h: Harness) -> bool:
    return (await new_login(h)).status_code == 303


async def new_session(h: Harness, redis_server: RedisServer) -> str:
    """A session signed in on ``h`` (Redis started for it if it is down): its cookie."""
    if redis_server.process is None:
        redis_server.start()
    await eventually(lambda: _logs_in(h), "a sign-in")
    return str(h.client.cookies["saml_gate_session"])


async def sign_out(h: Harness, cookie: str) -> httpx.Response:
    """The person holding ``cookie`` signs out on ``h`` (the form, then its POST)."""
    use_cookie(h, cookie)
    with anyio.fail_after(HANG_GUARD):
        page = await h.client.get("/saml/logout")
        token = page.text.split("name=token value='")[1].split("'")[0]
        return await h.client.post("/saml/logout", data={"token": token}, headers=HTML)


async def test_refuse_policy_refuses_sessions_during_the_outage(
    make_harness: Callable[..., Harness], redis_server: RedisServer
) -> None:
    h = make_harness(store=redis_server.url, store_timeout=0.2, store_outage="refuse")
    await new_login(h)
    cookie = h.client.cookies["saml_gate_session"]
    redis_server.stop()

    async def refused() -> bool:  # once this worker has seen its Redis subscription drop
        return await status_with(h, cookie) == 503

    await eventually(refused, "the session is refused during the outage")
    redis_server.start()

    async def served() -> bool:
        return await status_with(h, cookie) == 200

    await eventually(served, "the session is served again")


async def test_a_frozen_redis_cannot_hang_requests(
    make_harness: Callable[..., Harness], redis_server: RedisServer
) -> None:
    h = make_harness(store=redis_server.url, store_timeout=0.2)
    await new_login(h)
    cookie = h.client.cookies["saml_gate_session"]
    redis_server.freeze(True)
    try:
        assert (await new_login(h)).status_code == 503
        assert await status_with(h, cookie) == 200
    finally:
        redis_server.freeze(False)
    await eventually(lambda: _logs_in(h), "sign-in works once Redis answers again")


async def test_sessions_kept_in_the_store_need_it(
    make_harness: Callable[..., Harness], redis_server: RedisServer
) -> None:
    """A session whose groups live in Redis (too many for a cookie) cannot be served without
    it by a worker that has not seen it yet: 503, never a session without its groups."""
    first = make_harness(store=redis_server.url, store_timeout=0.2)
    groups = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(500)]
    r = await first.login(attributes={"email": ["alice@example.com"], "groups": groups})
    assert r.status_code == 303
    cookie = first.client.cookies["saml_gate_session"]
    second = make_harness(store=redis_server.url, store_timeout=0.2)
    redis_server.stop()
    assert await status_with(first, cookie) == 200  # this worker has it cached
    assert await status_with(second, cookie) == 503


# ---------------------------------------------------------------------- revocations in an outage
async def view_lost(h: Harness) -> None:
    """Until ``h`` has noticed the outage: its revocation view no longer answers alone, so each
    request now asks the (unreachable) store and ``store_outage`` applies."""

    async def lost() -> bool:
        await status_with(h, "none")  # a request lets the gate notice
        return not h.gate.core.revocations.view.live

    await eventually(lost, "the gate noticed its subscription is gone")


async def view_live(h: Harness) -> None:
    async def live() -> bool:
        await status_with(h, "none")
        return h.gate.core.revocations.view.live

    await eventually(live, "the gate follows the revocations again")


async def test_the_default_refuses_sessions_it_cannot_check(
    make_harness: Callable[..., Harness], redis_server: RedisServer, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="saml_gate")
    h = make_harness(store=redis_server.url, store_timeout=0.2)  # store_outage: the default
    cookie = await new_session(h, redis_server)
    redis_server.stop()
    await view_lost(h)
    assert await status_with(h, cookie) == 503
    down = store_events(caplog, "store_down")
    assert "refused with 503 (store_outage=refuse)" in down[0].getMessage()
    redis_server.start()
    await eventually(lambda: _status_is(h, cookie, 200), "the session is served again")


async def _status_is(h: Harness, cookie: str, status: int) -> bool:
    return await status_with(h, cookie) == status


@pytest.mark.parametrize("policy", ["serve", "refuse"])
async def test_a_sign_out_this_process_made_holds_through_the_outage(
    make_harness: Callable[..., Harness], redis_server: RedisServer, policy: str
) -> None:
    """The reported bug: 401 while Redis was up, then 200 in the very process that took the
    sign-out once Redis was unreachable (store_outage=serve)."""
    h = make_harness(store=redis_server.url, store_timeout=0.2, store_outage=policy)
    cookie = await new_session(h, redis_server)
    assert (await sign_out(h, cookie)).status_code == 200
    assert await status_with(h, cookie) == 401
    redis_server.stop()
    await view_lost(h)
    for _ in range(3):
        assert await status_with(h, cookie) == 401
    redis_server.start()
    await view_live(h)
    assert await status_with(h, cookie) == 401


@pytest.mark.parametrize("policy", ["serve", "refuse"])
async def test_a_sign_out_pushed_from_another_gate_before_the_outage_holds(
    make_harness: Callable[..., Harness], redis_server: RedisServer, policy: str
) -> None:
    one = make_harness(store=redis_server.url, store_timeout=0.2)
    two = make_harness(store=redis_server.url, store_timeout=0.2, store_outage=policy)
    cookie = await new_session(one, redis_server)
    await view_live(two)
    assert await status_with(two, cookie) == 200
    assert (await sign_out(one, cookie)).status_code == 200
    await eventually(lambda: _status_is(two, cookie, 401), "the sign-out is pushed to two")
    assert two.gate.core.revocations.view.live  # two knew it from the push, not from asking
    redis_server.stop()
    await view_lost(two)
    for _ in range(3):
        assert await status_with(two, cookie) == 401


@pytest.mark.parametrize(("policy", "during"), [("serve", 200), ("refuse", 503)])
async def test_a_sign_out_during_the_outage_reaches_every_gate_when_redis_is_back(
    make_harness: Callable[..., Harness],
    redis_server: RedisServer,
    caplog: Any,
    policy: str,
    during: int,
) -> None:
    """Where it was made, it holds at once; another gate cannot know it until Redis is back
    (``serve``: it serves the cookie meanwhile, as documented; ``refuse``: 503); then it is
    written to Redis and pushed, and every gate refuses the cookie, a new one too."""
    caplog.set_level(logging.INFO, logger="saml_gate")
    one = make_harness(store=redis_server.url, store_timeout=0.2)
    two = make_harness(store=redis_server.url, store_timeout=0.2, store_outage=policy)
    cookie = await new_session(one, redis_server)
    await view_live(two)
    redis_server.stop()
    await view_lost(one)
    await view_lost(two)

    out = await sign_out(one, cookie)
    assert out.status_code == 503 and "store_unavailable" in out.text
    assert "saml_gate_session=;" in out.headers["set-cookie"]
    held = store_events(caplog, "revocations_undelivered")
    assert held and "only this process enforces" in held[0].getMessage()
    assert await status_with(one, cookie) == 401  # a copy of the cookie, where it was made
    assert await status_with(two, cookie) == during  # another gate cannot know it yet

    redis_server.start()  # empty: the sign-out is only in gate one's memory
    await eventually(lambda: _status_is(two, cookie, 401), "gate two learns the sign-out")
    assert store_events(caplog, "revocations_delivered")
    assert await status_with(one, cookie) == 401
    fresh = make_harness(store=redis_server.url, store_timeout=0.2)
    assert await status_with(fresh, cookie) == 401


async def test_sign_outs_a_restarted_empty_redis_lost_are_written_back(
    make_harness: Callable[..., Harness], redis_server: RedisServer
) -> None:
    one = make_harness(store=redis_server.url, store_timeout=0.2)
    cookie = await new_session(one, redis_server)
    kept = await new_session(one, redis_server)
    assert (await sign_out(one, cookie)).status_code == 200
    redis_server.stop()
    await view_lost(one)
    redis_server.start()  # without persistence: every revocation in it is gone
    await view_live(one)
    fresh = make_harness(store=redis_server.url, store_timeout=0.2)
    await eventually(lambda: _status_is(fresh, cookie, 401), "the sign-out is in Redis again")
    assert await status_with(fresh, kept) == 200
