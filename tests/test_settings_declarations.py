"""Settings declared once: validation reports every problem, and the environment, the CLI's
gate flags, the README's table and the group views all follow the declarations."""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any

import pytest

from saml_gate import ConfigError, GateSettings
from saml_gate.config.declaration import declarations
from saml_gate.config.flags import add_gate_flags, gate_options
from saml_gate.config.groups import GROUP_VIEWS
from saml_gate.config.reference import flag_help, markdown_table
from saml_gate.config.validation import ConfigErrors
from saml_gate.policy import Rule
from tests.support import BASE_URL, SECRET

BASE = {"base_url": BASE_URL, "secret_key": SECRET, "dev_idp": True}


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigErrors) as caught:
        GateSettings.load(
            environ={"SAML_GATE_VERIFY_CONCURRENCY": "many"},
            clock_skew=3600,
            cookie_samesite="loose",
            prefix="saml/",
            **BASE,
        )
    error = caught.value
    assert isinstance(error, ConfigError)
    named = [problem.setting for problem in error.problems]
    assert sorted(named) == ["clock_skew", "cookie_samesite", "prefix", "verify_concurrency"]
    assert error.setting == named[0]
    for name in named:
        assert f"'{name}'" in str(error)
    assert "SAML_GATE_VERIFY_CONCURRENCY='many' is not a whole number" in str(error)
    assert "4 problems" in str(error)


def test_one_problem_reads_as_before() -> None:
    with pytest.raises(ConfigError) as caught:
        GateSettings.load(environ={}, login_timeout=5, **BASE)
    assert str(caught.value) == (
        "saml-gate setting 'login_timeout': must be between 30 and 3600 seconds, not 5"
    )


def test_check_command_reports_each_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    from saml_gate.runtime.selfcheck import run_checks

    for name in [n for n in os.environ if n.startswith("SAML_GATE_")]:
        monkeypatch.delenv(name)
    report = run_checks({"base_url": BASE_URL, "secret_key": "short", "clock_skew": -1})
    assert report.problems == 3  # secret_key, clock_skew, and no IdP
    assert any("'secret_key'" in line for line in report.lines)
    assert any("'clock_skew'" in line for line in report.lines)
    assert any("'idp_metadata'" in line for line in report.lines)


def test_cross_checks_skip_settings_that_are_already_wrong() -> None:
    with pytest.raises(ConfigErrors) as caught:
        GateSettings.load(environ={}, **{**BASE, "base_url": "not a url"})
    assert [p.setting for p in caught.value.problems] == ["base_url"]


def test_environment_is_read_by_declared_kind() -> None:
    env = {
        "SAML_GATE_VERIFY_CONCURRENCY": "2",
        "SAML_GATE_STORE_TIMEOUT": "1.5",
        "SAML_GATE_SIGN_AUTHN_REQUESTS": "off",
        "SAML_GATE_COOKIE_SECURE": "yes",
        "SAML_GATE_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        "SAML_GATE_ACCESS_RULES": "/admin/ groups=admins; /static/ public",
        "SAML_GATE_ON_EVENT": "print",  # keyword only: never read from the environment
    }
    s = GateSettings.load(environ=env, **BASE)
    assert s.verify_concurrency == 2 and s.store_timeout == 1.5
    assert s.sign_authn_requests is False and s.cookie_secure is True
    assert s.trusted_proxies == ("10.0.0.0/8", "::1")
    assert s.access_rules == (Rule.parse("/admin/ groups=admins"), Rule.parse("/static/ public"))
    assert s.on_event == ()


def test_every_setting_belongs_to_a_group_whose_view_has_it() -> None:
    for d in declarations(GateSettings):
        assert d.group in GROUP_VIEWS, d.name
        view = GROUP_VIEWS[d.group]
        assert d.name in vars(view), f"{view.__name__} lacks {d.name}"


def test_each_view_holds_only_its_group_and_values_derived_from_the_settings() -> None:
    groups = {d.name: d.group for d in declarations(GateSettings)}
    for group, view in GROUP_VIEWS.items():
        members = {n for n in vars(view) if not n.startswith("_")}
        for name in members:
            if name in groups:
                assert groups[name] == group, f"{view.__name__}.{name} is in {groups[name]}"
            else:  # derived: a property or method of GateSettings
                assert inspect.isfunction(getattr(GateSettings, name, None)) or isinstance(
                    getattr(GateSettings, name, None), property
                ), name
    s = GateSettings.load(environ={}, **BASE)
    assert s.cookies is s and s.storage.store == "memory"


def test_gate_flags_are_the_declared_ones() -> None:
    parser = argparse.ArgumentParser()
    add_gate_flags(parser)
    flags = {a.option_strings[0]: a.dest for a in parser._actions if a.dest != "help"}
    assert flags == {
        "--" + name.replace("_", "-"): name
        for name in (
            "base_url",
            "secret_key",
            "idp_metadata",
            "sp_key",
            "sp_cert",
            "state_dir",
            "prefix",
            "entity_id",
            "name_id_format",
            "authorized_groups",
            "groups_attribute",
            "public_paths",
            "clock_skew",
            "maximum_duration",
            "inactivity_timeout",
            "store",
            "allow_idp_initiated",
            "force_authn",
            "sign_authn_requests",
            "debug",
            "options_passthrough",
            "cookie_domain",
        )
    } | {"--rule": "access_rules", "--allowed-host": "allowed_hosts"}
    args = parser.parse_args(
        ["--authorized-groups", "a, b", "--clock-skew", "30", "--rule", "/a/ public", "--debug"]
    )
    assert gate_options(args) == {
        "authorized_groups": ("a", "b"),
        "clock_skew": 30.0,
        "access_rules": ["/a/ public"],
        "debug": True,
    }


def test_flag_help_shows_the_default_and_the_range() -> None:
    clock_skew = next(d for d in declarations(GateSettings) if d.name == "clock_skew")
    assert flag_help(clock_skew) == (
        "seconds of tolerance on every time check (default: 90; between 0 and 600 seconds)"
    )


@pytest.mark.parametrize("name", ["on_event", "on_error", "metrics_registry"])
def test_keyword_only_settings_are_documented_as_such(name: str) -> None:
    assert f"| `{name}` | (keyword only) |" in markdown_table()


def test_a_field_without_a_declaration_is_refused() -> None:
    from dataclasses import dataclass

    @dataclass
    class Plain:
        value: Any = None

    with pytest.raises(TypeError, match="declaration"):
        declarations(Plain)
