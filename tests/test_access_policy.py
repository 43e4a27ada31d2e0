"""The access policy and the request line alone, without a gate: the fast loop for whoever
changes ``saml_gate.policy`` (``pytest tests/test_access_policy.py``). What a gate does with
the decisions, through its real endpoints, is tests/test_policy.py and tests/test_request_line.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.policy import AccessPolicy, Decision, Rule
from saml_gate.policy.access import DEFAULT_RULE, PASS_THROUGH, AllOf
from saml_gate.policy.request_line import (
    canonical_path,
    check_raw_path,
    checked_method,
    format_stems,
    override_methods,
    posts_a_body,
    route_path,
    without_parameters,
)
from saml_gate.user import SamlUser
from tests.support import SECRET

NOW = 1_900_000_000.0
MFA = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
ADMINS = Rule("/admin/", groups=["admins"])
READ_ONLY = Rule("/docs/", methods=["GET"], public=True)
FRESH = Rule("/vault/", max_authn_age=300, authn_contexts=[MFA])
TEAM = Rule(re.compile(r"/teams/[a-z]+"), attributes={"department": ["eng", "ops"]})


def policy(**settings: Any) -> AccessPolicy:
    values: dict[str, Any] = {
        "dev_idp": True,
        "base_url": "http://127.0.0.1:8000",
        "secret_key": SECRET,
        "access_rules": [ADMINS, READ_ONLY, FRESH, TEAM],
        "public_paths": ["/public/"],
        **settings,
    }
    return AccessPolicy(GateSettings.load(**values))


def user(**fields: Any) -> SamlUser:
    values: dict[str, Any] = {
        "name_id": "ann@example.com",
        "email": "ann@example.com",
        "name": None,
        "groups": (),
        "authenticated_at": NOW - 60,
        **fields,
    }
    return SamlUser(**values)


def scope(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], **extra}


def refusal_code(p: AccessPolicy, path: str, who: SamlUser, method: str = "GET") -> str | None:
    refusal = p.refusal(p.decide(scope(path, method), path), who, NOW)
    return None if refusal is None else refusal.code


# ---------------------------------------------------------------------- which rule decides
def test_public_paths_come_first_and_the_first_matching_rule_decides() -> None:
    p = policy(access_rules=[Rule("/public/", groups=["admins"]), ADMINS, Rule("/admin/x")])
    assert p.rule_for("/public/page", "GET").public
    assert p.rule_for("/admin/x", "GET") == ADMINS
    assert p.rule_for("/admin", "GET") == ADMINS  # the prefix's own path
    assert p.rule_for("/administration", "GET") == DEFAULT_RULE


def test_a_rule_for_some_methods_leaves_the_others_to_later_rules() -> None:
    p = policy()
    assert p.rule_for("/docs/a", "GET") == READ_ONLY
    assert p.rule_for("/docs/a", "HEAD") == READ_ONLY  # GET includes HEAD
    assert p.rule_for("/docs/a", "POST") == DEFAULT_RULE


def test_a_pattern_must_match_the_whole_path() -> None:
    p = policy()
    assert p.rule_for("/teams/red", "GET") == TEAM
    assert p.rule_for("/teams/red/x", "GET") == DEFAULT_RULE


def test_paths_are_matched_in_canonical_form() -> None:
    p = policy()
    assert p.rule_for("//admin//x", "GET") == ADMINS
    assert p.rule_for("/admin\\x", "GET") == ADMINS
    assert p.rule_for("/\\admin", "GET") == ADMINS
    for dodge in ("/public/../admin/x", "/public/..;/admin/x", "/public/./x", "admin/x"):
        with pytest.raises(GateError) as refused:
            p.rule_for(dodge, "GET")
        assert refused.value.code == "bad_path", dodge


def test_a_format_suffix_must_also_meet_the_rule_of_the_path_without_it() -> None:
    p = policy(access_rules=[Rule("/reports.json", public=True), ADMINS])
    decision = p.rule_for("/admin.json", "GET")  # /admin to Rails and to Spring
    assert isinstance(decision, AllOf) and decision.rules == (DEFAULT_RULE, ADMINS)
    both = p.decide(scope("/reports.json"), "/reports.json")
    assert isinstance(both, AllOf) and not both.public  # /reports needs a signed-in person
    assert not p.rule_for("/reports.v1.json", "GET").public


def test_every_method_override_must_be_allowed_too() -> None:
    p = policy()
    headers = [(b"x-http-method-override", b"delete")]
    decision = p.decide(scope("/docs/a", headers=headers), "/docs/a")
    assert isinstance(decision, AllOf) and decision.rules == (READ_ONLY, DEFAULT_RULE)
    assert not decision.public
    query = p.decide(scope("/docs/a", query_string=b"_method=PUT"), "/docs/a")
    assert isinstance(query, AllOf) and not query.public


def test_a_post_with_a_body_is_decided_under_every_method_a_rule_names() -> None:
    p = policy(access_rules=[Rule("/api/", methods=["GET", "POST"], public=True), ADMINS])
    with_body = scope("/api/x", "POST", headers=[(b"content-length", b"5")])
    assert not p.decide(with_body, "/api/x").public  # _method in it may be anything
    empty = scope("/api/x", "POST", headers=[(b"content-length", b"0")])
    assert p.decide(empty, "/api/x").public
    off = policy(access_rules=[Rule("/api/", methods=["POST"], public=True)])
    assert not off.decide(with_body, "/api/x").public
    assert (
        policy(
            access_rules=[Rule("/api/", methods=["POST"], public=True)],
            method_override_in_body=False,
        )
        .decide(with_body, "/api/x")
        .public
    )


def test_options_passthrough_lets_preflights_through_unless_an_override_rides_along() -> None:
    p = policy(options_passthrough=True)
    assert p.decide(scope("/admin/x", "OPTIONS"), "/admin/x") == PASS_THROUGH
    riding = scope("/admin/x", "OPTIONS", headers=[(b"x-method-override", b"DELETE")])
    assert not p.decide(riding, "/admin/x").public
    assert policy().decide(scope("/admin/x", "OPTIONS"), "/admin/x") == ADMINS


# ---------------------------------------------------------------------- who may pass
def test_groups_attributes_and_the_authorized_groups_floor() -> None:
    p = policy()
    assert refusal_code(p, "/admin/x", user()) == "forbidden"
    assert refusal_code(p, "/admin/x", user(groups=("admins",))) is None
    assert refusal_code(p, "/admin/x", user(groups=("Admins",))) == "forbidden"  # verbatim
    eng = user(attributes={"department": ("eng",)})
    assert refusal_code(p, "/teams/red", eng) is None
    assert refusal_code(p, "/teams/red", user(attributes={"department": ("sales",)})) == (
        "forbidden"
    )
    floor = policy(authorized_groups=["staff"])
    assert refusal_code(floor, "/admin/x", user(groups=("admins",))) == "forbidden"
    assert refusal_code(floor, "/anything", user(groups=("staff",))) is None
    assert floor.rule_for("/public/x", "GET").public  # a floor under non-public rules only


def test_a_stale_or_weak_sign_in_needs_a_step_up() -> None:
    p = policy()
    strong = {"authn_context": MFA}
    assert refusal_code(p, "/vault/x", user(**strong)) is None
    assert refusal_code(p, "/vault/x", user(authn_context=None)) == "step_up_required"
    old = user(authenticated_at=NOW - 3600, **strong)
    assert refusal_code(p, "/vault/x", old) == "step_up_required"
    assert p.fresh_sign_in_for("/vault/x") and not p.fresh_sign_in_for("/admin/x")
    failed = p.unmet_step_up("/vault/x", user(authn_context=None), NOW)
    assert failed is not None and failed.code == "step_up_failed"
    assert p.unmet_step_up("/admin/x", user(), NOW) is None  # forbidden is no step-up


# ---------------------------------------------------------------------- the request line
@pytest.mark.parametrize("method", ["get", "Get", "GET ", "", "G\x00T", "GET/1"])
def test_a_method_that_is_not_an_upper_case_token_is_refused(method: str) -> None:
    with pytest.raises(GateError) as refused:
        checked_method(method)
    assert refused.value.code == "bad_method"


def test_method_overrides_are_read_in_every_spelling_and_upper_cased() -> None:
    headers = [(b"x_http_method", b" patch "), (b"x-method-override", b"delete")]
    assert override_methods(headers, b"a=1") == ("PATCH", "DELETE")
    for query in (
        b"_method=put",
        b".method=put",
        b"%5Fmethod=put",
        b"_METHOD=put",
        b"_method[]=put",
    ):
        assert override_methods([], query) == ("PUT",), query
    with pytest.raises(GateError):
        override_methods([(b"x-http-method", b"not a method")], b"")


@pytest.mark.parametrize(
    ("headers", "version", "body"),
    [
        ([], "1.1", False),
        ([], "2", True),
        ([(b"content-length", b"0")], "1.1", False),
        ([(b"content-length", b"00")], "2", False),
        ([(b"content-length", b"1")], "1.1", True),
        ([(b"content-length", b"0"), (b"content-length", b"7")], "1.1", True),
        ([(b"transfer-encoding", b"chunked")], "1.1", True),
    ],
)
def test_posts_a_body(headers: list[tuple[bytes, bytes]], version: str, body: bool) -> None:
    assert posts_a_body("POST", headers, version) is body
    assert posts_a_body("PUT", headers, version) is False


def test_paths_routes_stems_and_parameters() -> None:
    assert canonical_path("/a//b\\c/") == "/a/b/c/"
    assert canonical_path("/plain") == "/plain"
    assert route_path("/app/x", "/app") == "/x" and route_path("/app", "/app") == "/"
    assert route_path("/apple", "/app") == "/apple"
    assert format_stems("/r/x.tar.gz/") == ("/r/x", "/r/x.tar")
    assert format_stems("/r.d/x") == ()
    assert without_parameters("/a;x/b;y=1") == "/a/b"
    for raw in (b"/a%2Fb", b"/a%2e%2e/b", b"/a%00", b"/a%25"):
        with pytest.raises(GateError):
            check_raw_path(raw, "/a", allow_parameters=False)
    with pytest.raises(GateError):
        check_raw_path(b"/a;x", "/a;x", allow_parameters=False)
    check_raw_path(b"/a;x", "/a;x", allow_parameters=True)


# ------------------------------------------------ decisions kept for the next request


def _scope(
    method: str = "GET",
    path: str = "/api/x",
    query: bytes = b"",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    version: str = "1.1",
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "http_version": version,
    }


def _routed(p: AccessPolicy, scope: dict[str, Any], path: str | None = None) -> Decision:
    """The rule(s) deciding ``scope`` as the gate finds them: with its host, the answer kept."""
    return p.route(scope, scope["path"] if path is None else path, "127.0.0.1:8000")[1]


def _outcome(decide: Callable[[dict[str, Any]], Decision], scope: dict[str, Any]) -> object:
    try:
        return decide(scope)
    except GateError as error:
        return error.code


def test_a_kept_decision_serves_only_requests_the_same_in_every_part_it_depends_on() -> None:
    """The decision kept for GET /api/x must not answer the same path with an override header,
    an override in the query (also as PHP names it), a POST with a body."""
    p = policy(access_rules=["/api/ methods=DELETE groups=admins", "/api/ methods=PUT public"])
    mallory = user(groups=("users",))
    plain = _routed(p, _scope())
    assert _routed(p, _scope()) is plain and p.refusal(plain, mallory, NOW) is None
    refused = [
        _scope(headers=((b"x-http-method-override", b"DELETE"),)),
        _scope(headers=((b"x_method_override", b"delete"),)),
        _scope(query=b"_method=DELETE"),
        _scope(query=b"a=1&.method=DELETE"),
        _scope(query=b"%5Fmethod=DELETE"),
        _scope("POST", headers=((b"content-length", b"14"),)),
        _scope("POST", headers=((b"transfer-encoding", b"chunked"),)),
        _scope("POST", version="2"),
        _scope("DELETE"),
    ]
    for scope in refused:
        for _ in range(2):  # decided, then kept: refused both times
            assert p.refusal(_routed(p, scope), mallory, NOW), scope
    for scope in (_scope("POST", headers=((b"content-length", b"0"),)), _scope(query=b"a=1")):
        assert p.refusal(_routed(p, scope), mallory, NOW) is None
    assert _routed(p, _scope()) is plain


def test_kept_decisions_agree_with_fresh_ones_on_random_requests() -> None:
    """Requests drawn from parts that each change a decision, in random order and repeated:
    the policy that keeps decisions answers each as a policy deciding it for the first time."""
    import random

    rules = ["/api/ methods=DELETE groups=admins", "/api/open public", "/files/ public"]
    rng = random.Random(1729)
    kept = policy(access_rules=rules, public_paths=["/health"])
    parts = {
        "method": ["GET", "POST", "DELETE", "PUT", "get", "OPTIONS"],
        "path": [
            "/api/x",
            "/api/open",
            "/api/open.json",
            "/files/a.txt",
            "/health",
            "/h//x",
            "/api/../x",
            "/a;b",
            "/api/x/",
        ],
        "query": [
            b"",
            b"a=1",
            b"_method=DELETE",
            b"_method=PUT",
            b"x%2Emethod=DELETE",
            b"_method=bad value",
        ],
        "headers": [
            (),
            ((b"x-http-method-override", b"DELETE"),),
            ((b"content-length", b"3"),),
            ((b"content-length", b"0"),),
            ((b"x-http-method", b"PUT"),),
        ],
        "version": ["1.1", "2"],
    }
    for _ in range(3000):
        scope = _scope(**{name: rng.choice(values) for name, values in parts.items()})
        fresh = policy(access_rules=rules, public_paths=["/health"])
        found = _outcome(lambda scope: _routed(kept, scope), scope)
        assert found == _outcome(lambda scope: fresh.decide(scope, scope["path"]), scope), scope  # noqa: B023


def test_kept_decisions_are_bounded_and_refusals_and_long_requests_are_not_kept() -> None:
    p = policy(access_rules=["/admin/ groups=admins"])
    for n in range(5000):
        _routed(p, _scope(path=f"/page{n}.json"))
    assert 0 < len(p._routed) <= 4096
    long = "/x" * 200 + ".json"
    _routed(p, _scope(path=long))
    assert not any(key[0] == long for key in p._routed)
    p._routed.clear()
    with pytest.raises(GateError):
        _routed(p, _scope(path="/a/../admin/"))
    with pytest.raises(GateError):
        p.route(_scope(path="/x"), "/x", "elsewhere.example")
    assert not p._routed


def test_a_route_is_the_host_served_and_its_decision_given_again_while_kept() -> None:
    """Another host (or scheme) is another route; the same request gets the same tuple."""
    p = policy(access_rules=["/admin/ groups=admins"], allowed_hosts=["grafana.example"])
    scope = _scope(path="/admin/x")
    here = p.route(scope, "/admin/x", "127.0.0.1:8000")
    assert p.route(dict(scope), "/admin/x", "127.0.0.1:8000") is here
    there = p.route(scope, "/admin/x", "grafana.example")
    assert there[0].origin == "http://grafana.example" and there is not here
    secure = p.route(scope, "/admin/x", "grafana.example", "https")
    assert secure[0].origin == "https://grafana.example" and secure is not there
    assert here[1] is there[1] is p.decide(scope, "/admin/x")
