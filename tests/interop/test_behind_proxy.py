"""Behind an ngrok-like proxy: every URL the gate checks comes from base_url, nothing else.

The gate runs under uvicorn with its defaults (forwarded headers trusted from 127.0.0.1 only);
a TLS-terminating proxy for https://acme-gate.example forwards to it, as the ngrok agent does.
A real IdP signs in through the proxy; then requests with forged Host and X-Forwarded-* headers,
from an untrusted address, from a trusted one, and through the proxy, try to move the ACS.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml.keys import KeyPair
from tests.interop.client import HTML_ACCEPT, HostMap, authn_request, form_with, submit
from tests.interop.gate_server import GateServer, start_gate
from tests.interop.ngrok_proxy import NgrokLikeProxy, open_tunnel
from tests.interop.servers import bound_socket
from tests.interop.simplesamlphp import USERS, SimpleSamlPhp
from tests.interop.tls import TlsFiles, make_tls_files
from tests.support import IDP_ENTITY_ID, idp_metadata

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PUBLIC_HOST = "acme-gate.example"
PUBLIC_URL = "https://" + PUBLIC_HOST
PUBLIC_ACS = PUBLIC_URL + "/saml/acs"
FORGED = {
    "host": "evil.example",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "http",
    "x-forwarded-for": "198.51.100.7",
}
FORGED_ACS = "http://evil.example/saml/acs"


Forger = tuple[httpx.AsyncClient, str, dict[str, str]]


@dataclass
class Tunnelled:
    gate: GateServer
    proxy: NgrokLikeProxy
    tls: TlsFiles

    def client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A client that reaches the public name through the proxy."""
        transport = HostMap({PUBLIC_HOST: self.proxy.port}, verify=self.tls.client_context())
        return httpx.AsyncClient(transport=transport, headers=headers, timeout=30.0)


def tunnelled_gate(
    servers: ExitStack, tmp_path: Path, idp_xml: str, sp_keys: KeyPair, **settings: object
) -> Tunnelled:
    tls = make_tls_files(tmp_path / "tls", [PUBLIC_HOST])
    sock = bound_socket()
    servers.callback(sock.close)
    gate = start_gate(
        sock,
        base_url=PUBLIC_URL,
        idp_metadata=idp_xml,
        sp_keys=sp_keys,
        state_dir=tmp_path / "gate",
        public_paths=["/public/"],
        **settings,
    )
    servers.callback(gate.stop)
    proxy = open_tunnel(servers, PUBLIC_HOST, gate.local_url, tls)
    return Tunnelled(gate=gate, proxy=proxy, tls=tls)


async def test_simplesamlphp_login_through_the_proxy(
    need_simplesamlphp: None, servers: ExitStack, tmp_path: Path, sp_keys: KeyPair
) -> None:
    """The IdP knows only the public URL; the gate, reached over http on loopback, agrees."""
    idp = SimpleSamlPhp.start(
        tmp_path / "ssp",
        sp_entity_id=PUBLIC_URL + "/saml/metadata",
        sp_acs_url=PUBLIC_ACS,
        sp_slo_url=PUBLIC_URL + "/saml/slo",
    )
    servers.callback(idp.stop)
    tunnel = tunnelled_gate(servers, tmp_path, httpx.get(idp.local_metadata_url).text, sp_keys)
    async with tunnel.client() as client:
        start = await client.get(PUBLIC_URL + "/private/report", headers=HTML_ACCEPT)
        assert start.status_code == 303, start.text
        pending_cookie = start.headers["set-cookie"]
        assert "SameSite=None" in pending_cookie and "Secure" in pending_cookie
        assert authn_request(start.headers["location"]).get("AssertionConsumerServiceURL") == (
            PUBLIC_ACS
        )
        login = await client.get(start.headers["location"], follow_redirects=True)
        credentials = {"username": "alice", "password": USERS["alice"]}
        posted = await submit(client, form_with(login, "username"), **credentials)
        form = form_with(posted, "SAMLResponse")
        assert form.action == PUBLIC_ACS
        acs = await client.post(form.action, data=form.fields, headers=HTML_ACCEPT)
        assert acs.status_code == 303, acs.text
        assert "Secure" in acs.headers["set-cookie"]
        whoami = (await client.get(PUBLIC_URL + "/whoami")).json()
        echo = (await client.get(PUBLIC_URL + "/public/echo")).json()
    assert whoami["name_id"] == "alice@example.com"
    # What the proxy told the app, and what uvicorn made of it (it trusts 127.0.0.1).
    assert echo == {
        "scheme": "https",
        "host": PUBLIC_HOST,
        "client": "127.0.0.1",
        "x_forwarded_host": PUBLIC_HOST,
        "x_forwarded_for": "127.0.0.1",
    }


@pytest.fixture
def tunnel(servers: ExitStack, tmp_path: Path, idp_keys: KeyPair, sp_keys: KeyPair) -> Tunnelled:
    """The gate behind the proxy, trusting the test IdP, IdP-initiated sign-in allowed (so a
    Response needs no pending request and only the address checks decide)."""
    return tunnelled_gate(
        servers, tmp_path, idp_metadata(idp_keys), sp_keys, allow_idp_initiated=True
    )


@pytest.fixture(params=["untrusted address", "trusted address", "through the proxy"])
async def forger(request: pytest.FixtureRequest, tunnel: Tunnelled) -> AsyncIterator[Forger]:
    """(client sending forged headers, its base URL, what uvicorn then tells the app).

    Untrusted: 127.0.0.2 straight to the gate's uvicorn, which ignores the forged headers.
    Trusted: 127.0.0.1 straight to uvicorn, which believes them (as it would the agent).
    Through the proxy: the forged Host passes through, the X-Forwarded-* are replaced.
    """
    if request.param == "through the proxy":
        client = tunnel.client(headers=FORGED)
        # The proxy appends the real client to X-Forwarded-For; uvicorn skips that trusted
        # loopback hop and takes the forged entry before it.
        base, seen = PUBLIC_URL, {"scheme": "https", "client": "198.51.100.7"}
    elif request.param == "trusted address":
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
        client = httpx.AsyncClient(transport=transport, headers=FORGED, timeout=30.0)
        base, seen = tunnel.gate.local_url, {"scheme": "http", "client": "198.51.100.7"}
    else:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        client = httpx.AsyncClient(transport=transport, headers=FORGED, timeout=30.0)
        base, seen = tunnel.gate.local_url, {"scheme": "http", "client": "127.0.0.2"}
    async with client:
        yield client, base, seen


def response_b64(idp_keys: KeyPair, *, destination: str, recipient: str) -> str:
    """An unsolicited Response from the trusted IdP. The assertion (with the Recipient) is
    signed; the Response is not, so its Destination can be set afterwards."""
    spec = ResponseSpec(
        issuer=IDP_ENTITY_ID,
        destination=recipient,
        audience=PUBLIC_URL + "/saml/metadata",
        name_id="alice@example.com",
        attributes={"email": ["alice@example.com"], "groups": ["admins"]},
    )
    root = etree.fromstring(issue_response(spec, idp_keys, sign_response=False))
    root.set("Destination", destination)
    return base64.b64encode(etree.tostring(root)).decode()


async def test_forged_headers_do_not_move_the_sp_urls(
    forger: Forger,
) -> None:
    client, base, seen = forger
    # A host the gate does not serve: a page load goes once to the same page at base_url, never
    # to the forged host; when it comes straight back (a proxy rewriting Host), the answer is
    # unknown_host, before any rule, public paths included.
    guard = {**HTML_ACCEPT, "cookie": "saml_gate_readdressed=1"}
    first = await client.get(base + "/public/echo", headers=HTML_ACCEPT)
    assert (first.status_code, first.headers["location"]) == (303, PUBLIC_URL + "/public/echo")
    for path in ("/public/echo", "/private/report"):
        again = await client.get(base + path, headers=guard)
        assert again.status_code == 421 and "unknown_host" in again.text, again.text
    # At the gate's own host, the forged forwarding headers move neither what uvicorn tells the
    # app nor the SP's URLs.
    own = {"host": PUBLIC_HOST}
    client.cookies.clear()
    echo = (await client.get(base + "/public/echo", headers=own)).json()
    assert echo["host"] == PUBLIC_HOST
    assert {"scheme": echo["scheme"], "client": echo["client"]} == seen
    start = await client.get(base + "/private/report", headers={**HTML_ACCEPT, **own})
    # Plain http straight to uvicorn is not base_url's origin: sent there once, as any address
    # away from base_url is; when it comes straight back, the sign-in starts.
    if "SAMLRequest" not in start.headers["location"]:
        assert start.headers["location"] == PUBLIC_URL + "/private/report"
        start = await client.get(base + "/private/report", headers={**guard, **own})
    assert start.status_code == 303
    request = authn_request(start.headers["location"])
    assert request.get("AssertionConsumerServiceURL") == PUBLIC_ACS
    metadata = (await client.get(base + "/saml/metadata")).text
    assert f'Location="{PUBLIC_ACS}"' in metadata
    assert "evil.example" not in metadata


@pytest.mark.parametrize(
    ("destination", "recipient", "code"),
    [
        (FORGED_ACS, FORGED_ACS, "wrong_destination"),
        (FORGED_ACS, PUBLIC_ACS, "wrong_destination"),
        (PUBLIC_ACS, FORGED_ACS, "wrong_recipient"),
        ("LOCAL", PUBLIC_ACS, "wrong_destination"),
        (PUBLIC_ACS, "LOCAL", "wrong_recipient"),
        (PUBLIC_ACS, PUBLIC_ACS, None),
    ],
)
async def test_forged_headers_do_not_move_the_acs_checks(
    tunnel: Tunnelled,
    forger: Forger,
    idp_keys: KeyPair,
    destination: str,
    recipient: str,
    code: str | None,
) -> None:
    """Only a Response addressed to base_url's ACS is accepted, whatever the request says.
    LOCAL: the address the request really reached (the gate's uvicorn on loopback)."""
    client, base, _ = forger
    local_acs = tunnel.gate.local_url + "/saml/acs"
    saml_response = response_b64(
        idp_keys,
        destination=local_acs if destination == "LOCAL" else destination,
        recipient=local_acs if recipient == "LOCAL" else recipient,
    )
    acs = await client.post(
        base + "/saml/acs",
        data={"SAMLResponse": saml_response, "RelayState": "/private/report"},
        headers=HTML_ACCEPT,
    )
    if code is None:
        assert acs.status_code == 303, acs.text
        assert acs.headers["location"] == "/private/report"
        assert "saml_gate_session=" in acs.headers["set-cookie"]
    else:
        assert acs.status_code == 400, acs.text
        assert f"Error code: <code>{code}</code>" in acs.text
        assert "set-cookie" not in acs.headers
