"""A bad configuration stops the server, with the gate's message naming the setting.

Tried as a new user would, with the README's own code and commands: ``app.add_middleware(
SamlGate, ...)`` in a FastAPI app (and ``SamlGate(app, ...)`` around any ASGI app) served by
``uvicorn app:app``, with a 31-character secret, a typo in the metadata path and an unreachable
metadata URL. Under lifespan ``auto`` (uvicorn's default) and ``on`` the server must exit, saying
which setting is wrong; with ``--lifespan off`` it serves every request the gate's own
``misconfigured`` page (the setting named to loopback clients only), never a traceback.

And building a gate does no I/O: the metadata is not read, no key file is written, until the
start-up runs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.support import idp_metadata, make_app, started

GOOD_SECRET = "startup-test-secret-0123456789-abcdef"

#: The README's "Protect your app" for FastAPI, the settings read from the environment.
FASTAPI_APP = textwrap.dedent(
    """
    import os

    from fastapi import FastAPI

    from saml_gate import SamlGate

    app = FastAPI()


    @app.get("/")
    def home() -> dict[str, str]:
        return {"hello": "world"}


    app.add_middleware(
        SamlGate,
        idp_metadata=os.environ["IDP_METADATA"],  # URL, file or XML
        base_url="http://127.0.0.1:8000",
        secret_key=os.environ["SECRET"],
    )
    """
)
#: The README's "Any ASGI app": the gate built at import.
WRAPPED_APP = textwrap.dedent(
    """
    import os

    from starlette.applications import Starlette

    from saml_gate import SamlGate

    application = SamlGate(
        Starlette(),
        idp_metadata=os.environ["IDP_METADATA"],
        base_url="http://127.0.0.1:8000",
        secret_key=os.environ["SECRET"],
    )
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path, idp_keys: KeyPair) -> Path:
    """A directory with the two apps and good metadata (okta-metadata.xml)."""
    (tmp_path / "app.py").write_text(FASTAPI_APP)
    (tmp_path / "asgi.py").write_text(WRAPPED_APP)
    (tmp_path / "okta-metadata.xml").write_text(idp_metadata(idp_keys))
    return tmp_path


def env_for(project: Path, **values: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(project),
        "SAML_GATE_STATE_DIR": str(project / "state"),
        "SAML_GATE_VERIFY_ISOLATION": "thread",
        "IDP_METADATA": str(project / "okta-metadata.xml"),
        "SECRET": GOOD_SECRET,
        **values,
    }


def uvicorn(
    project: Path, target: str, *options: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``uvicorn target`` run to its end (a server that cannot start exits)."""
    return subprocess.run(
        [sys.executable, "-m", "uvicorn", target, "--port", str(free_port()), *options],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BAD_SETTINGS = {
    "a 31-character secret": ({"SECRET": "s" * 31}, "'secret_key'"),
    "a typo in the metadata path": ({"IDP_METADATA": "okta-metdata.xml"}, "'idp_metadata'"),
    "an unreachable metadata URL": (
        {"IDP_METADATA": "http://127.0.0.1:{closed}/app/exk1/sso/saml/metadata"},
        "'idp_metadata'",
    ),
}


#: (app, what is wrong): SamlGate(...) built at import raises on a bad secret there (the next
#: test); add_middleware's gate is built during the first lifespan call, and its start-up work
#: runs in the lifespan startup either way.
CASES = [("app:app", bad) for bad in sorted(BAD_SETTINGS)] + [
    ("asgi:application", bad) for bad in sorted(BAD_SETTINGS) if "secret" not in bad
]


@pytest.mark.parametrize("lifespan", ["auto", "on"])
@pytest.mark.parametrize(("target", "bad"), CASES)
def test_a_bad_setting_stops_uvicorn_with_the_setting_named(
    project: Path, lifespan: str, bad: str, target: str
) -> None:
    values, setting = BAD_SETTINGS[bad]
    closed = free_port()  # nothing listens there
    env = env_for(project, **{k: v.format(closed=closed) for k, v in values.items()})
    result = uvicorn(project, target, "--lifespan", lifespan, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Application startup failed. Exiting." in output, output
    assert f"saml-gate setting {setting}" in output, output
    assert "appears unsupported" not in output and "Traceback" not in output, output


def test_a_gate_built_at_import_with_a_bad_secret_stops_the_import(project: Path) -> None:
    """``SamlGate(app, ...)`` checks its settings when built: uvicorn cannot load the app."""
    result = uvicorn(project, "asgi:application", env=env_for(project, SECRET="s" * 31))
    assert result.returncode != 0
    assert "saml-gate setting 'secret_key'" in result.stderr, result.stderr


Serve = Callable[..., str]


@pytest.fixture
def serving_without_lifespan(project: Path) -> Iterator[Serve]:
    """``serve(target, **environment)``: ``uvicorn target --lifespan off``, its base URL."""
    processes: list[subprocess.Popen[str]] = []

    def serve(target: str, **values: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--lifespan", "off"],
            cwd=project,
            env=env_for(project, **values),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            try:
                httpx.get(base + "/", timeout=2)
                return base
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("uvicorn did not start")

    yield serve
    for process in processes:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    ("target", "values", "setting"),
    [
        ("app:app", {"SECRET": "s" * 31}, "secret_key"),  # the gate could not be built
        ("app:app", {"IDP_METADATA": "okta-metdata.xml"}, "idp_metadata"),  # nor started
        ("asgi:application", {"IDP_METADATA": "okta-metdata.xml"}, "idp_metadata"),
    ],
)
def test_without_lifespan_every_request_gets_the_gate_s_page(
    serving_without_lifespan: Serve, target: str, values: dict[str, str], setting: str
) -> None:
    base = serving_without_lifespan(target, **values)
    with httpx.Client(base_url=base, trust_env=False) as client:
        for path in ("/", "/saml/metadata", "/saml/health"):
            page = client.get(path, headers={"accept": "text/html"})
            assert page.status_code == 503
            assert "misconfigured" in page.text and f"saml-gate setting &#x27;{setting}&#x27;" in (
                page.text
            ), page.text
        api = client.get("/", headers={"accept": "application/json"})
        assert api.status_code == 503 and api.json()["error"] == "misconfigured"
        assert f"'{setting}'" in api.json()["detail"]
        # the setting is named to loopback clients only (a tunnel reports the internet client)
        remote = client.get(
            "/", headers={"accept": "application/json", "x-forwarded-for": "203.0.113.9"}
        )
        assert remote.status_code == 503 and remote.json()["error"] == "misconfigured"
        assert setting not in remote.text


def test_building_a_gate_does_no_io(tmp_path: Path, idp_keys: KeyPair) -> None:
    """No metadata read, no key written, no log handler installed until start-up runs."""
    metadata = tmp_path / "okta-metadata.xml"
    state = tmp_path / "state"
    options = {
        "idp_metadata": str(metadata),  # not there yet: building does not read it
        "base_url": "http://127.0.0.1:8000",
        "secret_key": GOOD_SECRET,
        "state_dir": str(state),
        "verify_isolation": "thread",
    }
    gate = SamlGate(make_app(), **options)
    assert not state.exists()  # no SP key pair, no JWT key generated
    metadata.write_text(idp_metadata(idp_keys))
    started(gate)
    assert (state / "sp.key.pem").exists() and (state / "jwt.key.pem").exists()
    assert gate.core.saml.idp.signing_certs == (idp_keys.cert_pem,)
