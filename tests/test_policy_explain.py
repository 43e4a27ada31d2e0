"""``saml-gate policy explain`` as a subprocess against a ``saml-gate.toml``, the same reason
in the refused person's 403 page, the ``policy_denied`` event and its log line, and ``saml-gate
check``'s warnings about rules that can never match and a public rule for every path."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from saml_gate.runtime.selfcheck import run_checks
from tests.support import KitSite

pytestmark = pytest.mark.anyio

POLICY = """\
public_paths = ["/static/"]
authorized_groups = ["staff"]

[[rules]]
path = "/admin/"
groups = ["admins"]

[[rules]]
path = "/vault/"
max_authn_age = 300

[[rules]]
path = "/reports/"
methods = ["GET"]
  [rules.attributes]
  department = ["finance"]
"""
ADMIN_PLACE = "rule 2, [[rules]] #1 at {path} line 4"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "saml-gate.toml"
    path.write_text(POLICY)
    return path


def explain(policy_file: Path, *args: str) -> tuple[int, dict[str, Any]]:
    command = [sys.executable, "-m", "saml_gate.cli", "policy", "explain", "--json"]
    command += ["--config", str(policy_file), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize(
    ("args", "status", "decision", "rule", "reason"),
    [
        (["GET", "https://app.example/static/app.css"], 0, "public", "public_paths[0] at", None),
        (["GET", "https://app.example/admin/users"], 1, "sign-in", "[[rules]] #1", "no signed-in"),
        (
            ["--user", "ann@acme.example", "--groups", "staff,admins", "GET", "https://app.example/admin/"],
            0,
            "allowed",
            "[[rules]] #1 at",
            None,
        ),
        (
            ["--user", "bob@acme.example", "--groups", "staff", "POST", "https://app.example/admin/x"],
            1,
            "refused",
            "[[rules]] #1 at",
            "/admin/: bob@acme.example is in none of the groups admins",
        ),
        (
            ["--user", "bob@acme.example", "--groups", "admins", "GET", "https://app.example/admin/"],
            1,
            "refused",
            "[[rules]] #1 at",
            "authorized_groups: bob@acme.example is in none of the groups staff",
        ),
        (
            ["--user", "ann@acme.example", "--groups", "staff", "--authn-age", "900", "GET",
             "https://app.example/vault/key"],
            1,
            "step-up",
            "[[rules]] #2 at",
            "signed in at the IdP 900 s ago, at most 300 s",
        ),
        (
            ["--user", "ann@acme.example", "--groups", "staff", "--attribute", "department=finance",
             "GET", "https://app.example/reports/q3"],
            0,
            "allowed",
            "[[rules]] #3 at",
            None,
        ),
        (
            ["--user", "ann@acme.example", "--groups", "staff", "--attribute", "department=Finance",
             "GET", "https://app.example/reports/q3"],
            1,
            "refused",
            "[[rules]] #3 at",
            "attribute department is not one of finance",
        ),
        (["GET", "https://app.example/static/../admin/"], 1, "refused", None, "'..' segments"),
    ],
)  # fmt: skip
def test_explain_against_the_file(
    policy_file: Path,
    args: list[str],
    status: int,
    decision: str,
    rule: str | None,
    reason: str | None,
) -> None:
    code, answer = explain(policy_file, *args)
    assert (code, answer["decision"]) == (status, decision)
    if rule is not None:
        assert rule in answer["rule"] and str(policy_file) in answer["rule"]
    if reason is None:
        assert "reason" not in answer
    else:
        assert reason in answer["reason"]


def test_explain_without_json_and_a_flag_winning_over_the_file(policy_file: Path) -> None:
    command = [sys.executable, "-m", "saml_gate.cli", "policy", "explain"]
    command += ["--config", str(policy_file), "--public-paths", "/admin/", "GET"]
    done = subprocess.run(
        [*command, "https://app.example/admin/"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "decision: public"
    assert "rule:     rule 1 (/admin/ public)" in done.stdout  # the flag's: no place in the file


async def test_the_gate_gives_the_same_reason(
    policy_file: Path, saml_idp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The 403 page, the policy_denied event and its log line say what explain says."""
    _, answer = explain(
        policy_file, "--user", "bob@acme.example", "--groups", "staff", "GET",
        "http://testserver/admin/users",
    )  # fmt: skip
    site = KitSite(saml_idp, config_file=str(policy_file))
    try:
        client = await site.signed_in("bob@acme.example", groups=["staff"])
        caplog.set_level(logging.INFO, logger="saml_gate")
        page = await client.get("/admin/users", headers={"accept": "text/html"})
        assert page.status_code == 403
        place = ADMIN_PLACE.format(path=policy_file)
        assert f"(Deciding rule: {place}.)" in page.text
        [event] = await site.events_of("policy_denied")
        assert event.reason == answer["reason"]
        assert place in event.reason
        [line] = [
            r.getMessage() for r in caplog.records if getattr(r, "event", "") == "policy_denied"
        ]
        assert answer["reason"] in line
    finally:
        await site.close()


def check_lines(path: Path, policy: str = POLICY) -> list[str]:
    path.write_text(policy + '\n[[rules]]\npath = "/admin/billing/"\ngroups = ["finance"]\n')
    report = run_checks({"config_file": str(path), "dev_idp": True,
                         "base_url": "http://127.0.0.1:8000", "secret_key": "s" * 40,
                         "state_dir": str(path.parent / "state")})  # fmt: skip
    return [line for line in report.lines if "WARN" in line]


def test_check_warns_about_a_rule_that_can_never_match(tmp_path: Path) -> None:
    path = tmp_path / "saml-gate.toml"
    warnings = check_lines(path)
    [shadow] = [w for w in warnings if "can never match" in w]
    assert f"[[rules]] #4 at {path} line 18 (/admin/billing/)" in shadow
    assert f"[[rules]] #1 at {path} line 4 (/admin/)" in shadow
    assert not [w for w in warnings if "makes every path public" in w]


def test_check_warns_about_a_public_rule_for_every_path(tmp_path: Path) -> None:
    path = tmp_path / "saml-gate.toml"
    warnings = check_lines(path, POLICY.replace('"/static/"', '"/static/", "/"'))
    [public] = [w for w in warnings if "makes every path public" in w]
    assert f"rule 2, public_paths[1] at {path} line 1 (/ public)" in public
    assert "the 4 rule(s) after it never apply" in public


def test_explain_decides_for_the_urls_host(tmp_path: Path) -> None:
    """Rules with a host decide for that host only; a host the gate does not serve is refused
    before any rule, as the gate does."""
    path = tmp_path / "saml-gate.toml"
    path.write_text(
        'base_url = "https://auth.acme.example"\n'
        'allowed_hosts = ["grafana.acme.example", "wiki.acme.example"]\n'
        '[[rules]]\nhost = "grafana.acme.example"\npath = "/"\ngroups = ["ops"]\n'
    )
    who = ["--user", "ann@acme.example", "--groups", "staff"]
    code, answer = explain(path, *who, "GET", "https://grafana.acme.example/d/1")
    assert (code, answer["decision"]) == (1, "refused") and "none of the groups ops" in answer[
        "reason"
    ]
    code, answer = explain(path, *who, "GET", "https://wiki.acme.example/d/1")
    assert (code, answer["decision"]) == (0, "allowed")
    code, answer = explain(path, *who, "GET", "https://evil.example/d/1")
    assert (code, answer["decision"], answer["code"]) == (1, "refused", "unknown_host")


TOKEN_POLICY = (
    POLICY
    + """
[[rules]]
path = "/api/"
accept = ["session", "token"]
groups = ["deployers"]

[[rules]]
path = "/hooks/"
accept = ["token"]
"""
)


@pytest.mark.parametrize(
    ("who", "url", "status", "decision", "code"),
    [
        (["--token", "ci-deploy", "--groups", "staff,deployers"], "/api/x", 0, "allowed", None),
        (["--token", "ci-deploy", "--groups", "staff"], "/api/x", 1, "refused", "forbidden"),
        (["--token", "ci-deploy", "--groups", "staff,admins"], "/admin/", 1, "refused",
         "token_not_accepted"),
        (["--token", "ci-deploy", "--groups", "staff"], "/hooks/x", 0, "allowed", None),
        (["--user", "ann@acme.example", "--groups", "staff"], "/hooks/x", 1, "refused",
         "token_required"),
        ([], "/hooks/x", 1, "refused", "token_required"),
        (["--user", "ann@acme.example", "--groups", "staff,deployers"], "/api/x", 0, "allowed",
         None),
    ],
)  # fmt: skip
def test_explain_for_a_service_with_a_bearer_token(
    tmp_path: Path, who: list[str], url: str, status: int, decision: str, code: str | None
) -> None:
    """``--token NAME``: the caller is a service, decided as the gate decides a bearer token
    (the rule's ``accept`` first, then the same conditions); a person on a token-only route is
    refused as the gate refuses them."""
    path = tmp_path / "saml-gate.toml"
    path.write_text(TOKEN_POLICY)
    exit_status, answer = explain(path, *who, "GET", "https://app.example" + url)
    assert (exit_status, answer["decision"], answer.get("code")) == (status, decision, code)


def test_explain_takes_a_person_or_a_service_not_both(policy_file: Path) -> None:
    command = [sys.executable, "-m", "saml_gate.cli", "policy", "explain", "--config"]
    command += [str(policy_file), "--user", "a@acme.example", "--token", "ci", "GET"]
    done = subprocess.run(
        [*command, "https://app.example/"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "--user or --token, not both" in done.stderr
