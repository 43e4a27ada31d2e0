"""Logout: local sign-out (not a CSRF target, revoked server-side) and SAML Single Logout.

The IdP here is pysaml2's own (``saml2.server.Server``, in process), code nobody on this project
wrote: it checks the signature of the gate's LogoutRequests (``want_authn_requests_signed``) and
its messages are what a real IdP sends. HTTP-Redirect signatures come from pysaml2's RSA signer,
so no xmlsec1 program is needed; HTTP-POST messages (Okta posts its LogoutResponse) are signed
with the dev IdP's XML signer.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import httpx
import pytest
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.request import LogoutRequest as Pysaml2LogoutRequest
from saml2.response import IncorrectlySigned, StatusResponder
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import RSACrypto, import_rsa_key_from_file, verify_redirect_signature
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

from saml_gate.devidp.signing import sign_element
from saml_gate.saml.keys import KeyPair, cert_base64
from tests.conftest import TEST_REDIS_URL
from tests.support import BASE_URL, ENTITY_ID, IDP_ENTITY_ID, IDP_SSO_URL, Harness
from tests.test_store_outage import RedisServer

pytestmark = pytest.mark.anyio

IDP_SLO_URL = "https://idp.example.test/app/slo/saml"
SLO_URL = "http://127.0.0.1:8000/saml/slo"
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


# ------------------------------------------------------------------------------------ pysaml2 IdP
def idp_config(key_file: Path, cert_file: Path, sp_metadata: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "entityid": IDP_ENTITY_ID,
        "crypto_backend": "XMLSecurity",  # placeholder: Redirect signing is RSACrypto below
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [(IDP_SSO_URL, BINDING_HTTP_REDIRECT)],
                    "single_logout_service": [(IDP_SLO_URL, BINDING_HTTP_REDIRECT)],
                },
                # Makes pysaml2 check the Redirect signatures of the SP's LogoutRequests.
                "want_authn_requests_signed": True,
            }
        },
    }
    if sp_metadata is not None:
        config["metadata"] = {"inline": [sp_metadata]}
    return config


class Pysaml2Idp:
    """pysaml2's IdP holding ``keys``; it trusts the SP described by ``sp_metadata``."""

    def __init__(self, keys: KeyPair, folder: Path, sp_metadata: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        key_file, cert_file = folder / "idp.key", folder / "idp.crt"
        key_file.write_bytes(keys.key_pem)
        cert_file.write_bytes(keys.cert_pem)
        self.keys = keys
        bare = IdPConfig().load(idp_config(key_file, cert_file, None))
        self.metadata = str(entity_descriptor(bare))
        self.server = Server(config=IdPConfig().load(idp_config(key_file, cert_file, sp_metadata)))
        self.server.sec.sec_backend = RSACrypto(import_rsa_key_from_file(str(key_file)))

    # --- as the IdP of an SP-initiated logout
    def read_logout_request(self, location: str) -> Pysaml2LogoutRequest:
        q = query_of(location)
        return self.server.parse_logout_request(
            q["SAMLRequest"], BINDING_HTTP_REDIRECT, **redirect_signature(q)
        )

    def logout_response(self, request: Any, **kw: Any) -> Any:
        return self.server.create_logout_response(request, [BINDING_HTTP_REDIRECT], **kw)

    def redirect(self, message: Any, destination: str, *, response: bool, **kw: Any) -> str:
        kw.setdefault("sign", True)
        kw.setdefault("sigalg", SIG_RSA_SHA256)
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(message),
            destination,
            kw.pop("relay_state", ""),
            response=response,
            **kw,
        )
        return str(dict(info["headers"])["Location"])

    # --- as the initiator of an IdP-initiated logout
    def logout_request(
        self,
        session_indexes: list[str] | None = None,
        *,
        name_id: str = "alice@example.com",
        destination: str = SLO_URL,
    ) -> Any:
        _, request = self.server.create_logout_request(
            destination=destination,
            issuer_entity_id=ENTITY_ID,
            name_id=NameID(text=name_id, format=NAMEID_FORMAT_EMAILADDRESS),
            session_indexes=session_indexes,
            sign=False,
        )
        return request


def redirect_signature(query: dict[str, str]) -> dict[str, str | None]:
    """What pysaml2's parse_*_request needs to check an HTTP-Redirect signature."""
    return {
        "relay_state": query.get("RelayState"),
        "sigalg": query.get("SigAlg"),
        "signature": query.get("Signature"),
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def local(location: str) -> str:
    """Path and query of a gate URL, for the test client."""
    parts = urlsplit(location)
    return parts.path + "?" + parts.query


def post_signed(element_xml: str, keys: KeyPair, *, sign: bool = True) -> str:
    """An HTTP-POST binding value: the message with an enveloped signature, base64."""
    root = etree.fromstring(element_xml.encode())
    if sign:
        sign_element(root, keys)
    return base64.b64encode(etree.tostring(root)).decode()


def error_code(response: httpx.Response) -> str:
    return response.text.split("Error code: <code>", 1)[1].split("</code>", 1)[0]


@dataclass
class Slo:
    h: Harness
    idp: Pysaml2Idp
    attacker: Pysaml2Idp

    async def login(self, session_index: str, name_id: str = "alice@example.com") -> str:
        """Sign in (a fresh browser's cookies) and return the session cookie."""
        self.h.client.cookies.clear()
        email = {"email": [name_id], "groups": ["users"]}
        r = await self.h.login(session_index=session_index, name_id=name_id, attributes=email)
        assert r.status_code == 303, r.text
        return self.h.client.cookies["saml_gate_session"]

    async def status(self, cookie: str) -> int:
        """What a request with this session cookie gets, from another browser (a copied cookie)."""
        transport = httpx.ASGITransport(app=self.h.gate)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as other:
            other.cookies.set("saml_gate_session", cookie)
            return (await other.get("/private/p", headers=JSON)).status_code

    async def sign_out(self) -> httpx.Response:
        page = await self.h.client.get("/saml/logout")
        token = page.text.split("name=token value='")[1].split("'")[0]
        return await self.h.client.post("/saml/logout", data={"token": token})


@pytest.fixture
def slo(
    make_harness: Callable[..., Harness], idp_keys: KeyPair, attacker_keys: KeyPair, tmp_path: Path
) -> Callable[..., Awaitable[Slo]]:
    async def make(**settings: Any) -> Slo:
        bootstrap = Pysaml2Idp(idp_keys, tmp_path / "idp0")
        h = make_harness(idp_metadata=bootstrap.metadata, **settings)
        h.clock.now = time.time()  # pysaml2 stamps its messages with the real time
        await h.gate.start()  # loads the SP's keys and metadata
        sp_metadata = h.gate.core.saml.sp.metadata_xml.decode()
        idp = Pysaml2Idp(idp_keys, tmp_path / "idp", sp_metadata)
        attacker = Pysaml2Idp(attacker_keys, tmp_path / "attacker", sp_metadata)
        return Slo(h=h, idp=idp, attacker=attacker)

    return make


# ------------------------------------------------------------------------------------ local
async def test_get_never_signs_out_and_the_token_is_bound_to_the_session(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    other = await s.login("s-bob", name_id="bob@example.com")
    page = await s.h.client.get("/saml/logout")
    bobs_token = page.text.split("name=token value='")[1].split("'")[0]
    cookie = await s.login("s-1")
    for _ in range(2):
        assert (await s.h.client.get("/saml/logout")).status_code == 200
    assert await s.status(cookie) == 200
    s.h.client.cookies.delete("saml_gate_session")  # one session cookie, not two
    s.h.client.cookies.set("saml_gate_session", cookie)
    for data in ({}, {"token": bobs_token}, {"token": "forged"}):  # a cross-site form post
        r = await s.h.client.post("/saml/logout", data=data)
        assert r.status_code == 400 and error_code(r) == "bad_request"
    assert await s.status(cookie) == 200 and await s.status(other) == 200


async def refused_soon(worker: Harness) -> None:
    """The other worker refuses the session once the revocation reaches it (a hang guard, not a
    timing assertion)."""
    with anyio.fail_after(30):
        while (await worker.client.get("/private/p", headers=JSON)).status_code != 401:
            await anyio.sleep(0.01)


async def test_sign_out_revokes_for_every_worker_sharing_redis(
    slo: Callable[..., Awaitable[Slo]], make_harness: Callable[..., Harness], redis_prefix: str
) -> None:
    s = await slo(store=TEST_REDIS_URL, store_prefix=redis_prefix, idp_logout=False)
    other_worker = make_harness(
        idp_metadata=s.idp.metadata, store=TEST_REDIS_URL, store_prefix=redis_prefix
    )
    cookie = await s.login("s-1")
    other_worker.client.cookies.set("saml_gate_session", cookie)
    assert (await other_worker.client.get("/private/p", headers=JSON)).status_code == 200
    out = await s.sign_out()
    assert out.status_code == 200 and "You are signed out" in out.text  # idp_logout=False
    assert "saml_gate_session=;" in out.headers["set-cookie"]
    await refused_soon(other_worker)  # pushed through Redis pub/sub


# ------------------------------------------------------------------------------------ SP-initiated
async def test_sp_initiated_single_logout(slo: Callable[..., Awaitable[Slo]]) -> None:
    s = await slo()
    cookie = await s.login("okta-session-1")
    out = await s.sign_out()
    assert out.status_code == 303
    location = out.headers["location"]
    assert location.startswith(IDP_SLO_URL + "?")
    assert "saml_gate_session=;" in " ".join(out.headers.get_list("set-cookie"))
    assert await s.status(cookie) == 401  # revoked before the IdP even answers
    # pysaml2's IdP accepts the request: signed with the SP certificate from the SP metadata.
    q = query_of(location)
    assert q["SigAlg"] == SIG_RSA_SHA256
    request = s.idp.read_logout_request(location)
    assert request.message.name_id.text == "alice@example.com"
    assert request.message.name_id.format == NAMEID_FORMAT_EMAILADDRESS
    assert [i.text for i in request.message.session_index] == ["okta-session-1"]
    assert request.message.issuer.text == ENTITY_ID
    # ... and answers; the browser brings the answer back.
    back = s.idp.redirect(s.idp.logout_response(request.message), SLO_URL, response=True)
    answered = await s.h.client.get(local(back), headers=HTML)
    # The answer leaves the address bar: a 303 to the clean sign-out URL.
    assert answered.status_code == 303 and answered.headers["location"] == "/saml/logout?done=idp"
    assert "saml_gate_logout=;" in " ".join(answered.headers.get_list("set-cookie"))
    done = await s.h.client.get(answered.headers["location"], headers=HTML)
    assert done.status_code == 200, done.text
    assert "also signed out at your identity provider" in done.text


async def test_the_idp_refuses_a_logout_request_whose_signature_is_broken(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    """The negative control: pysaml2's IdP really checks what the gate signs."""
    s = await slo()
    await s.login("s-1")
    location = (await s.sign_out()).headers["location"]
    q = query_of(location)
    q["Signature"] = base64.b64encode(b"\0" * 256).decode()
    forged = IDP_SLO_URL + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in q.items())
    with pytest.raises(IncorrectlySigned):
        s.idp.read_logout_request(forged)


async def sp_initiated(s: Slo) -> Any:
    await s.login("s-1")
    return s.idp.read_logout_request((await s.sign_out()).headers["location"]).message


async def test_logout_response_must_be_signed_by_the_idp_and_answer_our_request(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    request = await sp_initiated(s)
    good = s.idp.redirect(s.idp.logout_response(request), SLO_URL, response=True)
    q = query_of(good)
    unsigned = SLO_URL + "?SAMLResponse=" + quote(q["SAMLResponse"], safe="")
    tampered = good.replace("SAMLResponse=", "SAMLResponse=A", 1)
    attacker = s.attacker.redirect(s.attacker.logout_response(request), SLO_URL, response=True)
    sha1 = s.idp.redirect(
        s.idp.logout_response(request), SLO_URL, response=True, sigalg=SIG_RSA_SHA1
    )
    for url in (unsigned, tampered, attacker, sha1):
        r = await s.h.client.get(local(url), headers=HTML)
        assert r.status_code == 400 and error_code(r) == "slo_signature", url
    elsewhere = s.idp.logout_response(request)
    elsewhere.destination = "https://other.example/saml/slo"
    r = await s.h.client.get(local(s.idp.redirect(elsewhere, SLO_URL, response=True)))
    assert r.status_code == 400 and error_code(r) == "slo_invalid"
    ok = await s.h.client.get(local(good), headers=HTML)
    assert ok.status_code == 303 and "SAMLResponse" not in ok.headers["location"]
    # The pending-logout cookie is gone: the same answer again matches nothing.
    again = await s.h.client.get(local(good), headers=HTML)
    assert again.status_code == 400 and error_code(again) == "slo_unexpected"


async def test_logout_response_for_another_request_is_refused(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    request = await sp_initiated(s)
    request.id = "id-someone-elses-request"
    r = await s.h.client.get(
        local(s.idp.redirect(s.idp.logout_response(request), SLO_URL, response=True))
    )
    assert r.status_code == 400 and error_code(r) == "slo_unexpected"


async def test_okta_style_posted_logout_response(slo: Callable[..., Awaitable[Slo]]) -> None:
    """Okta sends its LogoutResponse with the HTTP-POST binding and an XML signature."""
    s = await slo()
    request = await sp_initiated(s)
    xml = str(s.idp.logout_response(request))
    for value, code in (
        (post_signed(xml, s.idp.keys, sign=False), "slo_signature"),
        (post_signed(xml, s.attacker.keys), "slo_signature"),
    ):
        r = await s.h.client.post("/saml/slo", data={"SAMLResponse": value}, headers=HTML)
        assert r.status_code == 400 and error_code(r) == code
    r = await s.h.client.post(
        "/saml/slo", data={"SAMLResponse": post_signed(xml, s.idp.keys)}, headers=HTML
    )
    assert r.status_code == 200 and "also signed out" in r.text


async def test_an_idp_failure_status_is_reported(slo: Callable[..., Awaitable[Slo]]) -> None:
    from saml2.s_utils import status_message_factory
    from saml2.samlp import STATUS_RESPONDER

    s = await slo()
    request = await sp_initiated(s)
    failed = s.idp.logout_response(
        request, status=status_message_factory("no session", STATUS_RESPONDER)
    )
    r = await s.h.client.get(local(s.idp.redirect(failed, SLO_URL, response=True)), headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/saml/logout?done=idp_failed"
    r = await s.h.client.get(r.headers["location"], headers=HTML)
    assert "You are signed out" in r.text and "could not end every session" in r.text


# ------------------------------------------------------------------------------------ IdP-initiated
async def test_idp_initiated_logout_ends_the_matching_sessions(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    first = await s.login("okta-1")
    second = await s.login("okta-2")
    bob = await s.login("okta-3", name_id="bob@example.com")
    request = s.idp.logout_request(["okta-1"])
    url = s.idp.redirect(request, SLO_URL, response=False, relay_state="state-42")
    s.h.client.cookies.clear()
    s.h.client.cookies.set("saml_gate_session", first)
    r = await s.h.client.get(local(url), headers=HTML)
    assert r.status_code == 303
    assert "saml_gate_session=;" in r.headers["set-cookie"]  # this browser's cookie too
    answer = r.headers["location"]
    assert answer.startswith(IDP_SLO_URL + "?")
    assert [await s.status(c) for c in (first, second, bob)] == [401, 200, 200]
    # The answer is signed with the SP key (checked by pysaml2, not by the gate's own code)...
    q = query_of(answer)
    assert q["RelayState"] == "state-42"
    assert verify_redirect_signature(
        q, s.idp.server.sec.sec_backend, cert=cert_base64(s.h.sp_keys.cert_pem)
    )
    response = s.idp.server.parse_logout_request_response(q["SAMLResponse"], BINDING_HTTP_REDIRECT)
    assert response.response.in_response_to == request.id
    assert response.response.status.status_code.value.endswith(":Success")
    assert response.response.destination == IDP_SLO_URL
    # ... and a LogoutRequest without SessionIndex ends every session of the subject.
    everything = s.idp.redirect(s.idp.logout_request(), SLO_URL, response=False)
    assert (await s.h.client.get(local(everything))).status_code == 303
    assert [await s.status(c) for c in (first, second, bob)] == [401, 401, 200]


async def test_idp_initiated_logout_requests_that_are_refused(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    cookie = await s.login("okta-1")
    request = s.idp.logout_request(["okta-1"])
    good = s.idp.redirect(request, SLO_URL, response=False)
    unsigned = s.idp.redirect(request, SLO_URL, response=False, sign=False)
    tampered = good.replace("SigAlg=", "RelayState=x&SigAlg=", 1)
    attacker = s.attacker.redirect(request, SLO_URL, response=False)
    elsewhere = s.idp.redirect(
        s.idp.logout_request(["okta-1"], destination="https://other.example/slo"),
        SLO_URL,
        response=False,
    )
    for url, code in (
        (unsigned, "slo_signature"),
        (tampered, "slo_signature"),
        (attacker, "slo_signature"),
        (elsewhere, "slo_invalid"),
    ):
        r = await s.h.client.get(local(url), headers=HTML)
        assert r.status_code == 400 and error_code(r) == code, url
    assert await s.status(cookie) == 200
    # From now, not from the harness's start: under load the request was issued seconds later.
    s.h.clock.now = time.time()
    s.h.clock.advance(s.h.gate.settings.login_timeout + s.h.gate.settings.clock_skew + 1)
    stale = await s.h.client.get(local(good), headers=HTML)
    assert stale.status_code == 400 and error_code(stale) == "slo_invalid"
    s.h.clock.now = time.time()
    assert (await s.h.client.get(local(good))).status_code == 303
    replayed = await s.h.client.get(local(good), headers=HTML)
    assert replayed.status_code == 400 and "replayed" in replayed.text
    assert await s.status(cookie) == 401


async def test_idp_initiated_logout_with_the_post_binding(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    cookie = await s.login("okta-1")
    xml = str(s.idp.logout_request(["okta-1"]))
    for value in (post_signed(xml, s.idp.keys, sign=False), post_signed(xml, s.attacker.keys)):
        r = await s.h.client.post("/saml/slo", data={"SAMLRequest": value}, headers=HTML)
        assert r.status_code == 400 and error_code(r) == "slo_signature"
    assert await s.status(cookie) == 200
    r = await s.h.client.post(
        "/saml/slo", data={"SAMLRequest": post_signed(xml, s.idp.keys)}, headers=HTML
    )
    assert r.status_code == 303 and r.headers["location"].startswith(IDP_SLO_URL)
    assert await s.status(cookie) == 401


async def test_idp_initiated_logout_across_workers_sharing_redis(
    slo: Callable[..., Awaitable[Slo]], make_harness: Callable[..., Harness], redis_prefix: str
) -> None:
    s = await slo(store=TEST_REDIS_URL, store_prefix=redis_prefix)
    other_worker = make_harness(
        idp_metadata=s.idp.metadata, store=TEST_REDIS_URL, store_prefix=redis_prefix
    )
    cookie = await s.login("okta-1")
    other_worker.client.cookies.set("saml_gate_session", cookie)
    assert (await other_worker.client.get("/private/p", headers=JSON)).status_code == 200
    url = s.idp.redirect(s.idp.logout_request(["okta-1"]), SLO_URL, response=False)
    assert (await s.h.client.get(local(url))).status_code == 303
    await refused_soon(other_worker)  # pushed through Redis pub/sub


async def test_slo_endpoint_refuses_what_is_not_a_logout_message(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    for r in (
        await s.h.client.get("/saml/slo"),
        await s.h.client.get("/saml/slo?SAMLRequest=x&SAMLResponse=y"),
        await s.h.client.get("/saml/slo?SAMLRequest=a&SAMLRequest=b&SigAlg=x&Signature=y"),
    ):
        assert r.status_code == 400 and error_code(r) == "slo_invalid"
    authn = s.h.response_b64(s.h.spec())
    r = await s.h.client.post("/saml/slo", data={"SAMLResponse": authn})
    assert r.status_code == 400 and error_code(r) == "slo_invalid"
    assert (await s.h.client.put("/saml/slo")).status_code == 405


async def test_idp_initiated_logout_reads_the_subject_verbatim(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    s = await slo()
    alice = await s.login("okta-1")
    for name_id in ("alice@example.com ", " alice@example.com"):
        url = s.idp.redirect(s.idp.logout_request(name_id=name_id), SLO_URL, response=False)
        assert (await s.h.client.get(local(url))).status_code == 303
    assert await s.status(alice) == 200  # another subject: alice's session stays
    padded = s.idp.redirect(s.idp.logout_request([" okta-1"]), SLO_URL, response=False)
    assert (await s.h.client.get(local(padded))).status_code == 303
    assert await s.status(alice) == 200  # another SessionIndex


async def test_idp_initiated_logout_in_a_redis_outage_still_ends_this_browsers_session(
    slo: Callable[..., Awaitable[Slo]], make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """Redis unreachable: the sessions of the subject cannot be looked up, so the IdP is told
    the logout failed, but the session of the browser that carried the request ends here at
    once, and everywhere once Redis is back."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        options = {"store": server.url, "store_timeout": 0.2, "store_outage": "serve"}
        s = await slo(**options)
        mine = await s.login("okta-1")
        server.stop()
        request = s.idp.logout_request(["okta-1"])
        url = s.idp.redirect(request, SLO_URL, response=False)
        s.h.client.cookies.clear()
        s.h.client.cookies.set("saml_gate_session", mine)
        r = await s.h.client.get(local(url), headers=HTML)
        assert r.status_code == 303 and "saml_gate_session=;" in r.headers["set-cookie"]
        with pytest.raises(StatusResponder, match="could not be ended"):  # told it failed
            s.idp.server.parse_logout_request_response(
                query_of(r.headers["location"])["SAMLResponse"], BINDING_HTTP_REDIRECT
            )
        assert await s.status(mine) == 401  # a copy of the cookie, on this gate

        server.start()  # empty: the revocation is only in this gate's memory
        fresh = make_harness(idp_metadata=s.idp.metadata, **options)
        fresh.client.cookies.set("saml_gate_session", mine)
        with anyio.fail_after(30):  # a hang guard: until this gate has written it to Redis
            while (await fresh.client.get("/private/p", headers=JSON)).status_code != 401:
                await anyio.sleep(0.05)
    finally:
        server.stop()
