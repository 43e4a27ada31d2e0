"""Install-level guarantees: xmlsec and lxml agree, and nothing needs the xmlsec1 program."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_lxml_and_xmlsec_share_libxml2() -> None:
    import lxml.etree
    import xmlsec

    assert xmlsec.get_libxml_version()[:2] == lxml.etree.LIBXML_VERSION[:2]


GATE_WITHOUT_XMLSEC1 = textwrap.dedent(
    """
    import asyncio, base64, html, re, shutil, subprocess, sys, tempfile

    assert shutil.which("xmlsec1") is None, "xmlsec1 must not be on PATH for this check"

    real_popen = subprocess.Popen

    def only_the_gate_worker(command, *args, **kwargs):
        # the gate's own verification worker (this Python, no shell) is the one process allowed;
        # it inherits the empty PATH, so it cannot run xmlsec1 either
        if command[:2] == [sys.executable, "-c"] and "saml_gate.runtime.workers" in command[2]:
            return real_popen(command, *args, **kwargs)
        raise AssertionError(f"a subprocess was started: {command!r}")

    subprocess.Popen = only_the_gate_worker  # running xmlsec1 (or anything else) fails loudly

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from saml_gate import SamlGate

    async def page(request):
        return PlainTextResponse("hello " + request.user.email)

    async def main():
        gate = SamlGate(Starlette(routes=[Route("/", page)]), base_url="http://127.0.0.1:8000",
                        dev_idp=True, secret_key="s" * 40, state_dir=tempfile.mkdtemp(),
                        sign_authn_requests=True)
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                     follow_redirects=False) as c:
            r = await c.get("/", headers={"accept": "text/html"})
            r = await c.get(r.headers["location"])  # the dev IdP's login page
            form = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', r.text))
            keep = ("in_response_to", "relay_state")
            data = {k: html.unescape(v) for k, v in form.items() if k in keep}
            r = await c.post("/saml/devidp/sso", data={**data, "user": "0"})
            fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', r.text))
            r = await c.post("/saml/acs", data={k: html.unescape(v) for k, v in fields.items()})
            assert r.status_code == 303, r.text
            r = await c.get("/")
            assert r.text == "hello alice@example.com", r.text
        assert gate.core.workers is not None, "verified in threads: the worker did not start"
        print("OK")

    asyncio.run(main())
    """
)


def test_gate_runs_without_the_xmlsec1_program(tmp_path: Path) -> None:
    """A whole dev-IdP login (signed AuthnRequest, signed Response) with no xmlsec1 anywhere."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "PYTHONPATH")}
    env["PATH"] = str(empty_bin)  # nothing to find: not xmlsec1, not anything
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(
        [sys.executable, "-c", GATE_WITHOUT_XMLSEC1],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
