"""Settings: keywords and SAML_GATE_* variables are the same settings; errors name the setting."""

from __future__ import annotations

from typing import Any

import pytest

from saml_gate import ConfigError, GateSettings, SamlGate
from saml_gate.saml import xmlconst as X
from tests.support import BASE_URL, SECRET, idp_metadata, make_app, started

BASE = {"base_url": BASE_URL, "secret_key": SECRET, "dev_idp": True}


def load(environ: dict[str, str] | None = None, **kwargs: Any) -> GateSettings:
    return GateSettings.load(environ=environ or {}, **kwargs)


def test_defaults_and_derived_urls() -> None:
    s = load(**BASE)
    assert s.entity_id == "http://127.0.0.1:8000/saml/metadata"
    assert s.acs_url == "http://127.0.0.1:8000/saml/acs"
    assert s.slo_url == "http://127.0.0.1:8000/saml/slo"
    assert s.name_id_format == X.NAMEID_EMAIL
    assert s.allow_idp_initiated is False and s.allow_sha1 is False
    assert s.secret_key == (SECRET,)
    assert not s.secure_cookies


def test_environment_variables_are_the_same_settings() -> None:
    env = {
        "SAML_GATE_BASE_URL": "https://Acme.ngrok.app/",
        "SAML_GATE_SECRET_KEY": f"{SECRET},old-secret-0123456789-0123456789-x",
        "SAML_GATE_IDP_METADATA": "<md:EntityDescriptor/>",
        "SAML_GATE_AUTHORIZED_GROUPS": "admins, ops",
        "SAML_GATE_ALLOW_IDP_INITIATED": "true",
        "SAML_GATE_CLOCK_SKEW": "30",
        "SAML_GATE_PREFIX": "/sso",
    }
    s = load(env)
    assert s.base_url == "https://acme.ngrok.app"
    assert s.secret_key == (SECRET, "old-secret-0123456789-0123456789-x")
    assert s.authorized_groups == ("admins", "ops")
    assert s.allow_idp_initiated is True and s.clock_skew == 30.0
    assert s.acs_url == "https://acme.ngrok.app/sso/acs"
    assert s.secure_cookies
    # Keywords win over the environment.
    assert load(env, clock_skew=5).clock_skew == 5


@pytest.mark.parametrize(
    "options,setting",
    [
        ({"base_url": None}, "base_url"),
        ({"base_url": "acme.ngrok.app"}, "base_url"),
        ({"base_url": "https://acme.ngrok.app/app?x=1"}, "base_url"),
        ({"base_url": "https://acme.ngrok.app/a/../b"}, "base_url"),
        ({"base_url": "https://acme.ngrok.app/a;b"}, "base_url"),
        ({"secret_key": "short"}, "secret_key"),
        ({"secret_key": None}, "secret_key"),
        ({"dev_idp": False}, "idp_metadata"),
        ({"idp_metadata": "<x/>"}, "dev_idp"),
        ({"base_url": "https://acme.ngrok.app"}, "dev_idp"),
        ({"prefix": "saml/"}, "prefix"),
        ({"cookie_samesite": "none"}, "cookie_samesite"),
        ({"cookie_samesite": "loose"}, "cookie_samesite"),
        ({"clock_skew": 3600}, "clock_skew"),
        ({"inactivity_timeout": 10**6}, "inactivity_timeout"),
        ({"name_id_format": "email"}, "name_id_format"),
        ({"signature_algorithms": [X.RSA_SHA1]}, "signature_algorithms"),
        ({"public_paths": ["static/"]}, "public_paths"),
        ({"max_response_bytes": 10}, "max_response_bytes"),
        ({"unknown_option": 1}, "unknown_option"),
    ],
)
def test_bad_settings_name_the_setting(options: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(**{**BASE, **options})
    assert error.value.setting == setting
    assert setting in str(error.value)


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SAML_GATE_CLOCK_SKEW"):
        load({"SAML_GATE_CLOCK_SKEW": "soon"}, **BASE)
    with pytest.raises(ConfigError, match="allow_idp_initiated"):
        load({"SAML_GATE_ALLOW_IDP_INITIATED": "maybe"}, **BASE)


def test_gate_construction_fails_on_bad_metadata(tmp_path: Any, sp_keys: Any) -> None:
    common = {"base_url": BASE_URL, "secret_key": SECRET, "state_dir": str(tmp_path)}
    for metadata in ("/no/such/file.xml", "<not-metadata/>", "garbage <"):
        gate = SamlGate(make_app(), idp_metadata=metadata, **common)  # built: read at start
        with pytest.raises(ConfigError) as error:
            started(gate)
        assert error.value.setting == "idp_metadata"


def test_metadata_from_a_file_and_mismatched_keys(
    tmp_path: Any, idp_keys: Any, sp_keys: Any, attacker_keys: Any
) -> None:
    path = tmp_path / "okta.xml"
    path.write_text(idp_metadata(idp_keys))
    common = {"base_url": BASE_URL, "secret_key": SECRET, "state_dir": str(tmp_path)}
    gate = started(SamlGate(make_app(), idp_metadata=str(path), **common))
    assert gate.core.saml.idp.entity_id == "http://www.okta.com/exkTESTIDP0000000001"
    mismatched = SamlGate(
        make_app(),
        idp_metadata=str(path),
        sp_key=sp_keys.key_pem.decode(),
        sp_cert=attacker_keys.cert_pem.decode(),
        **common,
    )
    with pytest.raises(ConfigError) as error:
        started(mismatched)
    assert error.value.setting == "sp_cert"
    half = SamlGate(make_app(), idp_metadata=str(path), sp_key=sp_keys.key_pem.decode(), **common)
    with pytest.raises(ConfigError) as error:
        started(half)
    assert error.value.setting == "sp_cert"


def test_development_sp_keys_are_generated_once(
    tmp_path: Any, idp_keys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    common = {
        "base_url": BASE_URL,
        "secret_key": SECRET,
        "state_dir": str(tmp_path / "state"),
        "idp_metadata": idp_metadata(idp_keys),
    }
    first = SamlGate(make_app(), **common)
    assert "generated a development SP key pair" not in caplog.text  # not when built
    started(first)
    assert "generated a development SP key pair" in caplog.text
    second = started(SamlGate(make_app(), **common))
    assert first.core.saml.keys.cert_pem == second.core.saml.keys.cert_pem
    assert oct((tmp_path / "state" / "sp.key.pem").stat().st_mode & 0o777) == "0o600"


def test_settings_object_or_keywords_not_both() -> None:
    with pytest.raises(TypeError):
        SamlGate(make_app(), load(**BASE), base_url=BASE_URL)


def test_plain_http_metadata_url_is_refused_unless_loopback() -> None:
    common = {"base_url": BASE_URL, "secret_key": SECRET}
    with pytest.raises(ConfigError) as error:
        load(idp_metadata="http://acme.okta.com/app/exk1/sso/saml/metadata", **common)
    assert error.value.setting == "idp_metadata" and "https" in str(error.value)
    assert load(idp_metadata="https://acme.okta.com/app/exk1/sso/saml/metadata", **common)
    assert load(idp_metadata="http://127.0.0.1:9000/metadata", **common)
