"""A signed-in person's admission is kept for their next requests (``web/kept_admits.py``).

Each input the verdict depends on is changed between two requests, through the real
endpoints, and the next request must be decided anew: a sign-out (on this gate and on another
gate sharing the memory store), the rule's ``max_authn_age``, the idle and absolute ends of
the session, its refresh, the re-assertion deadline, the identity JWT's renewal, a policy
reload, another host.
"""

from __future__ import annotations

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
        await self.idp.sign_in_async(client, email=ANN, **person)
        return client

    @property
    def keeper(self) -> Gatekeeper:
        return self.gate.parts.gatekeeper

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
        assert site.kept() == 1
        mine, grafana = "http://testserver", "http://grafana.testserver"
        assert audiences == [mine, mine, grafana, mine, grafana]
    finally:
        await site.close()
