"""Running a corpus case through the real ACS endpoint, as a browser on another host would.

The client address is not loopback (``198.51.100.23``, TEST-NET-2), so the gate shows the generic
error page, exactly what an attacker sees. A loopback listener (:class:`Canary`) stands in for
every URL a message names, to prove nothing is fetched.
"""

from __future__ import annotations

import socket
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from lxml import etree

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.security.corpus import OTHER_IDP_ENTITY_ID, Case, Policy, form_value
from tests.security.forge import Context
from tests.support import (
    BASE_URL,
    IDP_ENTITY_ID,
    FrozenClock,
    decode_redirect_request,
    idp_metadata,
)

REMOTE_CLIENT = ("198.51.100.23", 50123)
RETURN_PATH = "/private/page"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


class Canary:
    """A loopback TCP listener that counts the connections made to it."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@dataclass(frozen=True)
class CorpusKeys:
    idp: KeyPair
    sp: KeyPair
    attacker: KeyPair
    other_idp: KeyPair
    """Trusted for another entity ID (case 20b); its certificate clones the IdP's subject."""

    def context(self, request_id: str, clock: FrozenClock, canary: str) -> Context:
        return Context(
            idp=self.idp,
            sp=self.sp,
            attacker=self.attacker,
            other_idp=self.other_idp,
            request_id=request_id,
            now=clock.datetime,
            canary=canary,
        )


@dataclass(frozen=True)
class IdpTrust:
    """What the SPs are told about the IdP under a policy."""

    metadata: str
    entity_id: str
    signing_cert: bytes


def _entity(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def idp_trust(policy: Policy, keys: CorpusKeys) -> IdpTrust:
    ours = idp_metadata(keys.idp)
    if policy.metadata == "default":
        return IdpTrust(ours, IDP_ENTITY_ID, keys.idp.cert_pem)
    if policy.metadata == "two-idps":
        both = etree.Element(f"{{{MD}}}EntitiesDescriptor", nsmap={"md": MD})
        both.append(_entity(ours))
        both.append(_entity(idp_metadata(keys.other_idp, OTHER_IDP_ENTITY_ID)))
        return IdpTrust(etree.tostring(both).decode(), IDP_ENTITY_ID, keys.idp.cert_pem)
    # encryption-only: our key is listed for encryption, another key for signing
    entity = _entity(ours)
    descriptor = entity.find(f".//{{{MD}}}KeyDescriptor")
    assert descriptor is not None
    descriptor.set("use", "encryption")
    signing = _entity(idp_metadata(keys.other_idp)).find(f".//{{{MD}}}KeyDescriptor")
    assert signing is not None
    descriptor.addnext(signing)
    return IdpTrust(etree.tostring(entity).decode(), IDP_ENTITY_ID, keys.other_idp.cert_pem)


def gate_overrides(policy: Policy, keys: CorpusKeys) -> dict[str, Any]:
    """Settings for ``make_harness``."""
    trust = idp_trust(policy, keys)
    return {
        **policy.gate_settings(),
        "idp_metadata": trust.metadata,
        "idp_entity_id": trust.entity_id,
    }


def remote_client(gate: SamlGate) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gate, client=REMOTE_CLIENT)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def start_login(client: httpx.AsyncClient) -> tuple[str, str]:
    """(request ID, RelayState) after a browser GET to a protected page."""
    r = await client.get(RETURN_PATH, headers={"accept": "text/html"})
    assert r.status_code == 303, r.text
    request, relay = decode_redirect_request(r.headers["location"])
    assert relay is not None
    return str(request.get("ID")), relay


async def post(
    client: httpx.AsyncClient, case: Case, value: str, relay: str | None
) -> httpx.Response:
    t = case.transport
    relay_state = t.relay_state if t.relay_state is not None else relay
    fields = {"RelayState": relay_state} if relay_state is not None else {}
    if t.method == "GET":
        return await client.get("/saml/acs", params={"SAMLResponse": value, **fields})
    if t.in_query:
        return await client.post(f"/saml/acs?SAMLResponse={quote(value, safe='')}", data=fields)
    if t.raw_form is not None:
        return await client.post(
            "/saml/acs",
            content=t.raw_form(value).encode(),
            headers={"content-type": t.content_type},
        )
    return await client.post("/saml/acs", data={"SAMLResponse": value, **fields})


@dataclass
class AcsRun:
    """The judged answer of the ACS, and what the oracles need to see the same message."""

    response: httpx.Response
    client: httpx.AsyncClient
    """The browser that posted (ask it for its session)."""
    value: str
    """The SAMLResponse form value."""
    outstanding: str
    """The request ID the posting browser had outstanding (the oracles are told the same)."""


async def run_at_acs(
    case: Case,
    gate: SamlGate,
    clock: FrozenClock,
    keys: CorpusKeys,
    canary: Canary,
    stack: AsyncExitStack,
    caplog: pytest.LogCaptureFixture | None = None,
) -> AcsRun:
    """Sign in as far as the IdP, build the case's message, post it; return the judged answer.

    ``caplog`` is cleared right before the judged post, so it holds that post's records only.
    """
    browser = await stack.enter_async_context(remote_client(gate))
    if case.unsolicited:
        request_id, relay = "id-no-request-was-sent", None
    else:
        request_id, relay = await start_login(browser)
    value = form_value(case.build(keys.context(request_id, clock, canary.url)))
    poster, outstanding = browser, request_id
    if case.transport.other_browser:
        poster = await stack.enter_async_context(remote_client(gate))
        outstanding, relay = await start_login(poster)
    if case.transport.post_twice:
        first = await post(poster, case, value, relay)
        assert first.status_code == 303, first.text
        if case.transport.keep_pending:
            key = gate.core.relay.relay_key(relay or "") or "kept"
            header = gate.core.relay.pending_cookie(key, request_id, RETURN_PATH).decode()
            name, cookie = header.split(";")[0].split("=", 1)
            poster.cookies.set(name, cookie, path="/saml/acs")
    if caplog is not None:
        caplog.clear()
    response = await post(poster, case, value, relay)
    return AcsRun(response=response, client=poster, value=value, outstanding=outstanding)
