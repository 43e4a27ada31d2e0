"""Access policy: rules, their text form, path canonicalisation, and the gate's answers.

Through the gate: public and group rules, attribute rules, methods (HEAD like GET), OPTIONS
passthrough, 403 (HTML or JSON) instead of a login loop, dot-segment paths, and step-up
(max_authn_age and authn_contexts) with ForceAuthn and its loop breaker at the ACS.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from saml_gate import GateSettings
from saml_gate.errors import ConfigError, GateError
from saml_gate.policy import AccessPolicy, Rule, canonical_path, parse_rules
from saml_gate.policy.request_line import format_stems
from saml_gate.user import SamlUser
from tests.support import BASE_URL, SECRET, Harness, decode_redirect_request, idp_metadata
from tests.test_websocket import ws_call

pytestmark = pytest.mark.anyio

MFA = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


def user(**overrides: Any) -> SamlUser:
    values: dict[str, Any] = dict(
        name_id="alice@example.com",
        email="alice@example.com",
        name="Alice",
        groups=("users",),
        attributes={"department": ("finance",)},
        authenticated_at=1000.0,
        authn_context=PASSWORD,
    )
    values.update(overrides)
    return SamlUser(**values)


def policy(idp_keys: Any, **settings: Any) -> AccessPolicy:
    return AccessPolicy(
        GateSettings.load(
            environ={},
            base_url=BASE_URL,
            secret_key=SECRET,
            idp_metadata=idp_metadata(idp_keys),
            **settings,
        )
    )


# ---------------------------------------------------------------------- rules
def test_prefix_exact_and_pattern_matching() -> None:
    prefix, exact = Rule("/admin/"), Rule("/health")
    pattern = Rule(re.compile(r"/reports/\d+"))
    assert prefix.matches("/admin/", "GET") and prefix.matches("/admin/x/y", "GET")
    assert prefix.matches("/admin", "GET")  # the directory itself is covered too
    assert not prefix.matches("/administrator", "GET")
    assert exact.matches("/health", "GET") and not exact.matches("/health/x", "GET")
    assert pattern.matches("/reports/42", "GET")
    assert not pattern.matches("/reports/42/edit", "GET")  # the whole path must match


def test_methods_with_head_counted_as_get() -> None:
    rule = Rule("/api/", methods=["get", "POST"])
    assert rule.methods == ("GET", "POST", "HEAD")
    assert rule.matches("/api/x", "HEAD") and not rule.matches("/api/x", "DELETE")


def test_text_form() -> None:
    rule = Rule.parse(
        "/admin/ groups=admins|ops attribute.department=finance|legal methods=GET"
        f" max_authn_age=600 authn_context={MFA}"
    )
    assert rule == Rule(
        "/admin/",
        groups=("admins", "ops"),
        attributes={"department": ["finance", "legal"]},
        methods="GET",
        max_authn_age=600,
        authn_contexts=MFA,
    )
    assert Rule.parse("/static/ public").public
    assert not Rule.parse("/x authenticated").public
    assert Rule.parse(r"re:/r/\d+").matches("/r/7", "GET")
    assert parse_rules("/a/ public;\n/b/ groups=x\n") == (
        Rule("/a/", public=True),
        Rule("/b/", groups="x"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "admin/ public",
        "/a//b public",
        "/a/../b public",
        "/a/ public groups=x",
        "/a/ max_authn_age=0",
        "/a/ max_authn_age=soon",
        "/a/ groups=",
        "/a/ colour=blue",
        "re:/a/( public",
        "/a/ methods=G3T",
    ],
)
def test_bad_rules_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Rule.parse(text)
    assert info.value.setting == "access_rules"


def test_settings_take_rules_from_keywords_and_the_environment(idp_keys: Any) -> None:
    base = dict(base_url=BASE_URL, secret_key=SECRET, idp_metadata=idp_metadata(idp_keys))
    env = {"SAML_GATE_ACCESS_RULES": "/static/ public; /admin/ groups=admins|ops"}
    from_env = GateSettings.load(environ=env, **base)
    assert from_env.access_rules == (
        Rule("/static/", public=True),
        Rule("/admin/", groups=("admins", "ops")),
    )
    mixed = GateSettings.load(environ={}, access_rules=[Rule("/a/"), "/b/ public"], **base)
    assert mixed.access_rules == (Rule("/a/"), Rule("/b/", public=True))
    with pytest.raises(ConfigError, match="access_rules"):
        GateSettings.load(environ={}, access_rules=[42], **base)
    bad_env = {"SAML_GATE_ACCESS_RULES": "/x/ frobnicate"}
    with pytest.raises(ConfigError, match="frobnicate"):
        GateSettings.load(environ=bad_env, **base)


# ---------------------------------------------------------------------- paths
@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/a/b", "/a/b"),
        ("//admin/x", "/admin/x"),
        ("/a//b/", "/a/b/"),
        ("/a\\b", "/a/b"),
        ("//", "/"),
        ("/.well-known/x", "/.well-known/x"),
        ("/a;b/c", "/a;b/c"),
    ],
)
def test_canonical_paths(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


@pytest.mark.parametrize(
    "path",
    [
        "/public/../admin",
        "/public/./x",
        "/public/..;/admin",
        "/a\\..\\b",
        "/x\x00y",
        "/..",
        "http://evil.example/admin",
        "*",
    ],
)
def test_dot_segments_control_characters_and_non_paths_are_refused(path: str) -> None:
    with pytest.raises(GateError) as info:
        canonical_path(path)
    assert info.value.code == "bad_path"


@pytest.mark.parametrize(
    ("path", "stems"),
    [
        ("/admin", ()),
        ("/admin.json", ("/admin",)),
        ("/admin.json/", ("/admin",)),
        ("/admin.tar.gz", ("/admin", "/admin.tar")),
        ("/admin.", ("/admin",)),
        ("/admin/users.json", ("/admin/users",)),
        ("/.htaccess", ("/",)),
        ("/v1.2/admin", ()),
        ("/", ()),
    ],
)
def test_format_stems(path: str, stems: tuple[str, ...]) -> None:
    """What Rails (the last dot of the last segment) and Spring MVC (the first) route."""
    assert format_stems(path) == stems


@pytest.mark.parametrize(
    "path", ["/admin.json", "/admin.json/", "/admin.tar.gz", "/admin.", "/reports/7.xml"]
)
async def test_a_format_suffix_meets_the_rule_of_the_path_without_it(
    make_harness: Any, path: str
) -> None:
    h: Harness = make_harness(
        access_rules=["/admin/ groups=finance", r"re:/reports/\d+ groups=finance"]
    )
    await h.login()
    r = await h.client.get(path, headers=JSON)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (await h.client.get("/other.json", headers=JSON)).status_code != 403


def test_decisions_for_suffixed_paths_after_many_others(idp_keys: Any) -> None:
    p = policy(idp_keys, access_rules=["/admin/ groups=admins"])
    mallory = user(groups=("users",))
    first = p.rule_for("/admin.json", "GET")
    assert p.rule_for("/admin.json", "GET") == first and p.refusal(first, mallory, 0)
    for n in range(5000):
        assert p.refusal(p.rule_for(f"/page{n}.json", "GET"), mallory, 0) is None
    assert p.refusal(p.rule_for("/admin.json", "GET"), mallory, 0)
    long = "/x" * 200 + ".json"
    assert p.refusal(p.rule_for(long, "GET"), mallory, 0) is None


def test_a_format_suffix_needs_the_literal_paths_rule_too(idp_keys: Any) -> None:
    p = policy(idp_keys, public_paths=["/health"])
    decision = p.rule_for("/health.json", "GET")
    assert not decision.public  # /health is public, /health.json is any signed-in person's


# ---------------------------------------------------------------------- decisions
def test_first_match_wins_and_the_default_is_any_signed_in_user(idp_keys: Any) -> None:
    p = policy(
        idp_keys,
        public_paths=["/health"],
        access_rules=["/admin/public/ public", "/admin/ groups=admins"],
    )
    assert p.rule_for("/health", "GET").public
    assert p.rule_for("/admin/public/x", "GET").public
    assert p.rule_for("/admin/x", "GET").groups == ("admins",)
    assert p.rule_for("//admin/x", "GET").groups == ("admins",)
    default = p.rule_for("/anything", "GET")
    assert not default.public and not default.groups
    assert p.refusal(default, user(), 0) is None


def test_authorized_groups_is_a_floor_under_every_rule(idp_keys: Any) -> None:
    p = policy(idp_keys, authorized_groups=["staff"], access_rules=["/open/ groups=users"])
    refusal = p.refusal(p.rule_for("/open/x", "GET"), user(groups=("users",)), 0)
    assert refusal is not None and refusal.code == "forbidden"
    assert p.refusal(p.rule_for("/open/x", "GET"), user(groups=("staff", "users")), 0) is None


def test_attribute_rules(idp_keys: Any) -> None:
    p = policy(idp_keys, access_rules=["/books/ attribute.department=finance|legal"])
    rule = p.rule_for("/books/2026", "GET")
    assert p.refusal(rule, user(), 0) is None
    refusal = p.refusal(rule, user(attributes={"department": ("sales",)}), 0)
    assert refusal is not None and refusal.code == "forbidden"
    refusal = p.refusal(rule, user(attributes={}), 0)
    assert refusal is not None and refusal.code == "forbidden"


def test_max_authn_age_allows_the_clock_skew(idp_keys: Any) -> None:
    p = policy(idp_keys, access_rules=["/admin/ max_authn_age=300"], clock_skew=60)
    rule = p.rule_for("/admin/", "GET")
    assert p.refusal(rule, user(authenticated_at=1000), 1000 + 360) is None
    refusal = p.refusal(rule, user(authenticated_at=1000), 1000 + 361)
    assert refusal is not None and refusal.code == "step_up_required"


# ---------------------------------------------------------------------- through the gate
async def test_public_rule_needs_no_sign_in(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/public/ public"])
    r = await h.client.get("/public/x", headers=HTML)
    assert r.status_code == 200 and r.json() == {"anonymous": True}


async def test_group_rule_answers_403_not_a_login_loop(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/finance/ groups=finance"])
    assert (await h.login()).status_code == 303
    page = await h.client.get("/private/finance/q1", headers=HTML)
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "location" not in page.headers
    api = await h.client.get("/private/finance/q1", headers=JSON)
    assert api.status_code == 403 and api.json()["error"] == "forbidden"
    post = await h.client.post("/private/finance/q1", headers=JSON)
    assert post.status_code == 403
    assert (await h.client.get("/private/other", headers=JSON)).status_code == 200


async def test_websocket_under_a_group_rule_is_refused_with_403(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/ws groups=finance"])
    await h.login()
    cookie = "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))
    sent = await ws_call(h, cookie, denial_extension=True)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 403


async def test_a_rule_limited_to_a_method(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/ methods=POST groups=editors"])
    await h.login()
    assert (await h.client.get("/private/doc", headers=JSON)).status_code == 200
    assert (await h.client.post("/private/doc", headers=JSON)).status_code == 403


async def test_head_is_treated_like_get(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/ methods=GET groups=finance"])
    r = await h.client.head("/private/doc", headers=HTML)
    assert r.status_code == 303  # a browser navigation: sent to the IdP, like GET
    await h.login()
    assert (await h.client.head("/private/doc", headers=HTML)).status_code == 403


async def test_options_passthrough(make_harness: Any) -> None:
    preflight = {
        "origin": "https://other.example",
        "access-control-request-method": "POST",
        "accept": "*/*",
    }
    off: Harness = make_harness()
    assert (await off.client.options("/private/x", headers=preflight)).status_code == 401
    on: Harness = make_harness(options_passthrough=True)
    r = await on.client.options("/private/x", headers=preflight)
    assert r.status_code == 405  # the app answered (its route has no OPTIONS), not the gate
    assert (await on.client.get("/private/x", headers=JSON)).status_code == 401


@pytest.mark.parametrize("path", ["/public/../private/x", "/public/..;/private/x"])
async def test_dot_segments_cannot_borrow_a_public_prefix(make_harness: Any, path: str) -> None:
    h: Harness = make_harness(public_paths=["/public/"])
    r = await h.client.get(BASE_URL + path.replace("..", "%2e%2e"), headers=JSON)
    assert r.status_code == 400 and r.json()["error"] == "bad_path"


async def test_double_slash_cannot_dodge_a_rule(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/finance/ groups=finance"])
    await h.login()
    r = await h.client.get(BASE_URL + "//private//finance/x", headers=JSON)
    assert r.status_code == 403


# ---------------------------------------------------------------------- step-up
def force_authn(location: str) -> str | None:
    request, _ = decode_redirect_request(location)
    return request.get("ForceAuthn")


async def finish_login(h: Harness, location: str, **spec: Any) -> Any:
    request, relay = decode_redirect_request(location)
    saml = h.response_b64(h.spec(in_response_to=request.get("ID"), **spec))
    return await h.post_acs(saml, relay)


async def test_stale_sign_in_is_sent_back_to_the_idp_with_force_authn(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/admin/ max_authn_age=300"])
    await h.login("/private/page")
    assert (await h.client.get("/private/admin/", headers=HTML)).status_code == 200  # fresh
    h.clock.advance(1000)
    r = await h.client.get("/private/admin/users?x=1", headers=HTML)
    assert r.status_code == 303 and force_authn(r.headers["location"]) == "true"

    api = await h.client.get("/private/admin/users", headers=JSON)
    assert api.status_code == 401
    body = api.json()
    assert body["error"] == "step_up_required"
    assert body["login_url"] == BASE_URL + "/saml/login?return_to=%2Fprivate%2Fadmin%2Fusers"
    login = await h.client.get(body["login_url"])
    assert login.status_code == 303 and force_authn(login.headers["location"]) == "true"

    cookie = "saml_gate_session=" + str(h.client.cookies.get("saml_gate_session"))
    sent = await ws_call(h, cookie, denial_extension=True, path="/private/admin/ws")
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401

    done = await finish_login(h, r.headers["location"])  # the IdP authenticated again: now
    assert done.status_code == 303 and done.headers["location"] == "/private/admin/users?x=1"
    assert (await h.client.get("/private/admin/users", headers=JSON)).status_code == 200
    assert (await h.client.get("/private/page", headers=JSON)).status_code == 200


async def test_an_idp_ignoring_force_authn_gets_403_not_a_loop(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/admin/ max_authn_age=300"])
    h.clock.advance(3600)
    r = await h.client.get("/private/admin/", headers=HTML)
    assert r.status_code == 303 and force_authn(r.headers["location"]) == "true"
    old = h.clock.datetime - timedelta(hours=1)
    done = await finish_login(h, r.headers["location"], authn_instant=old)
    assert done.status_code == 403 and "step_up_failed" in done.text
    assert h.client.cookies.get("saml_gate_session")  # signed in, just not for this page
    assert (await h.client.get("/private/page", headers=JSON)).status_code == 200


async def test_authn_context_rule(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=[f"/private/vault/ authn_context={MFA}"])
    await h.login("/private/page")  # PasswordProtectedTransport, as Okta sends by default
    me = await h.client.get("/saml/session")
    assert me.json()["authn_context"] == PASSWORD
    r = await h.client.get("/private/vault/", headers=HTML)
    assert r.status_code == 303 and force_authn(r.headers["location"]) == "true"
    done = await finish_login(h, r.headers["location"], authn_context_class_ref=MFA)
    assert done.status_code == 303
    assert (await h.client.get("/private/vault/", headers=JSON)).status_code == 200

    again: Harness = make_harness(access_rules=[f"/private/vault/ authn_context={MFA}"])
    r = await again.client.get("/private/vault/", headers=HTML)
    done = await finish_login(again, r.headers["location"], authn_context_class_ref=PASSWORD)
    assert done.status_code == 403 and "step_up_failed" in done.text


async def test_sign_in_for_a_step_up_path_starts_with_force_authn(make_harness: Any) -> None:
    h: Harness = make_harness(access_rules=["/private/admin/ max_authn_age=300"])
    direct = await h.client.get("/private/admin/x", headers=HTML)
    assert force_authn(direct.headers["location"]) == "true"
    via_login = await h.client.get("/saml/login?return_to=%2Fprivate%2Fadmin%2Fx")
    assert force_authn(via_login.headers["location"]) == "true"
    plain = await h.client.get("/saml/login?return_to=%2Fprivate%2Fpage")
    assert force_authn(plain.headers["location"]) is None


async def test_idp_initiated_sign_in_to_a_step_up_path_is_then_stepped_up(
    make_harness: Any,
) -> None:
    h: Harness = make_harness(
        access_rules=["/private/admin/ max_authn_age=300"], allow_idp_initiated=True
    )
    old = h.clock.datetime - timedelta(hours=1)
    saml = h.response_b64(h.spec(authn_instant=old))
    done = await h.post_acs(saml, "/private/admin/")
    assert done.status_code == 303 and done.headers["location"] == "/private/admin/"
    r = await h.client.get("/private/admin/", headers=HTML)
    assert r.status_code == 303 and force_authn(r.headers["location"]) == "true"
