"""Settings declared once: validation reports every problem, and the environment, the command
line's flags, the typed keyword options and the README's tables all follow the declarations."""

from __future__ import annotations

import argparse
import os
import typing
from typing import Any

import pytest

from saml_gate import ConfigError, GateSettings
from saml_gate.config import options as options_module
from saml_gate.config.catalogue import every_declaration
from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.declaration import declarations
from saml_gate.config.flags import add_flags, flag_values
from saml_gate.config.generate import keyword_type, options_text
from saml_gate.config.loading import value_of
from saml_gate.config.options import GateOptions, ProxyOptions
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.reference import flag_help, markdown_tables
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


def test_a_keyword_wins_over_its_variable_even_a_bad_one() -> None:
    env = {"SAML_GATE_CLOCK_SKEW": "soon", "SAML_GATE_STORE_TIMEOUT": "2"}
    s = GateSettings.load(environ=env, clock_skew=30, **BASE)
    assert s.clock_skew == 30 and s.store_timeout == 2
    with pytest.raises(ConfigError, match="SAML_GATE_CLOCK_SKEW='soon'"):
        GateSettings.load(environ=env, **BASE)


def test_none_means_not_given() -> None:
    """As GateOptions says: a None keyword leaves the variable, or the default, in force."""
    env = {"SAML_GATE_CLOCK_SKEW": "30", "SAML_GATE_COOKIE_SECURE": "true"}
    s = GateSettings.load(environ=env, clock_skew=None, cookie_secure=None, **BASE)
    assert s.clock_skew == 30 and s.cookie_secure is True
    assert GateSettings.load(environ={}, clock_skew=None, **BASE).clock_skew == 90


def test_check_goes_on_past_a_malformed_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from saml_gate.runtime.selfcheck import run_checks

    for name in [n for n in os.environ if n.startswith("SAML_GATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SAML_GATE_COOKIE_SECURE", "maybe")
    report = run_checks({**BASE, "state_dir": str(tmp_path), "verify_isolation": "thread"})
    assert report.problems == 1
    assert any("SAML_GATE_COOKIE_SECURE='maybe'" in line for line in report.lines)
    assert any("go on with stand-ins" in line for line in report.lines)
    assert any("SP key pair" in line or "sp_key" in line for line in report.lines), report.lines


def test_one_value_is_read_the_same_way() -> None:
    assert value_of(GateSettings, "store_timeout", environ={}) == 0.5
    assert value_of(GateSettings, "store_timeout", environ={"SAML_GATE_STORE_TIMEOUT": "2"}) == 2
    assert value_of(GateSettings, "store_timeout", 3.0, environ={"SAML_GATE_STORE_TIMEOUT": "2"})
    with pytest.raises(ConfigError, match=r"between 0\.05 and 30 seconds"):
        value_of(GateSettings, "store_timeout", environ={"SAML_GATE_STORE_TIMEOUT": "100"})
    with pytest.raises(ConfigError, match="is not a number"):
        value_of(GateSettings, "store_timeout", environ={"SAML_GATE_STORE_TIMEOUT": "x"})


def test_every_settings_class_is_loaded_the_same_way() -> None:
    proxy = ProxySettings.load({"SAML_GATE_UPSTREAM": "http://127.0.0.1:3000/"})
    assert proxy.upstream == "http://127.0.0.1:3000" and proxy.upstream_timeout == 300
    cli = CliSettings.load({"SAML_GATE_PORT": "9000", "SAML_GATE_NGROK": "yes"}, workers=2)
    assert (cli.port, cli.ngrok, cli.workers, cli.host) == (9000, True, 2, "127.0.0.1")
    with pytest.raises(ConfigErrors) as caught:
        CliSettings.load({"SAML_GATE_PORT": "0"}, workers=0)
    assert sorted(p.setting for p in caught.value.problems) == ["port", "workers"]


def test_names_variables_and_flags_are_distinct_across_every_settings_class() -> None:
    found = every_declaration()
    names = [d.name for d in found]
    variables = [d.env_name for d in found if d.env_name]
    flags = [flag for d in found for flag in d.flags]
    for listed in (names, variables, flags):
        assert len(listed) == len(set(listed))


def test_every_setting_read_from_text_has_its_flag() -> None:
    """The flags are the settings with dashes (a shorter form may come first); only Python
    objects have none, and they are the keyword-only ones."""
    for d in every_declaration():
        if d.kind.from_text is None:
            assert d.flags == () and d.env_name is None, d.name
        else:
            assert d.flags[-1] == "--" + d.name.replace("_", "-"), d.name
            assert d.env_name == "SAML_GATE_" + d.name.upper()
    for name in ("dev_idp", "trusted_proxies", "jwt_keys", "store_prefix", "metrics_path",
                 "cookie_secure", "login_timeout", "user_header", "upstream_timeout"):  # fmt: skip
        assert any(d.name == name and d.flags for d in every_declaration()), name


def test_every_group_has_a_title_and_the_long_tail_is_advanced() -> None:
    groups = {d.group for d in every_declaration()}
    assert all(group.name and group.title for group in groups)
    advanced = {d.name for d in every_declaration() if d.group.advanced}
    assert {"max_xml_depth", "max_response_bytes", "metadata_timeout", "verify_isolation"} <= (
        advanced
    )
    assert not advanced & {"base_url", "secret_key", "idp_metadata", "access_rules", "store"}


def test_flags_parse_to_the_settings_they_declare() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, [GateSettings])
    flags = {f: a.dest for a in parser._actions for f in a.option_strings if a.dest != "help"}
    assert {flags[f] for f in ("--rule", "--access-rules")} == {"access_rules"}
    assert {flags[f] for f in ("--allowed-host", "--allowed-hosts")} == {"allowed_hosts"}
    assert flags["--no-idp-logout"] == "idp_logout"
    assert set(flags.values()) == {d.name for d in declarations(GateSettings) if d.flags}
    args = parser.parse_args(
        ["--authorized-groups", "a, b", "--clock-skew", "30", "--rule", "/a/ public", "--debug",
         "--no-idp-logout", "--jwt-keys", "k1.pem", "--jwt-keys", "k2.pem"]
    )  # fmt: skip
    assert flag_values(args, GateSettings) == {
        "authorized_groups": ("a", "b"),
        "clock_skew": 30.0,
        "access_rules": ["/a/ public"],
        "debug": True,
        "idp_logout": False,
        "jwt_keys": ("k1.pem", "k2.pem"),
    }


def test_flag_help_shows_the_default_and_the_range() -> None:
    clock_skew = next(d for d in declarations(GateSettings) if d.name == "clock_skew")
    assert flag_help(clock_skew) == (
        "seconds of tolerance on every time check (default: 90; between 0 and 600 seconds)"
    )


@pytest.mark.parametrize("name", ["on_event", "on_error", "metrics_registry"])
def test_keyword_only_settings_are_documented_as_such(name: str) -> None:
    assert f"| `{name}` | — | (keyword only) |" in markdown_tables()


def test_the_keyword_options_are_generated_from_the_declarations() -> None:
    """config/options.py is what the generator writes: after changing a declaration, run
    ``python -m saml_gate.config.generate``."""
    with open(options_module.__file__) as module:
        assert module.read() == options_text()


def test_each_keyword_option_is_typed_as_its_declaration_says() -> None:
    gate = {d.name: d for d in declarations(GateSettings)}
    proxy = {d.name: d for d in declarations(ProxySettings) if d.name != "upstream"}
    assert GateOptions.__annotations__.keys() == gate.keys()
    assert ProxyOptions.__annotations__.keys() == gate.keys() | proxy.keys()
    for name, annotation in ProxyOptions.__annotations__.items():
        assert isinstance(annotation, typing.ForwardRef), name
        assert annotation.__forward_arg__ == keyword_type({**gate, **proxy}[name]), name
    assert keyword_type(gate["base_url"]) == "str | None"
    assert keyword_type(gate["store"]) == "str | Store | Redis | None"
    assert keyword_type(gate["public_paths"]) == "Strings | None"
    assert not GateOptions.__required_keys__ and not ProxyOptions.__required_keys__


def test_a_field_without_a_declaration_is_refused() -> None:
    from dataclasses import dataclass

    @dataclass
    class Plain:
        value: Any = None

    with pytest.raises(TypeError, match="declaration"):
        declarations(Plain)
