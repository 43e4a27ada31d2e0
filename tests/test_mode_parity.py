"""One request decision, three modes: the same scenarios through the middleware, the reverse
proxy and forward-auth give the same verdict, the same auth events, the same metrics and the
same session cookie handling.

Each scenario is one row of :data:`SCENARIOS`; each mode only carries the verdict out in its own
way, which :data:`STATUS` states (a sign-in for a page load is a 303 to the IdP from the
middleware and the proxy, a 302 to the login URL from forward-auth described Traefik-style).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import jwt
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from saml_gate import AuthEvent, MemoryStore, SamlGate, SamlUser
from saml_gate.proxy import build_proxy_app
from saml_gate.session.gate_tokens import GateTokens, new_token
from saml_gate.session.sessions import SessionCodec
from saml_gate.store.base import Feed, Write
from saml_gate.testing.access_tokens import AUDIENCE, CLIENT_ID, ISSUER, AccessTokenIssuer
from tests.support import ACS_URL, BASE_URL, IDP_ENTITY_ID, Harness, gate_options

pytestmark = pytest.mark.anyio

Mode = Literal["middleware", "proxy", "forward-auth"]
Verdict = Literal["public", "admit", "sign-in", "refuse"]
MODES: tuple[Mode, ...] = ("middleware", "proxy", "forward-auth")
PAGE = {"accept": "text/html,application/xhtml+xml"}
API = {"accept": "application/json"}
HOST = BASE_URL.removeprefix("http://")


# ---------------------------------------------------------------- what the app or upstream sees
async def who(request: Request) -> Response:
    """The middleware's app: who the gate says signed in, and the identity JWT it got."""
    user = request.scope.get("user")
    return JSONResponse(
        {
            "user": user.name_id if isinstance(user, SamlUser) else None,
            "jwt": request.headers.get("x-saml-gate-jwt"),
        }
    )


async def upstream_who(request: Request) -> Response:
    """The proxy's upstream: who the identity header says signed in, and the JWT."""
    return JSONResponse(
        {
            "user": request.headers.get("x-forwarded-user"),
            "jwt": request.headers.get("x-saml-gate-jwt"),
        }
    )


def app_of(endpoint: Callable[[Request], Awaitable[Response]]) -> Starlette:
    return Starlette(routes=[Route("/{rest:path}", endpoint, methods=["GET", "HEAD", "POST"])])


class FlakyStore:
    """A memory store that goes down on demand (a Store object: the gate guards it)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.inner = MemoryStore(clock=clock)
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name in ("feed", "close"):
            return attribute

        async def call(*args: Any) -> Any:
            if self.down:
                raise ConnectionRefusedError("the test took the store down")
            return await attribute(*args)

        return call

    def feed(self) -> Feed | None:
        return None

    async def write(self, writes: Sequence[Write]) -> None:
        if self.down:
            raise ConnectionRefusedError("the test took the store down")
        await self.inner.write(writes)


# ---------------------------------------------------------------- the scenarios
@dataclass(frozen=True)
class Scenario:
    name: str
    verdict: Verdict
    path: str = "/private/page"
    page_load: bool = False
    sign_in: bool = True
    """Sign in before the request (the browser then holds a session cookie)."""
    cookie: Literal["session", "foreign", "garbage", "two", "none"] = "session"
    advance: float = 0.0
    """Seconds the clock moves on after signing in."""
    revoke: bool = False
    store_down: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    """The status of a refusal (the same in every mode)."""
    events: tuple[tuple[str, str, str | None], ...] = ()
    """(event, outcome, error_code) the request logs, the same in every mode."""
    metrics: dict[str, float] = field(default_factory=dict)
    session_cookie: Literal["kept", "cleared", "refreshed"] = "kept"
    error: str | None = None
    """The error code of a 401 or a refusal."""
    bearer: Literal["none", "gate", "idp", "forged"] = "none"
    """An ``Authorization: Bearer`` token sent: a gate service token, an IdP access token, or
    a gate token that does not exist."""
    query: str = ""
    host: str = HOST
    """The host the request is for (Host; forward-auth: the original URL's)."""
    identified: bool = False
    """A public path told who is signed in."""
    audience: str | None = None
    """The identity JWT's ``aud`` (default: base_url) when one is sent."""


#: A token route for deployers (sessions and tokens), the rest browser-only (the default).
TOKEN_RULES = {"access_rules": ["/api/ accept=session,token groups=deployers"]}
SERVICE = {"gate": "ci-deploy", "idp": CLIENT_ID}


RULES = {"access_rules": ["/ops/ groups=ops", "/step/ max_authn_age=600"]}
HOSTS = {
    "allowed_hosts": ["grafana.acme.example", "*.wiki.acme.example"],
    "access_rules": ["grafana.acme.example/ groups=ops", "*.wiki.acme.example/pub/ public"],
}
SCENARIOS = [
    Scenario("anonymous page load", "sign-in", page_load=True, sign_in=False, cookie="none"),
    Scenario(
        "anonymous API call", "sign-in", sign_in=False, cookie="none", error="not_authenticated"
    ),
    Scenario("valid session", "admit"),
    Scenario(
        "session refresh due", "admit", advance=61, session_cookie="refreshed"
    ),  # refresh_after: one tenth of the idle timeout, at most 60 s
    Scenario(
        "expired session",
        "sign-in",
        advance=3601,
        options={"maximum_duration": 3600, "inactivity_timeout": 3600},
        events=(("session_expired", "success", None),),
        metrics={"saml_gate_session_expiries_total": 1},
        session_cookie="cleared",
        error="not_authenticated",
    ),
    Scenario(
        "idle session",
        "sign-in",
        advance=601,
        options={"inactivity_timeout": 600},
        events=(("session_expired", "success", None),),
        metrics={"saml_gate_session_expiries_total": 1},
        session_cookie="cleared",
        error="not_authenticated",
    ),
    Scenario(
        "revoked session",
        "sign-in",
        revoke=True,
        session_cookie="cleared",
        error="not_authenticated",
    ),
    Scenario(
        "foreign cookie",
        "sign-in",
        cookie="foreign",
        session_cookie="cleared",
        error="not_authenticated",
    ),
    Scenario(
        "garbage cookie",
        "sign-in",
        cookie="garbage",
        session_cookie="cleared",
        error="not_authenticated",
    ),
    Scenario(
        "two session cookies",
        "refuse",
        cookie="two",
        status=401,
        events=(("request_refused", "failure", "duplicate_session"),),
        session_cookie="cleared",
        error="duplicate_session",
    ),
    Scenario(
        "policy denial",
        "refuse",
        path="/ops/x",
        options=RULES,
        status=403,
        events=(("policy_denied", "failure", "forbidden"),),
        metrics={"saml_gate_policy_denials_total": 1},
        error="forbidden",
    ),
    Scenario(
        "step-up, page load", "sign-in", path="/step/x", page_load=True, advance=700, options=RULES
    ),
    Scenario(
        "step-up, API call",
        "sign-in",
        path="/step/x",
        advance=700,
        options=RULES,
        error="step_up_required",
    ),
    Scenario(
        "re-assertion due, page load",
        "sign-in",
        page_load=True,
        advance=901,
        options={"reassert_interval": 900},
    ),
    Scenario(
        "re-assertion due, API call",
        "sign-in",
        advance=901,
        options={"reassert_interval": 900},
        error="reassertion_required",
    ),
    Scenario(
        "public path",
        "public",
        path="/public/a",
        sign_in=False,
        cookie="none",
        options={"public_paths": ["/public/"]},
    ),
    Scenario(
        "store down",
        "refuse",
        store_down=True,
        options={"store_outage": "refuse"},
        status=503,
        events=(("request_refused", "failure", "store_unavailable"),),
        metrics={"saml_gate_store_errors_total": 1},
        error="store_unavailable",
    ),
    Scenario(
        "public path, signed in",
        "public",
        path="/public/a",
        options={"public_paths": ["/public/"]},
        identified=True,
    ),
    Scenario(
        "public path, garbage cookie",
        "public",
        path="/public/a",
        cookie="garbage",
        options={"public_paths": ["/public/"]},
    ),
    Scenario(
        "public path, two session cookies",
        "public",
        path="/public/a",
        cookie="two",
        options={"public_paths": ["/public/"]},
    ),
    Scenario(
        "public path, expired session",
        "public",
        path="/public/a",
        advance=3601,
        options={"public_paths": ["/public/"], "maximum_duration": 3600},
    ),
    Scenario(
        "unknown host",
        "refuse",
        host="evil.example",
        options=HOSTS,
        status=421,
        events=(("request_refused", "failure", "unknown_host"),),
        error="unknown_host",
    ),
    Scenario(
        "apex of an allowed wildcard",
        "refuse",
        host="wiki.acme.example",
        options=HOSTS,
        status=421,
        events=(("request_refused", "failure", "unknown_host"),),
        error="unknown_host",
    ),
    Scenario(
        "per-host rule denial",
        "refuse",
        host="grafana.acme.example",
        options=HOSTS,
        status=403,
        events=(("policy_denied", "failure", "forbidden"),),
        metrics={"saml_gate_policy_denials_total": 1},
        error="forbidden",
    ),
    Scenario(
        "per-host rule denial, upper-case host with a port",
        "refuse",
        host="GRAFANA.ACME.EXAMPLE:8443",
        options=HOSTS,
        status=403,
        events=(("policy_denied", "failure", "forbidden"),),
        metrics={"saml_gate_policy_denials_total": 1},
        error="forbidden",
    ),
    Scenario(
        "another host, its own audience",
        "admit",
        host="team.wiki.acme.example",
        options=HOSTS,
        audience="http://team.wiki.acme.example",
    ),
    Scenario(
        "wildcard host's public path, signed in",
        "public",
        host="a.b.wiki.acme.example",
        path="/pub/x",
        options=HOSTS,
        identified=True,
        audience="http://a.b.wiki.acme.example",
    ),
    Scenario(
        "a host's public path is not another's",
        "refuse",
        host="grafana.acme.example",
        path="/pub/x",
        options=HOSTS,
        status=403,
        events=(("policy_denied", "failure", "forbidden"),),
        metrics={"saml_gate_policy_denials_total": 1},
        error="forbidden",
    ),
    Scenario(
        "refused path",
        "refuse",
        path="/public;x/page",
        status=400,
        events=(("request_refused", "failure", "bad_path"),),
        error="bad_path",
    ),
    Scenario(
        "gate token, token route",
        "admit",
        path="/api/x",
        sign_in=False,
        cookie="none",
        bearer="gate",
        options=TOKEN_RULES,
        events=(("token_auth", "success", None),),
    ),
    Scenario(
        "IdP access token, token route",
        "admit",
        path="/api/x",
        sign_in=False,
        cookie="none",
        bearer="idp",
        options=TOKEN_RULES,
        events=(("token_auth", "success", None),),
    ),
    Scenario(
        "token on a browser-only route",
        "refuse",
        sign_in=False,
        cookie="none",
        bearer="gate",
        options=TOKEN_RULES,
        status=403,
        events=(("token_auth", "failure", "token_not_accepted"),),
        error="token_not_accepted",
    ),
    Scenario(
        "unknown token beside a session",
        "refuse",
        path="/api/x",
        bearer="forged",
        options=TOKEN_RULES,
        status=401,
        events=(("token_auth", "failure", "token_invalid"),),
        error="token_invalid",
    ),
    Scenario(
        "token in the query string",
        "refuse",
        path="/api/x",
        query="access_token=sgt_x",
        options=TOKEN_RULES,
        status=400,
        events=(("token_auth", "failure", "token_in_query"),),
        error="token_in_query",
    ),
    Scenario(
        "gate token at another host, its own audience",
        "admit",
        path="/api/x",
        host="team.wiki.acme.example",
        sign_in=False,
        cookie="none",
        bearer="gate",
        options={"allowed_hosts": HOSTS["allowed_hosts"], **TOKEN_RULES},
        events=(("token_auth", "success", None),),
        audience="http://team.wiki.acme.example",
    ),
    Scenario(
        "token at an unknown host",
        "refuse",
        path="/api/x",
        host="evil.example",
        sign_in=False,
        cookie="none",
        bearer="gate",
        options={"allowed_hosts": HOSTS["allowed_hosts"], **TOKEN_RULES},
        status=421,
        events=(("request_refused", "failure", "unknown_host"),),
        error="unknown_host",
    ),
    Scenario(
        "token on a public path beside a session",
        "public",
        path="/public/a",
        bearer="forged",
        options={"public_paths": ["/public/"]},
    ),
]

#: How each mode answers a verdict that is not a refusal (page load, API call).
STATUS: dict[Mode, dict[tuple[Verdict, bool], int]] = {
    "middleware": {("public", False): 200, ("admit", False): 200, ("admit", True): 200,
                   ("sign-in", True): 303, ("sign-in", False): 401},
    "proxy": {("public", False): 200, ("admit", False): 200, ("admit", True): 200,
              ("sign-in", True): 303, ("sign-in", False): 401},
    "forward-auth": {("public", False): 200, ("admit", False): 200, ("admit", True): 200,
                     ("sign-in", True): 302, ("sign-in", False): 401},
}  # fmt: skip
METRICS = (
    "saml_gate_session_expiries_total",
    "saml_gate_policy_denials_total",
    "saml_gate_store_errors_total",
)


@dataclass
class Outcome:
    """What one mode did with one scenario's request, as the comparison sees it."""

    status: int
    who: str | None
    events: list[tuple[str, str, str | None, str | None, str | None, str | None]]
    metrics: dict[str, float]
    session_cookie: str
    error: str | None
    force_authn: bool | None
    is_passive: bool | None = None
    audience: str | None = None


def build(mode: Mode, options: dict[str, Any]) -> SamlGate:
    if mode == "middleware":
        return SamlGate(app_of(who), **options)
    if mode == "proxy":
        gate = build_proxy_app("http://upstream.test", **options)
        # the upstream in this process (the proxy's own tests use real sockets)
        gate.app._http._transport = httpx.ASGITransport(app=app_of(upstream_who))  # type: ignore[attr-defined]
        return gate
    return SamlGate(app_of(who), forward_auth=True, **options)


def session_cookie_effect(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("saml_gate_session="):
            return "cleared" if "Max-Age=0" in header else "refreshed"
    return "kept"


def metric_values(registry: CollectorRegistry) -> dict[str, float]:
    values: dict[str, float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name in METRICS:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


async def run(
    mode: Mode, scenario: Scenario, make: Callable[..., dict[str, Any]], harness_of: Any
) -> Outcome:
    events: list[AuthEvent] = []
    registry = CollectorRegistry()
    options = make(on_event=[events.append], metrics_registry=registry, **scenario.options)
    store = FlakyStore(options["clock"])
    issuer = AccessTokenIssuer(harness_of.idp_keys)
    access = {
        "access_token_issuer": ISSUER,
        "access_token_audiences": [AUDIENCE],
        "access_token_keys": issuer.jwks,
    }
    gate = build(mode, {**options, **access, "store": store})
    h: Harness = harness_of(gate)
    if scenario.sign_in:
        assert (await h.login()).status_code == 303
    value = h.client.cookies.get("saml_gate_session")
    if scenario.cookie == "foreign":  # the same session, signed with another gate's secret
        session = gate.core.sessions.decode(str(value))
        assert session is not None
        settings = dataclasses.replace(gate.settings, secret_key=("another gate's secret " * 2,))
        codec = SessionCodec(settings, gate.core.store, issuer=lambda: IDP_ENTITY_ID)
        h.client.cookies.clear()
        h.client.cookies.set("saml_gate_session", codec.encode(session))
    elif scenario.cookie == "garbage":
        h.client.cookies.clear()
        h.client.cookies.set("saml_gate_session", "garbage")
    extra: dict[str, str] = {}
    if scenario.cookie == "two":  # a sibling subdomain's planted session beside the person's
        h.client.cookies.clear()
        extra["cookie"] = f"saml_gate_session=planted; saml_gate_session={value}"
    if scenario.revoke:
        session = gate.core.sessions.decode(str(value))
        assert session is not None
        await gate.core.revocations.revoke(session.user, h.clock())
    bearer = None
    if scenario.bearer == "gate":
        await gate.core.start()
        core = gate.core
        tokens = GateTokens(core.store, core.revocations, h.clock, 90.0)
        bearer = await tokens.create("ci-deploy", ["deployers"], 86400)
    elif scenario.bearer == "idp":
        bearer = issuer.token(h.clock(), groups=["deployers"])
    elif scenario.bearer == "forged":
        bearer = new_token()
    if bearer is not None:
        extra["authorization"] = f"Bearer {bearer}"
    h.clock.advance(scenario.advance)
    store.down = scenario.store_down
    await gate.core.events.drain()
    events.clear()
    before = metric_values(registry)

    headers = dict(PAGE if scenario.page_load else API) | extra
    target = scenario.path + (f"?{scenario.query}" if scenario.query else "")
    if mode == "forward-auth":
        headers |= {
            "x-forwarded-method": "GET",
            "x-forwarded-proto": "http",
            "x-forwarded-host": scenario.host,
            "x-forwarded-uri": target,
        }
        r = await h.client.get("/saml/auth", headers=headers)
        seen, token = r.headers.get("x-forwarded-user"), r.headers.get("x-saml-gate-jwt")
    else:
        r = await h.client.get(target, headers=headers | {"host": scenario.host})
        body = r.json() if r.status_code == 200 else {}
        seen, token = body.get("user"), body.get("jwt")
    audience = jwt.decode(token, options={"verify_signature": False})["aud"] if token else None
    await gate.core.events.drain()
    after = metric_values(registry)
    location = r.headers.get("location", "")
    force, passive = await _asks_idp(h, location) if r.status_code in (302, 303) else (None, None)
    body_error = None
    if r.headers.get("content-type", "").startswith("application/json") and r.status_code >= 400:
        body_error = r.json().get("error")
    await h.client.aclose()
    await gate.stop()
    return Outcome(
        status=r.status_code,
        who=seen,
        events=[(e.event, e.outcome, e.error_code, e.name_id, e.method, e.path) for e in events],
        metrics={k: after.get(k, 0.0) - before.get(k, 0.0) for k in METRICS},
        session_cookie=session_cookie_effect(r),
        error=body_error,
        force_authn=force,
        is_passive=passive,
        audience=audience,
    )


async def _asks_idp(h: Harness, location: str) -> tuple[bool, bool]:
    """Whether a sign-in redirect asks the IdP for ForceAuthn, and for IsPassive (forward-auth's
    goes through the login URL first)."""
    from tests.support import decode_redirect_request

    if location.startswith(BASE_URL + "/saml/login"):
        r = await h.client.get(location.removeprefix(BASE_URL), headers=PAGE)
        location = r.headers["location"]
    request, _ = decode_redirect_request(location)
    return request.get("ForceAuthn") == "true", request.get("IsPassive") == "true"


class HarnessOf:
    """Makes the harness of a gate (the test's IdP keys, for its access tokens too)."""

    def __init__(self, idp_keys: Any, sp_keys: Any, clock: Any) -> None:
        self.idp_keys, self.sp_keys, self.clock = idp_keys, sp_keys, clock

    def __call__(self, gate: SamlGate) -> Harness:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        return Harness(gate, client, self.idp_keys, self.sp_keys, self.clock)


@pytest.fixture
def harness_of(idp_keys: Any, sp_keys: Any, clock: Any) -> HarnessOf:
    return HarnessOf(idp_keys, sp_keys, clock)


@pytest.fixture
def make(idp_keys: Any, sp_keys: Any, clock: Any, tmp_path: Any) -> Callable[..., dict[str, Any]]:
    def options(**extra: Any) -> dict[str, Any]:
        return gate_options(
            idp_keys, sp_keys, clock, str(tmp_path), verify_isolation="thread", **extra
        )

    return options


def expected_events(scenario: Scenario) -> list[tuple[Any, ...]]:
    """The scenario's events with who (when the decision knew) and what was asked."""
    before = ("store_unavailable", "bad_path", "unknown_host", "bad_host")
    known = scenario.cookie == "session" and scenario.error not in before
    # (two session cookies: refused before either is read; a token: the cookie is not read)
    known = known and scenario.bearer == "none" and not scenario.query
    name_id = "alice@example.com" if known else None
    if scenario.verdict == "admit" and scenario.bearer != "none":
        name_id = SERVICE[scenario.bearer]
    return [
        (event, outcome, code, name_id, "GET", scenario.path)
        for event, outcome, code in scenario.events
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_every_mode_decides_alike(
    scenario: Scenario, make: Callable[..., dict[str, Any]], harness_of: Any
) -> None:
    outcomes = {mode: await run(mode, scenario, make, harness_of) for mode in MODES}
    for mode, outcome in outcomes.items():
        where = f"{scenario.name}, {mode}"
        if scenario.verdict == "refuse":
            assert outcome.status == scenario.status, where
        else:
            assert outcome.status == STATUS[mode][scenario.verdict, scenario.page_load], where
        signed_in = scenario.verdict == "admit" or scenario.identified
        person = SERVICE.get(scenario.bearer, "alice@example.com")
        assert outcome.who == (person if signed_in else None), where
        audience = (scenario.audience or BASE_URL) if signed_in else None
        assert outcome.audience == audience, where
        assert outcome.events == expected_events(scenario), where
        assert outcome.metrics == {k: scenario.metrics.get(k, 0.0) for k in METRICS}, where
        assert outcome.session_cookie == scenario.session_cookie, where
        if not scenario.page_load or scenario.verdict == "refuse":
            assert outcome.error == scenario.error, where
        if scenario.verdict == "sign-in" and scenario.page_load:
            assert outcome.force_authn == scenario.name.startswith("step-up"), where
            assert outcome.is_passive == scenario.name.startswith("re-assertion"), where


def test_the_table_covers_what_the_issue_asks(
    scenarios: Iterable[Scenario] = SCENARIOS,
) -> None:
    names = {s.name for s in scenarios}
    assert {
        "anonymous page load",
        "anonymous API call",
        "valid session",
        "expired session",
        "idle session",
        "revoked session",
        "foreign cookie",
        "garbage cookie",
        "policy denial",
        "step-up, page load",
        "public path",
        "store down",
        "gate token, token route",
        "IdP access token, token route",
        "token on a browser-only route",
        "unknown token beside a session",
        "token in the query string",
        "public path, signed in",
        "public path, garbage cookie",
        "unknown host",
        "per-host rule denial",
        "another host, its own audience",
        "gate token at another host, its own audience",
        "token at an unknown host",
        "token on a public path beside a session",
    } <= names


@pytest.mark.parametrize("mode", MODES)
async def test_a_response_posted_to_a_public_path(
    mode: Mode, make: Callable[..., dict[str, Any]], harness_of: Any
) -> None:
    """The same decision (a form POST no live session sent), carried out where the body is
    seen: the middleware and the proxy name the ACS; forward-auth sees no body, so its answer is
    the public path's 200 and the proxy passes the post on to the upstream (the README says so)."""
    gate = build(mode, make(access_rules=["/public/ public"]))
    h: Harness = harness_of(gate)
    form = {"SAMLResponse": h.response_b64(h.spec()), "RelayState": "/"}
    if mode == "forward-auth":
        r = await h.client.get(
            "/saml/auth",
            headers={
                **PAGE,
                "content-type": "application/x-www-form-urlencoded",
                "x-forwarded-method": "POST",
                "x-forwarded-proto": "http",
                "x-forwarded-host": HOST,
                "x-forwarded-uri": "/public/page",
            },
        )
        assert r.status_code == 200 and "x-forwarded-user" not in r.headers
    else:
        r = await h.client.post("/public/page", data=form, headers=PAGE)
        assert r.status_code == 400 and "<code>wrong_acs_url</code>" in r.text
        assert ACS_URL in r.text
        r = await h.client.post("/public/page", data={"a": "b"}, headers=PAGE)
        assert r.status_code == 200 and r.json()["user"] is None  # any other form: the app's
    await h.client.aclose()
    await gate.stop()
