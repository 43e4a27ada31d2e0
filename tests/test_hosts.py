"""Several apps behind one gate: hosts in rules (every form), the host a request is for (read
once, strictly: a host the gate does not serve, or cannot read plainly, is refused before any
rule), email patterns, ``api_paths``, and the identity JWT's audience per app — through the
gate's middleware endpoint and forward-auth (tests/test_mode_parity.py runs the host scenarios
in all three modes; tests/request_side/ and tests/test_forward_auth_proxies.py on the wire).
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from saml_gate.errors import ConfigError
from saml_gate.jwt_verify import IdentityVerifier, InvalidIdentity
from saml_gate.policy import Rule, parse_rules
from saml_gate.policy.hosts import HostPattern
from saml_gate.policy.rules import email_matches
from tests.support import BASE_URL, Harness, decode_redirect_request

pytestmark = pytest.mark.anyio

HOSTS = ["grafana.acme.example", "*.wiki.acme.example", "xn--bcher-kva.acme.example"]
RULES = [
    "grafana.acme.example/admin/ groups=ops",
    "*.wiki.acme.example/ emails=*@example.com",
    "xn--bcher-kva.acme.example/ groups=ops",
]
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}


# ---------------------------------------------------------------------- rules and patterns
def test_a_host_in_every_form_a_rule_takes() -> None:
    keywords = Rule("/admin/", host="grafana.acme.example", groups=["admins"])
    assert Rule.parse("grafana.acme.example/admin/ groups=admins") == keywords
    assert Rule.parse("/admin/ host=grafana.acme.example groups=admins") == keywords
    assert str(keywords) == "grafana.acme.example/admin/"
    pattern = Rule.parse(r"re:/reports/\d+ host=*.acme.example")
    assert pattern.host == HostPattern("acme.example", None, wildcard=True)
    assert str(pattern) == r"re:/reports/\d+ host=*.acme.example"
    (one, two) = parse_rules("app.example:8443/ public; [::1]:9000/x groups=a")
    assert one.host == HostPattern("app.example", 8443, wildcard=False) and one.public
    assert two.host == HostPattern("[::1]", 9000, wildcard=False)
    assert Rule("/").host is None  # no host: every host, as before


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("grafana.acme.example.", "without the trailing dot ('grafana.acme.example')"),
        ("bücher.acme.example", "in ASCII (xn--bcher-kva.acme.example)"),
        ("*.bücher.example", "in ASCII (*.xn--bcher-kva.example)"),
        ("grafana..acme.example", "must be a host such as"),
        ("*.", "must be a host such as"),
        ("a.example:0", "must be a host such as"),
        ("a.example/x", "must be a host such as"),
        ("user@a.example", "must be a host such as"),
    ],
)
def test_hosts_that_are_ambiguous_are_refused_with_the_fix(host: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        Rule("/", host=host)
    assert info.value.setting == "access_rules" and problem in str(info.value)


def test_a_one_label_word_before_the_path_is_not_taken_for_a_host() -> None:
    with pytest.raises(ConfigError, match="must start with '/'"):
        Rule.parse("admin/ groups=ops")
    assert Rule.parse("/ host=localhost").host == HostPattern("localhost", None, wildcard=False)


@pytest.mark.parametrize(
    ("name", "port", "matches"),
    [
        ("a.acme.example", 443, True),
        ("a.b.acme.example", 443, True),  # any depth, as allowed_hosts and cookie_domain
        ("acme.example", 443, False),  # never the apex
        ("xacme.example", 443, False),
        ("a.acme.example.evil", 443, False),
        ("acme.example.a.acme.example", 8443, True),
    ],
)
def test_a_wildcard_matches_subdomains_never_the_apex(name: str, port: int, matches: bool) -> None:
    assert HostPattern.of("*.acme.example").matches(name, port) is matches  # type: ignore[union-attr]


def test_a_port_in_a_pattern_is_that_port_only() -> None:
    pattern = HostPattern.of("app.example:8443")
    assert pattern is not None
    assert pattern.matches("app.example", 8443) and not pattern.matches("app.example", 443)
    assert HostPattern.of("app.example").matches("app.example", 8443)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("email", "patterns", "matches"),
    [
        ("bob@acme.example", ("*@acme.example",), True),
        ("bob@ACME.example", ("*@acme.example",), False),  # verbatim: no case folding
        ("Bob@acme.example", ("bob@acme.example",), False),
        ("a@b@acme.example", ("*@acme.example",), False),
        ("bob@sub.acme.example", ("*@acme.example",), False),
        ("bob@acme.example ", ("*@acme.example",), False),  # no trimming either
        ("@acme.example", ("*@acme.example",), False),
        (None, ("*@acme.example",), False),
        ("bob@partner.example", ("*@acme.example", "bob@partner.example"), True),
    ],
)
def test_email_patterns_read_the_email_verbatim(
    email: str | None, patterns: tuple[str, ...], matches: bool
) -> None:
    assert email_matches(email, patterns) is matches


@pytest.mark.parametrize("pattern", ["acme.example", "a*@acme.example", "*@*.acme.example", "@x"])
def test_bad_email_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match="emails"):
        Rule("/", emails=[pattern])


def test_a_public_rule_sets_no_audience_nor_emails() -> None:
    with pytest.raises(ConfigError, match="public rule"):
        Rule.parse("/ public emails=*@acme.example")
    with pytest.raises(ConfigError, match="public rule"):
        Rule("/", public=True, audience="x")


# ---------------------------------------------------------------------- through the gate
async def signed_in(make_harness: Any, **options: Any) -> Harness:
    h: Harness = make_harness(**{"allowed_hosts": HOSTS, "access_rules": RULES, **options})
    assert (await h.login()).status_code == 303
    return h


async def get(h: Harness, path: str, host: str | bytes, **headers: str) -> httpx.Response:
    return await h.client.get(path, headers=[("host", host), *headers.items()])


async def test_rules_decide_for_their_host_only(make_harness: Any) -> None:
    h = await signed_in(make_harness)  # alice, in admins and users, alice@example.com
    assert (await get(h, "/private/admin/x", "127.0.0.1:8000", **JSON)).status_code == 200
    assert (await get(h, "/admin/x", "grafana.acme.example", **JSON)).status_code == 403
    assert (await get(h, "/private/x", "grafana.acme.example", **JSON)).status_code == 200
    assert (await get(h, "/private/x", "team.wiki.acme.example", **JSON)).status_code == 200
    # the punycode name is the one the rule names; the Unicode one is no host at all
    assert (await get(h, "/private/x", "xn--bcher-kva.acme.example", **JSON)).status_code == 403
    r = await get(h, "/private/x", "bücher.acme.example".encode(), **JSON)
    assert (r.status_code, r.json()["error"]) == (400, "bad_host")


async def test_emails_rule_is_verbatim_through_the_gate(make_harness: Any) -> None:
    h = await signed_in(make_harness)
    assert (await get(h, "/private/x", "w.wiki.acme.example", **JSON)).status_code == 200
    h = await signed_in(make_harness, access_rules=["/ emails=*@EXAMPLE.com"])
    r = await get(h, "/private/x", "127.0.0.1:8000", **JSON)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("evil.example", "unknown_host"),
        ("acme.example", "unknown_host"),  # the apex of *.wiki... and of grafana
        ("wiki.acme.example", "unknown_host"),
        ("grafana.acme.example.", "bad_host"),  # a trailing dot: another vhost to some servers
        ("grafana.acme.example:99999", "bad_host"),
        ("grafana.acme.example:\uff18\uff10", "bad_host"),  # full-width digits
        ("grafana.acme.example@evil.example", "bad_host"),
        ("grafana.acme.example, evil.example", "bad_host"),
        ("", "bad_host"),
    ],
)
async def test_a_host_the_gate_does_not_serve_is_refused_before_any_rule(
    make_harness: Any, host: str, code: str
) -> None:
    h: Harness = make_harness(allowed_hosts=HOSTS, public_paths=["/public/"])
    r = await get(h, "/public/x", host.encode("utf-8"), **JSON)  # public, but not here
    assert r.json()["error"] == code
    assert r.status_code == (421 if code == "unknown_host" else 400)
    if code == "unknown_host":
        assert f"Add {host} to allowed_hosts" in r.json()["hint"]


async def test_two_host_headers_are_refused(make_harness: Any) -> None:
    h: Harness = make_harness(allowed_hosts=HOSTS, public_paths=["/public/"])
    headers = [("host", "grafana.acme.example"), ("host", "127.0.0.1:8000"), *JSON.items()]
    r = await h.client.get("/public/x", headers=headers)
    assert (r.status_code, r.json()["error"]) == (400, "bad_host")


async def test_x_forwarded_host_never_moves_the_decision(make_harness: Any) -> None:
    """Middleware and proxy decide on Host, the host the app serves; X-Forwarded-Host is only
    ever the original URL's in forward-auth, from a trusted proxy."""
    h = await signed_in(make_harness)
    forwarded = {"x-forwarded-host": "127.0.0.1:8000", **JSON}
    assert (await get(h, "/admin/x", "grafana.acme.example", **forwarded)).status_code == 403
    r = await get(h, "/private/x", "evil.example", **forwarded)
    assert r.json()["error"] == "unknown_host"


async def jwt_of(request: Request) -> Response:
    return JSONResponse({"jwt": request.headers.get("x-saml-gate-jwt")})


async def test_the_jwt_names_the_app_and_fails_at_another(make_harness: Any) -> None:
    app = Starlette(routes=[Route("/{rest:path}", jwt_of)])
    rules = [*RULES, "grafana.acme.example/special/ audience=urn:grafana"]
    h = await signed_in(make_harness, app=app, access_rules=rules)
    jwks = (await h.client.get("/saml/jwks.json")).json()

    async def token(host: str, path: str = "/x") -> str:
        r = await get(h, path, host, **JSON)
        assert r.status_code == 200
        return str(r.json()["jwt"])

    def verifier(audience: str) -> IdentityVerifier:
        return IdentityVerifier(jwks, issuer=BASE_URL, audience=audience, leeway=10**9)

    grafana, wiki = await token("grafana.acme.example"), await token("team.wiki.acme.example")
    assert verifier("http://grafana.acme.example").verify(grafana)["sub"] == "alice@example.com"
    assert verifier("http://team.wiki.acme.example").verify(wiki)["sub"] == "alice@example.com"
    for app_audience, other in (
        ("http://team.wiki.acme.example", grafana),
        ("http://grafana.acme.example", wiki),
        (BASE_URL, grafana),
    ):
        with pytest.raises(InvalidIdentity, match="udience"):
            verifier(app_audience).verify(other)
    # base_url's own host keeps jwt_audience (default base_url); another port is another app
    assert (
        jwt.decode(await token("127.0.0.1:8000"), options={"verify_signature": False})["aud"]
        == BASE_URL
    )
    assert (
        jwt.decode(await token("127.0.0.1:9000"), options={"verify_signature": False})["aud"]
        == "http://127.0.0.1:9000"
    )
    # a rule's own audience
    special = await token("grafana.acme.example", "/special/x")
    assert verifier("urn:grafana").verify(special)["sub"] == "alice@example.com"


async def test_api_paths_answer_401_json_to_every_client(make_harness: Any) -> None:
    h: Harness = make_harness(
        api_paths=["/api/", "/graphql"], forward_auth=True, trusted_proxies=["127.0.0.1/32"]
    )
    for path in ("/api/x", "/graphql", "/graphql/"):
        for accept in ({}, {"accept": "*/*"}, HTML):  # curl's default, a browser's
            r = await h.client.get(path, headers=accept)
            assert r.status_code == 401, (path, accept)
            assert r.json()["error"] == "not_authenticated"
            assert r.json()["login_url"].startswith(BASE_URL + "/saml/login?return_to=")
    assert (await h.client.get("/api", headers=HTML)).status_code == 401  # the prefix itself
    assert (await h.client.get("/apis/x", headers=HTML)).status_code == 303  # another path
    traefik = {
        "x-forwarded-method": "GET",
        "x-forwarded-proto": "http",
        "x-forwarded-host": "127.0.0.1:8000",
        **HTML,
    }
    r = await h.client.get("/saml/auth", headers={**traefik, "x-forwarded-uri": "/api/x"})
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"
    r = await h.client.get("/saml/auth", headers={**traefik, "x-forwarded-uri": "/page"})
    assert r.status_code == 302


async def test_a_sign_in_for_another_hosts_step_up_rule_asks_for_force_authn(
    make_harness: Any,
) -> None:
    h: Harness = make_harness(
        allowed_hosts=HOSTS, access_rules=["grafana.acme.example/admin/ max_authn_age=600"]
    )
    for url, force in (
        ("http://grafana.acme.example/admin/x", "true"),
        ("http://team.wiki.acme.example/admin/x", None),
        ("/admin/x", None),
    ):
        r = await h.client.get("/saml/login", params={"return_to": url}, headers=HTML)
        assert r.status_code == 303, r.text
        request, _ = decode_redirect_request(r.headers["location"])
        assert request.get("ForceAuthn") == force, url
