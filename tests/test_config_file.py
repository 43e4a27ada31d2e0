"""``saml-gate.toml``: every setting by its declared name and ``[[rules]]`` tables; keyword and
flag > environment > file > default; every problem at once, each naming the file, the line and
the setting; ``--config`` (or ``SAML_GATE_CONFIG_FILE``) for every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from saml_gate import Rule, SamlGate
from saml_gate.cli import COMMANDS, build_parser
from saml_gate.config.settings import ConfigErrors, GateSettings
from saml_gate.errors import ConfigError
from tests.support import SECRET, make_app

BASE = {"dev_idp": True, "secret_key": SECRET}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "saml-gate.toml"
    path.write_text(text)
    return str(path)


def test_settings_and_rules_from_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
base_url = "http://127.0.0.1:8000"
authorized_groups = ["staff"]
public_paths = ["/static/"]
maximum_duration = 7200
cookie_secure = false

[[rules]]
path = "/admin/"
groups = ["admins"]
methods = ["get", "POST"]

[[rules]]
path = "re:/reports/\\\\d+"
attributes = { department = ["finance", "legal"] }

[[rules]]
path = "/vault/"
max_authn_age = 600
authn_contexts = ["urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"]

[[rules]]
path = "/health"
public = true

[[rules]]
host = "grafana.acme.example"
path = "/api/"
accept = ["session", "token"]
groups = ["deployers"]

[[rules]]
host = "grafana.acme.example"
path = "/"
emails = ["*@acme.example"]
audience = "urn:grafana"
""",
    )
    s = GateSettings.load(environ={}, config_file=path, **BASE)
    assert s.base_url == "http://127.0.0.1:8000" and s.config_file == path
    assert s.authorized_groups == ("staff",) and s.public_paths == ("/static/",)
    assert s.maximum_duration == 7200.0 and s.cookie_secure is False
    assert s.access_rules == (
        Rule("/admin/", groups=["admins"], methods=["GET", "POST"]),
        Rule(re.compile(r"/reports/\d+"), attributes={"department": ["finance", "legal"]}),
        Rule(
            "/vault/",
            max_authn_age=600,
            authn_contexts=["urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"],
        ),
        Rule("/health", public=True),
        Rule(
            "/api/", host="grafana.acme.example", accept=["session", "token"], groups=["deployers"]
        ),
        Rule("/", host="grafana.acme.example", emails=["*@acme.example"], audience="urn:grafana"),
    )


def test_text_rules_and_values_are_read_verbatim(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'base_url = "http://127.0.0.1:8000"\n'
        'access_rules = ["/admin/ groups=Admins ", "/static/ public"]\n'
        'authorized_groups = [" Staff"]\n',
    )
    s = GateSettings.load(environ={}, config_file=path, **BASE)
    assert s.access_rules == (Rule("/admin/", groups=["Admins"]), Rule("/static/", public=True))
    assert s.authorized_groups == (" Staff",)  # a group is never trimmed nor folded


def test_keyword_wins_over_environment_over_file_over_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'base_url = "http://127.0.0.1:8000"\nmaximum_duration = 7000\n'
        "inactivity_timeout = 1000\nlogin_timeout = 100\n",
    )
    env = {"SAML_GATE_INACTIVITY_TIMEOUT": "2000", "SAML_GATE_MAXIMUM_DURATION": "7100"}
    s = GateSettings.load(environ=env, config_file=path, maximum_duration=7200, **BASE)
    assert s.maximum_duration == 7200.0  # keyword
    assert s.inactivity_timeout == 2000.0  # environment
    assert s.login_timeout == 100.0  # file
    assert s.clock_skew == 90.0  # default


def test_the_file_from_its_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'base_url = "http://127.0.0.1:8000"\n')
    s = GateSettings.load(environ={"SAML_GATE_CONFIG_FILE": path}, **BASE)
    assert s.base_url == "http://127.0.0.1:8000" and s.config_file == path


def test_every_problem_at_once_with_file_line_and_setting(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
base_url = "http://127.0.0.1:8000"
maximum_durations = 60
login_timeout = 5
on_event = "print"

[[rules]]
path = "/admin/"
groups = ["admins"]

[[rules]]
path = "admin"
colour = "red"

[[rules]]
groups = ["x"]

[[rules]]
path = "/ops/"
methods = ["NOT A METHOD"]

[extra]
a = 1
""",
    )
    with pytest.raises(ConfigErrors) as caught:
        GateSettings.load(environ={}, config_file=path, **BASE)
    lines = sorted(str(problem) for problem in caught.value.problems)
    assert lines == sorted(
        [
            f"{path}, line 2: saml-gate setting 'maximum_durations': unknown setting",
            f"{path}, line 4: saml-gate setting 'on_event': is given in Python only (a keyword)",
            f"{path}, line 12: saml-gate setting 'access_rules': [[rules]]: unknown key 'colour'"
            " (known: accept, attributes, audience, authn_contexts, emails, groups, host,"
            " max_authn_age, methods, path, public)",
            f"{path}, line 14: saml-gate setting 'access_rules': [[rules]]: a rule needs a path",
            f"{path}, line 19: saml-gate setting 'access_rules': 'NOT A METHOD' is not an HTTP"
            " method",
            f"{path}, line 21: saml-gate setting 'extra': unknown table; only [[rules]]",
            f"{path}, line 3: saml-gate setting 'login_timeout': must be between 30 and 3600"
            " seconds, not 5",
        ]
    )


def test_a_bad_rule_path_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\npath = "admin"\n')
    with pytest.raises(ConfigError) as caught:
        GateSettings.load(environ={}, config_file=path, base_url="http://127.0.0.1:8000", **BASE)
    assert str(caught.value) == (
        f"{path}, line 2: saml-gate setting 'access_rules': the path 'admin' must start with '/'"
    )


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'base_url = "http://127.0.0.1:8000"\nthis is not toml\n')
    with pytest.raises(ConfigError, match=r", line 2: saml-gate setting 'config_file': not TOML"):
        GateSettings.load(environ={}, config_file=path, **BASE)
    with pytest.raises(ConfigError, match=r"'config_file': cannot read it"):
        GateSettings.load(environ={}, config_file=str(tmp_path / "none.toml"), **BASE)


def test_a_keyword_rule_list_wins_over_the_file_rules(tmp_path: Path) -> None:
    path = write(tmp_path, 'base_url = "http://127.0.0.1:8000"\n[[rules]]\npath = "/a/"\n')
    s = GateSettings.load(environ={}, config_file=path, access_rules=["/b/ public"], **BASE)
    assert s.access_rules == (Rule("/b/", public=True),)


@pytest.mark.anyio
async def test_the_gate_decides_on_the_file_through_the_endpoint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'base_url = "http://testserver"\npublic_paths = ["/open/"]\n'
        '[[rules]]\npath = "/closed/"\nmethods = ["POST"]\n',
    )
    gate = SamlGate(make_app(), config_file=path, dev_idp=False, **_idp(tmp_path))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://testserver"
    ) as client:
        json = {"accept": "application/json"}
        assert (await client.get("/open/x", headers=json)).status_code == 404  # the app's
        assert (await client.get("/closed/x", headers=json)).status_code == 401


def _idp(tmp_path: Path) -> dict[str, object]:
    from saml_gate.testing.idp import SamlTestIdp

    options = dict(SamlTestIdp(state_dir=str(tmp_path)).gate_options())
    options.pop("base_url")
    return options


def test_every_command_takes_config() -> None:
    parser = build_parser()
    for name in COMMANDS:
        extra = {
            "run": ["x:app"],
            "sessions": ["list"],
            "tokens": ["list"],
            "policy": ["explain", "GET", "http://a/"],
        }.get(name, [])
        args = parser.parse_args([name, *extra, "--config", "/etc/saml-gate.toml"])
        assert args.config_file == "/etc/saml-gate.toml", name


def test_the_cli_names_the_file_line_and_setting(tmp_path: Path) -> None:
    path = write(tmp_path, 'base_url = "http://127.0.0.1:8000"\nclock_skew = 9999\n')
    done = subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", "metadata", "--config", path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"{path}, line 2: saml-gate setting 'clock_skew': must be between 0 and 600" in (
        done.stderr
    )


def test_the_proxy_reads_the_file_and_reloads_it_with_its_keywords(tmp_path: Path) -> None:
    from saml_gate.proxy import build_proxy_app

    path = write(
        tmp_path,
        'base_url = "http://testserver"\nupstream = "http://127.0.0.1:9"\n'
        'public_paths = ["/open/"]\nconnect_timeout = 3\n',
    )
    gate = build_proxy_app(config_file=path, preserve_host=True, **_idp(tmp_path))
    assert gate.settings.public_paths == ("/open/",)
    proxy = gate.app.settings  # type: ignore[attr-defined]
    assert (proxy.upstream, proxy.connect_timeout, proxy.preserve_host) == (
        "http://127.0.0.1:9",
        3.0,
        True,
    )
    reload = gate.core.policy_reload
    assert reload is not None
    Path(path).write_text(Path(path).read_text().replace('"/open/"', '"/open/", "/more/"'))
    assert reload.reload().applied
    assert gate.parts.gatekeeper._policy.current.rule_for("/more/x", "GET").public


def test_the_readme_example_file_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [example] = re.findall(r"```toml\n(.*?)\n```", readme, re.S)
    path = write(tmp_path, example)
    s = GateSettings.load(environ={}, config_file=path, secret_key=SECRET, idp_metadata="x")
    assert [str(rule) for rule in s.access_rules] == [
        "/admin/",
        r"re:/reports/\d+",
        "/vault/",
        "/api/",
        "grafana.acme.example/",
    ]
    assert s.access_rules[1].methods == ("GET", "HEAD")
    assert s.access_rules[3].accept == ("session", "token")
