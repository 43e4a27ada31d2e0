"""The test IdP: its keys and metadata, the gate options that trust it, and its sign-in flows.

Every flow goes through the gate's own endpoints (``/saml/login``, ``/saml/acs``,
``/saml/slo``) with a client that keeps cookies, as a browser between the app and the IdP
would: the gate checks each Response exactly as in production.
"""

from __future__ import annotations

import functools
import html
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Unpack, cast
from urllib.parse import urlencode, urlsplit

from saml_gate.config.options import GateOptions
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair, generate_keypair
from saml_gate.testing.access_tokens import AUDIENCE, ISSUER, AccessTokenIssuer
from saml_gate.testing.answers import AuthnRequestSeen, SignInFailed, redirected_message
from saml_gate.testing.clients import AsyncClient, Flow, HttpStep, R, SyncClient, drive, drive_async
from saml_gate.testing.messages import (
    DEFAULT_EMAIL,
    AttributeNames,
    Mistakes,
    PersonFields,
    Recipient,
    ResponseFields,
    ResponseSigner,
    Signing,
)
from saml_gate.testing.proxy import ProxyUnderTest
from saml_gate.testing.universal_logout import ORG_URL, LogoutTokens, request_body

IDP_ENTITY_ID: Final = "https://idp.test/saml"
IDP_SSO_URL: Final = "https://idp.test/saml/sso"
IDP_SLO_URL: Final = "https://idp.test/saml/slo"
_SECRET_KEY: Final = secrets.token_urlsafe(32)
"""The session cookies' key: a new one in each test process."""
_SIGN_OUT_TOKEN: Final = re.compile(r"name=token value='([^']*)'")


@functools.cache
def shared_keys(role: str) -> KeyPair:
    """One RSA key pair per role and process: a new 2048-bit key costs ~50 ms, and equal
    keys let the gate's verification workers reuse the configuration they built."""
    return generate_keypair(f"saml-gate test {role}")


@functools.cache
def _shared_state_dir() -> tempfile.TemporaryDirectory[str]:
    """A ``state_dir`` outside the working directory, removed when the process exits."""
    return tempfile.TemporaryDirectory(prefix="saml-gate-test-")


class IdpClock:
    """The time the test IdP and the gate share: the real time plus what ``advance`` added."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move both the gate's and the IdP's time forward (sessions expire, sign-ins age)."""
        self.offset += seconds


class SamlTestIdp:
    """A signing test IdP with its own keys, for testing an app behind the gate.

    ``gate_options()`` configures a gate to trust it; ``sign_in(client, ...)`` signs a person
    in through that gate. ``keys`` default to a key pair shared in this process.
    """

    def __init__(self, *, keys: KeyPair | None = None, state_dir: str | None = None) -> None:
        self.keys = keys or shared_keys("IdP")
        self.entity_id = IDP_ENTITY_ID
        self.sso_url = IDP_SSO_URL
        self.slo_url = IDP_SLO_URL
        self.clock = IdpClock()
        self._state_dir = state_dir
        self._signer = ResponseSigner(self.entity_id, self.keys)
        self._gate: Mapping[str, Any] = {}
        self._now: Callable[[], float] = self.clock
        self.sessions: dict[str, list[str]] = {}
        """SessionIndexes issued, by NameID: what ``logout`` ends."""
        self.logout_tokens = LogoutTokens(self.keys)
        """Signs its Universal Logout requests (the gate trusts its key set)."""
        self.access_tokens = AccessTokenIssuer(self.keys)
        """Its authorization server: OAuth access tokens for machine access."""

    @functools.cached_property
    def metadata_xml(self) -> str:
        """This IdP's metadata (signing certificate, SSO and SLO endpoints)."""
        xml = idp_metadata_xml(
            entity_id=self.entity_id, sso_url=self.sso_url, slo_url=self.slo_url, keypair=self.keys
        )
        return xml.decode()

    # ------------------------------------------------------------------ configuration
    def gate_options(self, base_url: str = "http://testserver", **overrides: Any) -> GateOptions:
        """Every option a ``SamlGate`` (or ``add_middleware(SamlGate, ...)``) needs to trust this
        IdP in tests: its metadata, ``base_url`` (Starlette's ``TestClient`` uses
        ``http://testserver``), SP keys, a secret, a temporary ``state_dir``, the shared
        ``clock``, and ``verify_isolation="thread"`` (tests start fast: no verification
        processes to start). ``overrides`` replace or add options; the flows follow the
        ``base_url``, ``prefix``, ``entity_id``, ``email_attribute``, ``groups_attribute``,
        ``want_response_signed`` and ``clock`` of the latest call.
        """
        sp_keys = shared_keys("SP")
        options: dict[str, Any] = {
            "idp_metadata": self.metadata_xml,
            "base_url": base_url,
            "secret_key": _SECRET_KEY,
            "sp_key": sp_keys.key_pem.decode(),
            "sp_cert": sp_keys.cert_pem.decode(),
            "state_dir": self._state_dir or _shared_state_dir().name,
            "clock": self.clock,
            # Responses verified in a thread of the test process: the first sign-in costs no
            # child-process start (seconds), and the gate checks every Response the same way.
            "verify_isolation": "thread",
            # its Universal Logout requests (``universal_logout``), signed as an Okta org would
            "universal_logout_issuer": ORG_URL,
            "universal_logout_keys": self.logout_tokens.jwks,
            # its authorization server's access tokens (``access_token``), for machine access
            "access_token_issuer": ISSUER,
            "access_token_audiences": (AUDIENCE,),
            "access_token_keys": self.access_tokens.jwks,
        }
        options.update(overrides)
        self._gate = options
        self._signer.names = AttributeNames(
            email=options.get("email_attribute") or "email",
            groups=options.get("groups_attribute") or "groups",
        )
        self._signer.signing = Signing(response=bool(options.get("want_response_signed")))
        self._now = options["clock"] or self.clock
        return cast(GateOptions, options)

    @property
    def _public_base(self) -> str:
        """The gate's ``base_url`` and ``prefix`` as given to ``gate_options`` (or defaults)."""
        base = str(self._gate.get("base_url") or "http://testserver").rstrip("/")
        return base + str(self._gate.get("prefix") or "/saml")

    def _recipient(self) -> Recipient:
        """Where an unsolicited Response goes: the gate's ACS URL and entity ID."""
        entity_id = self._gate.get("entity_id") or self._public_base + "/metadata"
        return Recipient(acs_url=self._public_base + "/acs", audience=str(entity_id))

    # ------------------------------------------------------------------ SP-initiated sign-in
    def sign_in(
        self, client: SyncClient[R], *, path: str = "/", **person: Unpack[PersonFields]
    ) -> R:
        """Sign a person in through the gate's login and ACS with Starlette's ``TestClient``
        (or any ``httpx.Client`` on the app), leaving the session cookie in ``client``.

        Returns the ACS answer (303 to ``path``); raises :class:`SignInFailed` with the gate's
        error code if it refuses.
        """
        return drive(client, self._sign_in(path, person))

    async def sign_in_async(
        self, client: AsyncClient[R], *, path: str = "/", **person: Unpack[PersonFields]
    ) -> R:
        """``sign_in`` for an ``httpx.AsyncClient`` over ``httpx.ASGITransport(app=...)``."""
        return await drive_async(client, self._sign_in(path, person))

    def post_response(
        self, client: SyncClient[R], *, path: str = "/", **fields: Unpack[ResponseFields]
    ) -> R:
        """Start a sign-in and post a Response that is wrong on purpose (``expired``,
        ``audience``, ``tampered``, ``unsigned``, ``issuer``): the gate's answer, not raised."""
        return drive(client, self._sign_in(path, fields, Mistakes.asked_by(fields)))

    async def post_response_async(
        self, client: AsyncClient[R], *, path: str = "/", **fields: Unpack[ResponseFields]
    ) -> R:
        """``post_response`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._sign_in(path, fields, Mistakes.asked_by(fields)))

    def _sign_in(self, path: str, person: PersonFields, wrong: Mistakes | None = None) -> Flow:
        """Login, then the Response: the ACS answer, SignInFailed on a refusal unless the
        Response is ``wrong`` on purpose."""
        query = urlencode({"return_to": path})
        started = yield HttpStep("GET", f"{self._public_base}/login?{query}")
        request = AuthnRequestSeen.from_redirect(started)
        to = Recipient(request.acs_url, request.sp_entity_id, in_response_to=request.id)
        form = {"SAMLResponse": self._response(to, person, wrong)}
        if request.relay_state is not None:
            form["RelayState"] = request.relay_state
        answer = yield HttpStep("POST", request.acs_url, form)
        if wrong is None and answer.status_code != 303:
            raise SignInFailed("posting the Response", answer)

    def _response(self, to: Recipient, person: PersonFields, wrong: Mistakes | None = None) -> str:
        signed = self._signer.response(to, person, self._now(), wrong)
        self.sessions.setdefault(signed.name_id, []).append(signed.session_index)
        return signed.saml_response

    # ------------------------------------------------------------------ re-assertion
    def reassert(
        self,
        client: SyncClient[R],
        *,
        path: str = "/",
        no_passive: bool = False,
        **person: Unpack[PersonFields],
    ) -> R:
        """Load ``path`` with a session due for re-assertion (``reassert_interval``; advance
        ``clock`` past it): the gate sends the browser here with a passive AuthnRequest, and
        the test IdP answers for ``person`` (new groups, say), or with ``NoPassive`` (it has no
        session for them any more). Returns the ACS answer: 303 back to ``path``, or after
        ``NoPassive`` a 303 to the gate's login (every session of the person has ended).
        Raises :class:`SignInFailed` when the gate does not ask passively."""
        return drive(client, self._reassert(path, no_passive, person))

    async def reassert_async(
        self,
        client: AsyncClient[R],
        *,
        path: str = "/",
        no_passive: bool = False,
        **person: Unpack[PersonFields],
    ) -> R:
        """``reassert`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._reassert(path, no_passive, person))

    def _reassert(self, path: str, no_passive: bool, person: PersonFields) -> Flow:
        base = urlsplit(self._public_base)
        page = yield HttpStep("GET", f"{base.scheme}://{base.netloc}{path}")
        request = AuthnRequestSeen.from_redirect(page)
        if not request.is_passive:
            raise SignInFailed("re-asserting (the gate did not ask passively)", page)
        to = Recipient(request.acs_url, request.sp_entity_id, in_response_to=request.id)
        if no_passive:
            form = {"SAMLResponse": self._signer.no_passive(to, self._now())}
        else:
            form = {"SAMLResponse": self._response(to, person)}
        if request.relay_state is not None:
            form["RelayState"] = request.relay_state
        yield HttpStep("POST", request.acs_url, form)

    # ------------------------------------------------------------------ Universal Logout
    def universal_logout(
        self,
        client: SyncClient[R],
        *,
        email: str | None = None,
        name_id: str | None = None,
        token: str | None = None,
    ) -> R:
        """Okta Universal Logout: a signed Global Token Revocation request to the gate naming
        the person by ``email`` or by NameID (``iss_sub``: this IdP's entity ID and
        ``name_id``). Every session of theirs ends on every gate sharing the store; the
        gate answers 204. ``token``: send this JWT instead (:attr:`logout_tokens` makes
        them)."""
        return drive(client, self._universal_logout(email, name_id, token))

    async def universal_logout_async(
        self,
        client: AsyncClient[R],
        *,
        email: str | None = None,
        name_id: str | None = None,
        token: str | None = None,
    ) -> R:
        """``universal_logout`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._universal_logout(email, name_id, token))

    @property
    def universal_logout_url(self) -> str:
        """The gate's Global Token Revocation endpoint (also the tokens' audience)."""
        return self._public_base + "/global-token-revocation"

    def _universal_logout(self, email: str | None, name_id: str | None, token: str | None) -> Flow:
        body = request_body(email, name_id, self.entity_id)
        url = self.universal_logout_url
        bearer = token or self.logout_tokens.token(url, self._now())
        headers = {"content-type": "application/json", "authorization": f"Bearer {bearer}"}
        yield HttpStep("POST", url, content=body, headers=headers)

    # ------------------------------------------------------------------ IdP-initiated
    def access_token(
        self, *, groups: Sequence[str] = (), scopes: Sequence[str] = (), **wrong: Any
    ) -> str:
        """An OAuth access token of its authorization server, as a CI job or a service gets
        one (client credentials), valid now by the gate's clock; ``wrong`` passes
        ``subject``, ``claims``, ``header`` or ``signing_key`` on to spoil it on purpose
        (:meth:`AccessTokenIssuer.token`)."""
        return self.access_tokens.token(self._now(), groups=groups, scopes=scopes, **wrong)

    def sign_in_idp_initiated(
        self, client: SyncClient[R], *, path: str = "/", **person: Unpack[PersonFields]
    ) -> R:
        """An unsolicited Response (an Okta dashboard tile) with ``path`` as RelayState; the
        gate accepts it only with ``allow_idp_initiated=True``. Raises SignInFailed if not."""
        return drive(client, self._unsolicited(path, person))

    async def sign_in_idp_initiated_async(
        self, client: AsyncClient[R], *, path: str = "/", **person: Unpack[PersonFields]
    ) -> R:
        """``sign_in_idp_initiated`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._unsolicited(path, person))

    def _unsolicited(self, path: str, person: PersonFields) -> Flow:
        to = self._recipient()
        form = {"SAMLResponse": self._response(to, person), "RelayState": path}
        answer = yield HttpStep("POST", to.acs_url, form)
        if answer.status_code != 303:
            raise SignInFailed("posting an IdP-initiated Response", answer)

    # ------------------------------------------------------------------ proxy mode
    def proxy(self, *, base_url: str = "http://testserver", **options: Any) -> ProxyUnderTest:
        """``build_proxy_app`` trusting this IdP in front of a recording upstream, to use in a
        ``with`` block: ``proxy.sign_in(...)`` returns what the upstream received."""
        return ProxyUnderTest(self, base_url=base_url, **options)

    # ------------------------------------------------------------------ Single Logout
    def logout(
        self, client: SyncClient[R], *, email: str = DEFAULT_EMAIL, name_id: str | None = None
    ) -> R:
        """IdP-initiated Single Logout: the test IdP posts a signed LogoutRequest to the gate's
        ``/slo`` ending every session it signed in for this person. Returns the gate's answer
        (303 to the IdP with the LogoutResponse)."""
        return drive(client, self._logout(name_id or email))

    async def logout_async(
        self, client: AsyncClient[R], *, email: str = DEFAULT_EMAIL, name_id: str | None = None
    ) -> R:
        """``logout`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._logout(name_id or email))

    def sign_out(self, client: SyncClient[R]) -> R:
        """Press the app's "Sign out": the gate's ``/logout`` form, then the Single Logout
        round trip through the test IdP when the gate sends the browser there. Returns the
        gate's last answer (its signed-out page)."""
        return drive(client, self._sign_out())

    async def sign_out_async(self, client: AsyncClient[R]) -> R:
        """``sign_out`` for an ``httpx.AsyncClient``."""
        return await drive_async(client, self._sign_out())

    def _sign_out(self) -> Flow:
        logout_url = self._public_base + "/logout"
        form = yield HttpStep("GET", logout_url)
        token = _SIGN_OUT_TOKEN.search(form.text)
        if token is None:
            return  # nobody signed in: the signed-out page
        answer = yield HttpStep("POST", logout_url, {"token": html.unescape(token.group(1))})
        if not answer.headers.get("location", "").startswith(self.slo_url):
            return  # signed out here; the gate does not continue to the IdP
        request, relay_state = redirected_message(answer, "signing out at the IdP")
        subject = request.findtext(f"{{{X.NS_SAML}}}NameID") or ""
        self.sessions.pop(subject.strip(), None)  # the IdP ends the person's sessions
        slo_url = self._public_base + "/slo"
        reply = {
            "SAMLResponse": self._signer.logout_response(
                slo_url, request.get("ID") or "", self._now()
            )
        }
        if relay_state is not None:
            reply["RelayState"] = relay_state
        yield HttpStep("POST", slo_url, reply)

    def _logout(self, name_id: str) -> Flow:
        slo_url = self._public_base + "/slo"
        indexes = self.sessions.pop(name_id, [])
        request = self._signer.logout_request(slo_url, name_id, indexes, self._now())
        yield HttpStep("POST", slo_url, {"SAMLRequest": request})
