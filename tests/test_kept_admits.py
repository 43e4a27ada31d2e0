"""A signed-in person's admission is kept for their next requests (``web/kept_admits.py``).

Each input the verdict depends on is changed between two requests, through the real
endpoints, and the next request must be decided anew: a sign-out (on this gate and on another
gate sharing the memory store), the rule's ``max_authn_age``, the idle and absolute ends of
the session, its refresh, the re-assertion deadline, the identity JWT's renewal, a policy
reload, another host, another IdP. Each line is kept for itself, and a request with more to it
than its line (an Authorization or method override header, a POST, two Host headers) is
decided in full whatever was kept.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from starlette.types import Receive, Scope, Send

from saml_gate import MemoryStore, Rule, SamlGate
from saml_gate.identity.tokens import JWT_SCOPE_KEY
from saml_gate.testing import SamlTestIdp, gate_error_code
from saml_gate.web.gatekeeper import Gatekeeper

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
ANN = "ann@example.com"
SIGN_OUT = {
    "accept": "text/html",
    "content-type": "application/x-www-form-urlencoded",
    "origin": "http://testserver",
    "sec-fetch-site": "same-origin",
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Who the gate says it is, and the identity JWT it sent."""
    assert scope["type"] == "http"
    body = {"user": scope["user"].name_id, "jwt": (scope.get(JWT_SCOPE_KEY) or b"").decode()}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class Site:
    def __init__(self, idp: SamlTestIdp, **options: Any) -> None:
        self.idp = idp
        self.gate = SamlGate(app, **idp.gate_options(**options))
        self.clients: list[httpx.AsyncClient] = []

    def browser(self, base_url: str = "http://testserver") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.gate)
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.clients.append(client)
        return client

    async def signed_in(self, **person: Any) -> httpx.AsyncClient:
        client = self.browser()
        await self.idp.sign_in_async(client, **{"email": ANN, **person})
        return client

    @property
    def keeper(self) -> Gatekeeper:
        return self.gate.parts.gatekeeper

    def count_session_reads(self) -> list[float]:
        """The times at which the gate reads a session from here on (one entry each)."""
        reads: list[float] = []
        authenticate = self.keeper._authenticate

        async def counted(header: str | None, now: float) -> Any:
            reads.append(now)
            return await authenticate(header, now)

        self.keeper._authenticate = counted  # type: ignore[method-assign]
        return reads

    def kept(self) -> int:
        kept = self.keeper._kept
        assert kept is not None
        return len(kept)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.gate.stop()


@pytest.fixture
async def site(saml_idp: SamlTestIdp) -> Any:
    made = Site(saml_idp, access_rules=[Rule("/recent/", max_authn_age=600)])
    yield made
    await made.close()


async def status(client: httpx.AsyncClient, path: str = "/x") -> tuple[int, str | None]:
    answer = await client.get(path, headers=JSON)
    return answer.status_code, None if answer.status_code == 200 else gate_error_code(answer)


async def kept_then(site: Site, client: httpx.AsyncClient, path: str = "/x") -> None:
    """Two admitted requests, the second answered from what was kept."""
    assert await status(client, path) == (200, None)
    assert site.kept() == 1
    assert await status(client, path) == (200, None)


async def test_the_next_request_is_admitted_without_reading_the_session(site: Site) -> None:
    ann = await site.signed_in()
    assert await status(ann) == (200, None)

    async def unreadable(header: str | None, now: float) -> Any:
        raise AssertionError("the session was read again")

    site.keeper._authenticate = unreadable  # type: ignore[method-assign]
    for _ in range(3):
        assert await status(ann) == (200, None)


async def test_a_sign_out_ends_what_was_kept(site: Site) -> None:
    ann = await site.signed_in()
    await kept_then(site, ann)
    cookie = ann.cookies.get("saml_gate_session")
    out = await ann.post("/saml/logout", headers=SIGN_OUT, content=b"")
    assert out.status_code == 303  # on to the IdP's Single Logout: the session has ended here
    ann.cookies.set("saml_gate_session", cookie or "")  # the old cookie, sent again
    assert await status(ann) == (401, "not_authenticated")


async def test_a_sign_out_on_another_gate_sharing_the_memory_store(
    saml_idp: SamlTestIdp,
) -> None:
    store = MemoryStore(clock=saml_idp.clock)
    one, two = Site(saml_idp, store=store), Site(saml_idp, store=store)
    try:
        ann = await one.signed_in()
        there = two.browser()
        there.cookies.set("saml_gate_session", ann.cookies.get("saml_gate_session") or "")
        await kept_then(two, there)
        out = await ann.post("/saml/logout", headers=SIGN_OUT, content=b"")
        assert out.status_code == 303
        assert await status(there) == (401, "not_authenticated")
    finally:
        await one.close()
        await two.close()


async def test_max_authn_age_runs_out_between_two_requests(site: Site) -> None:
    ann = await site.signed_in()
    await kept_then(site, ann, "/recent/x")
    skew = site.gate.settings.clock_skew
    site.idp.clock.advance(600 + skew + 1)
    assert await status(ann, "/recent/x") == (401, "step_up_required")
    assert await status(ann, "/x") == (200, None)  # elsewhere the session still holds


async def test_the_session_is_refreshed_when_due(site: Site) -> None:
    ann = await site.signed_in()
    await kept_then(site, ann)
    site.idp.clock.advance(site.keeper._sessions.refresh_after + 1)
    answer = await ann.get("/x", headers=JSON)
    assert answer.status_code == 200
    assert "saml_gate_session=" in answer.headers.get("set-cookie", "")


async def test_an_idle_session_ends(site: Site) -> None:
    ann = await site.signed_in()
    await kept_then(site, ann)
    site.idp.clock.advance(site.gate.settings.inactivity_timeout + 1)
    assert await status(ann) == (401, "not_authenticated")


async def test_a_session_at_its_maximum_duration_ends(saml_idp: SamlTestIdp) -> None:
    site = Site(saml_idp, maximum_duration=600, inactivity_timeout=600)
    try:
        ann = await site.signed_in()
        for _ in range(11):  # each minute: refreshed, never idle
            assert await status(ann) == (200, None)
            site.idp.clock.advance(59)
        site.idp.clock.advance(600 - 11 * 59 + 1)
        assert await status(ann) == (401, "not_authenticated")
    finally:
        await site.close()


async def test_the_reassertion_deadline_is_kept_to(saml_idp: SamlTestIdp) -> None:
    site = Site(saml_idp, reassert_interval=900.0, inactivity_timeout=3600)
    try:
        ann = await site.signed_in()
        await kept_then(site, ann)
        site.idp.clock.advance(901)
        assert await status(ann) == (401, "reassertion_required")
    finally:
        await site.close()


async def test_the_identity_jwt_is_renewed(site: Site) -> None:
    ann = await site.signed_in()
    await kept_then(site, ann)
    first = (await ann.get("/x", headers=JSON)).json()["jwt"]
    lifetime = site.gate.settings.jwt_lifetime
    site.idp.clock.advance(lifetime * 3 / 4 + 1)
    again = (await ann.get("/x", headers=JSON)).json()["jwt"]
    assert again != first
    claims = pyjwt.decode(again, options={"verify_signature": False})
    assert claims["exp"] - site.idp.clock() > lifetime / 2


async def test_a_reloaded_policy_decides_the_next_request(
    saml_idp: SamlTestIdp, tmp_path: Path
) -> None:
    config = tmp_path / "saml-gate.toml"
    config.write_text('[[rules]]\npath = "/x"\n')
    site = Site(saml_idp, config_file=str(config))
    try:
        ann = await site.signed_in(groups=["users"])
        await kept_then(site, ann)
        config.write_text('[[rules]]\npath = "/x"\ngroups = ["admins"]\n')
        reload = site.gate.core.policy_reload
        assert reload is not None and reload.reload().applied
        assert await status(ann) == (403, "forbidden")
    finally:
        await site.close()


async def test_another_host_is_decided_for_itself(saml_idp: SamlTestIdp) -> None:
    """Same rule and Cookie header, another host: the identity JWT names that host's app."""
    site = Site(saml_idp, allowed_hosts=["grafana.testserver"])
    try:
        ann = await site.signed_in()
        cookie = {"cookie": "saml_gate_session=" + (ann.cookies.get("saml_gate_session") or "")}
        here, there = site.browser(), site.browser("http://grafana.testserver")
        audiences = []
        for client in (here, here, there, here, there):
            answer = await client.get("/x", headers={**JSON, **cookie})
            token = answer.json()["jwt"]
            audiences.append(pyjwt.decode(token, options={"verify_signature": False})["aud"])
        assert site.kept() == 2  # one line per host
        mine, grafana = "http://testserver", "http://grafana.testserver"
        assert audiences == [mine, mine, grafana, mine, grafana]
    finally:
        await site.close()


async def test_the_idp_trusted_is_read_at_each_kept_admission(site: Site) -> None:
    """A metadata refresh makes a new SAML state: what was kept under the old one is decided
    anew (and admitted again while the IdP is the same), and a session of an IdP no longer
    trusted is not admitted."""
    ann = await site.signed_in()
    await kept_then(site, ann)
    reads = site.count_session_reads()
    saml = site.gate.core.saml
    same = saml.state.idp
    saml.use_idp(same)  # a refresh of the same metadata
    for _ in range(3):
        assert await status(ann) == (200, None)
    assert len(reads) == 1  # decided anew once, then kept again
    saml.use_idp(dataclasses.replace(same, entity_id="http://another.example/idp"))
    assert await status(ann) == (401, "not_authenticated")


async def test_each_line_is_kept_for_itself(site: Site) -> None:
    """A person's pages each keep their own admission; a page whose rule refuses stays
    refused though the person's other pages are kept."""
    ann = await site.signed_in(groups=["users"])
    for path in ("/x", "/y", "/x?page=2", "/x"):
        assert await status(ann, path) == (200, None)
    assert site.kept() == 3
    reads = site.count_session_reads()
    for path in ("/y", "/x?page=2", "/x"):
        assert await status(ann, path) == (200, None)
    assert reads == []  # every one of them kept


async def test_more_than_the_line_is_decided_in_full(saml_idp: SamlTestIdp) -> None:
    """With /api/x kept for the Cookie header, the same line with a method override header, an
    access token in the query, a bearer token, a POST or two Host headers is decided as if
    nothing were kept."""
    rules = [Rule("/api/", methods=("DELETE",), groups=("admins",))]
    site = Site(saml_idp, access_rules=rules)
    try:
        ann = await site.signed_in(groups=["users"])
        await kept_then(site, ann, "/api/x")
        override = {**JSON, "x-http-method-override": "DELETE"}
        answer = await ann.get("/api/x", headers=override)
        assert (answer.status_code, gate_error_code(answer)) == (403, "forbidden")
        assert await status(ann, "/api/x?access_token=abc") == (400, "token_in_query")
        answer = await ann.get("/api/x", headers={**JSON, "authorization": "Bearer nonsense"})
        assert (answer.status_code, gate_error_code(answer)) == (403, "token_not_accepted")
        for _ in range(2):  # a POST without a body is admitted (a kept POST would stay so)
            assert (await ann.post("/api/x", headers=JSON)).status_code == 200
        answer = await ann.post("/api/x", headers=JSON, data={"_method": "DELETE"})
        assert (answer.status_code, gate_error_code(answer)) == (403, "forbidden")
        cookie = ann.cookies.get("saml_gate_session") or ""
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/x",
            "raw_path": b"/api/x",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"host", b"elsewhere.example"),
                (b"accept", b"application/json"),
                (b"cookie", b"saml_gate_session=" + cookie.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        await site.gate(scope, receive, send)
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"])["error"] == "bad_host"
        assert await status(ann, "/api/x") == (200, None)  # the line itself is still kept
    finally:
        await site.close()


async def test_the_lines_and_sessions_kept_are_bounded(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from saml_gate.web import kept_admits

    monkeypatch.setattr(kept_admits, "KEPT_LINES", 5)
    monkeypatch.setattr(kept_admits, "KEPT_SESSIONS", 2)
    ann = await site.signed_in()
    for n in range(12):
        assert await status(ann, f"/page/{n}") == (200, None)
        assert 1 <= site.kept() <= 5
    people = [await site.signed_in(email=f"p{n}@example.com") for n in range(5)]
    for person in people:
        assert await status(person) == (200, None)
        kept = site.keeper._kept
        assert kept is not None and 1 <= len(kept._kept) <= 2
