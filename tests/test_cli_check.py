"""`saml-gate check` reports every problem at once, agrees with the gate on expired IdP
certificates, and fails where an SP key pair from `state_dir` must be known by the IdP; one
per-user `state_dir` shared by `keygen` and the gate."""

from __future__ import annotations

from pathlib import Path

from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.support import idp_metadata
from tests.test_cli import cli_env, saml_gate
from tests.test_cli import config as config
from tests.test_cli import keys as keys

BASE = ("check", "--base-url", "https://acme.ngrok.app")


def fails(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("FAIL")]


def test_check_reports_every_problem(config: dict[str, str], tmp_path: Path) -> None:
    env = cli_env(**{**config, "SAML_GATE_IDP_METADATA": str(tmp_path / "missing.xml")})
    env["SAML_GATE_INACTIVITY_TIMEOUT"] = "soon"
    result = saml_gate("check", "--base-url", "acme.ngrok.app", "--clock-skew", "9999", env=env)
    assert result.returncode == 1
    problems = fails(result.stdout)
    assert len(problems) == 4, result.stdout
    assert any(p.startswith("FAIL  --base-url: ") for p in problems)
    assert any(p.startswith("FAIL  --clock-skew: must be between 0 and 600") for p in problems)
    assert any("SAML_GATE_INACTIVITY_TIMEOUT='soon'" in p for p in problems)
    assert "idp_metadata" in problems[-1] and "missing.xml" in problems[-1]
    assert "4 problem(s)" in result.stdout
    assert "ok    SP certificate" in result.stdout  # checked although the IdP's is not


def test_check_goes_on_to_the_keys_after_a_settings_problem(
    config: dict[str, str],
    tmp_path: Path,
) -> None:
    env = cli_env(**{**config, "SAML_GATE_SP_CERT": ""})  # a key without its certificate
    result = saml_gate("check", "--base-url", "acme.ngrok.app", env=env)
    problems = fails(result.stdout)
    assert len(problems) == 2 and "sp_key and sp_cert must be given together" in problems[1]


def test_an_expired_idp_certificate_warns_as_the_gate_does(
    config: dict[str, str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "expired.xml"
    path.write_text(idp_metadata(generate_keypair("expired IdP", days=-1)))
    env = cli_env(**{**config, "SAML_GATE_IDP_METADATA": str(path)})
    result = saml_gate(*BASE, env=env)
    assert result.returncode == 0, result.stdout
    line = next(line for line in result.stdout.splitlines() if "IdP signing certificate" in line)
    assert line.strip().startswith("WARN") and "expired" in line
    assert "the gate still accepts its signatures" in line and "metadata" in line
    assert "ready (1 warning(s))" in result.stdout


def _signing_idp(tmp_path: Path, keys: KeyPair) -> str:
    path = tmp_path / "wants-signed.xml"
    xml = idp_metadata(keys).replace(
        'WantAuthnRequestsSigned="false"', 'WantAuthnRequestsSigned="true"'
    )
    assert 'WantAuthnRequestsSigned="true"' in xml
    path.write_text(xml)
    return str(path)


def _unconfigured(config: dict[str, str], **changes: str) -> dict[str, str]:
    unset = ("SAML_GATE_SP_KEY", "SAML_GATE_SP_CERT")
    return cli_env(**{k: v for k, v in {**config, **changes}.items() if k not in unset})


def test_a_key_pair_from_state_dir_fails_where_requests_are_signed(
    config: dict[str, str],
    keys: KeyPair,
    tmp_path: Path,
) -> None:
    env = _unconfigured(config, SAML_GATE_IDP_METADATA=_signing_idp(tmp_path, keys))
    first = saml_gate(*BASE, env=env)
    assert first.returncode == 1
    (problem,) = fails(first.stdout)
    assert "generated just now" in problem and "no IdP can know its certificate" in problem
    assert "WantAuthnRequestsSigned" in problem and "saml-gate keygen" in problem
    again = saml_gate(*BASE, env=env)  # the pair now exists: the IdP may know it, or not
    (problem,) = fails(again.stdout)
    assert "the one found in" in problem and "sp_key and sp_cert are not set" in problem
    assert "--sp-key and --sp-cert" in problem


def test_sign_authn_requests_with_a_pair_from_state_dir_fails(
    config: dict[str, str],
) -> None:
    result = saml_gate(*BASE, "--sign-authn-requests", env=_unconfigured(config))
    assert result.returncode == 1
    (problem,) = fails(result.stdout)
    assert "sign_authn_requests is on" in problem


def test_a_configured_key_pair_passes_where_requests_are_signed(
    config: dict[str, str],
    keys: KeyPair,
    tmp_path: Path,
) -> None:
    env = cli_env(**{**config, "SAML_GATE_IDP_METADATA": _signing_idp(tmp_path, keys)})
    result = saml_gate(*BASE, env=env)
    assert result.returncode == 0 and fails(result.stdout) == [], result.stdout


def test_unsigned_requests_with_a_pair_from_state_dir_only_warn(
    config: dict[str, str],
) -> None:
    result = saml_gate(*BASE, env=_unconfigured(config))
    assert result.returncode == 0, result.stdout
    assert "WARN  the SP key pair was generated just now" in result.stdout


def test_keygen_and_the_gate_share_one_per_user_state_dir(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = cli_env(HOME=str(home))
    made = saml_gate("keygen", env=env, cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    assert str(home / ".saml-gate" / "sp.key.pem") in made.stdout
    cert = (home / ".saml-gate" / "sp.cert.pem").read_text().strip()
    setup = saml_gate(
        "setup", "--base-url", "https://acme.ngrok.app", env=env, cwd=elsewhere
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    assert cert in setup.stdout  # the same pair, not a new one in the current directory
    assert not (elsewhere / ".saml-gate").exists()
