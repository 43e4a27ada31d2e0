"""The README's walkthrough, end to end, with SimpleSAMLphp standing in for Okta.

Each step as the README gives it, through the real commands: ``saml-gate keygen --out-dir
~/.saml-gate``, the exports, ``saml-gate setup --base-url ...`` whose printed values (Single
sign-on URL, Audience URI, Single Logout URL, the SP certificate) are what the IdP is configured
with, the IdP's metadata URL as ``--idp-metadata``, ``saml-gate check``, ``saml-gate run``, then
a sign-in and a sign-out in a browser (httpx). Only the tunnel is left out: the public URL is a
loopback one. SimpleSAMLphp, given the SP certificate as the walkthrough has the admin upload it,
demands signed AuthnRequests (as Okta does with "Signed Requests").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.client import HTML_ACCEPT, start_at_gate
from tests.interop.simplesamlphp import SimpleSamlPhp
from tests.interop.test_simplesamlphp import assert_shows, post_to_acs, sign_in_at_idp
from tests.test_cli import Server, cli_env, free_port, saml_gate
from tests.test_logout_interop import follow

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

#: The app behind the gate (the README's ``myapp:app``): an app without a gate of its own.
APP = "tests.interop.gate_server:protected_app"


def sheet_values(text: str) -> dict[str, str]:
    """The rows of ``saml-gate setup``'s sheet: field → value."""
    rows = re.findall(r"^  (\S.*?)\s{2,}(\S.*)$", text, flags=re.MULTILINE)
    return {field.strip(): value.strip() for field, value in rows}


@pytest.fixture
def idp_holder() -> Iterator[list[SimpleSamlPhp]]:
    started: list[SimpleSamlPhp] = []
    yield started
    for idp in started:
        idp.stop()


async def test_the_readme_walkthrough_against_simplesamlphp(
    need_simplesamlphp: None, tmp_path: Path, idp_holder: list[SimpleSamlPhp]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(HOME=str(home))

    # 2. Make the SP key pair.
    made = saml_gate("keygen", "--out-dir", "~/.saml-gate", env=env)
    assert made.returncode == 0, made.stderr
    key, cert = home / ".saml-gate" / "sp.key.pem", home / ".saml-gate" / "sp.cert.pem"
    assert key.is_file() and cert.is_file() and (key.stat().st_mode & 0o777) == 0o600
    env |= {
        "SAML_GATE_SP_KEY": str(key),
        "SAML_GATE_SP_CERT": str(cert),
        "SAML_GATE_JWT_KEYS": str(home / ".saml-gate" / "jwt.key.pem"),
        "SAML_GATE_SECRET_KEY_FILE": str(home / ".saml-gate" / "secret_key"),
    }
    assert "export SAML_GATE_SP_KEY=" in made.stdout  # the line the README has you run

    # 3. Pick the public URL (here a loopback one: no tunnel).
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    # 4. Print the IdP values, and configure the IdP with exactly those.
    setup = saml_gate("setup", "--base-url", base_url, env=env)
    assert setup.returncode == 0, setup.stderr
    values = sheet_values(setup.stdout)
    acs_url = values["Assertion Consumer Service (ACS) URL"]
    entity_id = values["SP entity ID (Audience)"]
    slo_url = values["Single Logout URL"]
    assert values["Signed AuthnRequests"].startswith("Yes")  # the SP key is configured
    printed_cert = re.search(
        r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", setup.stdout, flags=re.DOTALL
    )
    assert printed_cert is not None
    uploaded = tmp_path / "uploaded-sp-cert.pem"
    uploaded.write_text(printed_cert.group(0) + "\n")
    idp = SimpleSamlPhp.start(
        tmp_path / "ssp",
        sp_entity_id=entity_id,
        sp_acs_url=acs_url,
        sp_slo_url=slo_url,
        sp_cert_file=uploaded,  # uploaded for Single Logout: now it checks AuthnRequests too
    )
    idp_holder.append(idp)

    # 5. Give the gate the IdP's metadata URL.
    env |= {"SAML_GATE_IDP_METADATA": idp.local_metadata_url}
    # 7. Run it: keygen's secret_key (SAML_GATE_SECRET_KEY_FILE) is the session secret.

    # 8. Check before telling anyone.
    check = saml_gate("check", "--base-url", base_url, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "AuthnRequests are signed" in check.stdout and "ready" in check.stdout

    server = Server("run", APP, "--factory", "--base-url", base_url, env=env, port=port)
    try:
        async with httpx.AsyncClient(timeout=30) as browser:
            # 9. Test: open the app, sign in at the IdP, land on the app.
            location = await start_at_gate(browser, base_url + "/private/report")
            assert location.startswith(idp.public_url + "saml2/idp/SSOService.php?")
            assert "Signature=" in location
            form = await sign_in_at_idp(browser, location, "alice")
            assert form.action == acs_url
            acs = await post_to_acs(browser, form)
            assert acs.status_code == 303, acs.text
            assert_shows(await browser.get(base_url + "/private/report"), "alice")

            # Sign out, here and at the IdP (Single Logout, signed with the same key).
            page = await browser.get(base_url + "/saml/logout", headers=HTML_ACCEPT)
            token = page.text.split("name=token value='")[1].split("'")[0]
            out = await browser.post(
                base_url + "/saml/logout", data={"token": token}, headers=HTML_ACCEPT
            )
            assert out.status_code == 303
            back = await follow(browser, out.headers["location"], base_url)
            answered = await browser.get(back.headers["location"], headers=HTML_ACCEPT)
            assert answered.headers["location"] == "/saml/logout?done=idp", answered.text
            after = await browser.get(base_url + "/private/report", headers=HTML_ACCEPT)
            assert after.status_code == 303  # signed out: a new sign-in starts
    finally:
        log = server.stop()
    assert "saml-gate login alice@example.com" in log
    assert not re.search(r"(SAMLRequest|SAMLResponse|Signature)=[^…]", log), log
