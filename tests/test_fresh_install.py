"""The README as a new user meets it, on a fresh virtual environment: its install line run as
written in a copy of the checkout (``pip install`` of the folder, not editable), a missing
extra's hint followed as printed, the walkthrough (keygen, setup, check, run, a sign-in), the
production checklist (two hosts sharing one Redis) and the wheel built from the checkout.

Only what cannot happen here is replaced, and each replacement is named where it is made: the
IdP is the test kit's (its metadata in a file), the public URL a loopback one where a server must
answer, ``/etc/saml-gate`` a folder per host, the Redis server the test one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from saml_gate import __version__
from saml_gate.testing import SamlTestIdp
from tests.conftest import TEST_REDIS_URL
from tests.test_cli import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

#: The user's app (the README's ``myapp:app``): it greets whoever the gate let in.
MYAPP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def home(request):
    return PlainTextResponse(f"hello {request.user.email}")


app = Starlette(routes=[Route("/", home)])
"""


def section(title: str) -> str:
    """The README's section under ``## {title}`` (up to the next ``## ``)."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)\n\s*```", text, re.S)]


def inline_command(text: str, start: str) -> str:
    """The first inline ``code`` of ``text`` that starts with ``start``, as written."""
    found = re.search(rf"`({re.escape(start)}[^`]*)`", text)
    assert found is not None, f"the README no longer says `{start}...`"
    return found.group(1)


@dataclass
class Machine:
    """A user's account: a home, a copy of the checkout, and a shell."""

    home: Path
    checkout: Path
    venv: Path
    extra_env: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        keep = ("PIP_", "LANG", "LC_", "SSL_CERT", "REQUESTS_CA", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
        # The pip cache of the account running the tests (a new HOME would start it empty).
        env.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
        # The one replacement in what pip does: it resolves to the project's lock, so that a new
        # release of a dependency cannot turn CI red. The install lines themselves run as written.
        env["PIP_CONSTRAINT"] = str(ROOT / "constraints.txt")
        env.update(HOME=str(self.home), PATH=f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin")
        env.update(self.extra_env)
        return env

    def sh(
        self, command: str, *, cwd: Path | None = None, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``command`` in bash, as the user types it."""
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd or self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"$ {command}\n{result.stdout}\n{result.stderr}"
        return result

    def serve(self, command: str, port: int, *, cwd: Path) -> Served:
        return Served(command, port, cwd, self.env)


class Served:
    """A server the user started in a shell (``exec``: the shell becomes the server), stopped
    by the test."""

    def __init__(self, command: str, port: int, cwd: Path, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(600):
            if self.proc.poll() is not None:
                raise AssertionError(f"$ {command}\n{self.proc.communicate()[0]}")
            try:
                httpx.get(self.url + "/saml/health", timeout=1)
                return
            except httpx.HTTPError:
                subprocess.run(["sleep", "0.1"], check=True)
        self.stop()
        raise AssertionError(f"$ {command}: no answer")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            return self.proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[0]


def copy_checkout(destination: Path) -> Path:
    """What a clone has: the tracked files (no virtual environment, no build leftovers)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, destination / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def new_machine(base: Path, name: str) -> Machine:
    home = base / name / "home"
    home.mkdir(parents=True)
    checkout = copy_checkout(home / "saml-gate")
    return Machine(home, checkout, home / ".venvs" / "saml-gate", {})


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """A fresh account where the README's install line has run, as written, in the checkout."""
    m = new_machine(tmp_path_factory.mktemp("fresh"), "laptop")
    (install,) = sh_blocks(section("Install"))[:1]
    assert "pip install" in install and "-e" not in shlex.split(install)
    m.sh(install, cwd=m.checkout)
    yield m


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> tuple[SamlTestIdp, Path]:
    """The IdP (the kit's, standing in for Okta), and its metadata saved as a file."""
    kit = SamlTestIdp()
    saved = tmp_path_factory.mktemp("idp") / "idp-metadata.xml"
    saved.write_text(kit.metadata_xml)
    return kit, saved


def test_the_install_line_installs_the_package_not_a_link_to_the_checkout(
    machine: Machine,
) -> None:
    version = machine.sh("saml-gate --version").stdout
    assert version.strip() == f"saml-gate {__version__}"
    where = machine.sh("python -c 'import saml_gate; print(saml_gate.__file__)'").stdout.strip()
    assert where.startswith(str(machine.venv)) and "site-packages" in where, where
    assert machine.sh("python -c 'import ngrok'").returncode == 0  # the extra it names


def test_a_missing_extra_names_the_command_that_installs_it(machine: Machine) -> None:
    """`--store redis://` without the redis extra: the message's command, run as printed,
    installs it."""
    command = "saml-gate check --dev-idp --base-url http://127.0.0.1:8000 --secret-key-file ~/s"
    machine.sh(f"python -c 'print(\"s\" * 40)' > ~/s && {command}")  # the memory store: fine
    failed = machine.sh(f"{command} --store {TEST_REDIS_URL}", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    hint = re.search(r"needs redis-py: (.+?)(?:$|\n)", failed.stdout + failed.stderr)
    assert hint is not None, failed.stdout + failed.stderr
    assert hint.group(1).startswith(str(machine.venv / "bin" / "python"))
    assert "saml-gate[" not in failed.stdout + failed.stderr
    machine.sh(hint.group(1))
    again = machine.sh(f"{command} --store {TEST_REDIS_URL}", check=False)
    assert "redis-py" not in again.stdout + again.stderr, again.stdout


def test_the_walkthrough_signs_a_person_in(
    machine: Machine, idp: tuple[SamlTestIdp, Path], tmp_path: Path
) -> None:
    kit, metadata = idp
    walkthrough = section("Walkthrough: an app on your laptop, behind Okta, through ngrok")
    # 2. Make the keys, and use them as keygen says.
    made = machine.sh(inline_command(walkthrough, "saml-gate keygen"))
    (export,) = [x.strip() for x in made.stdout.splitlines() if x.strip().startswith("export ")]
    variables = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    assert set(variables) == {
        "SAML_GATE_SP_KEY",
        "SAML_GATE_SP_CERT",
        "SAML_GATE_JWT_KEYS",
        "SAML_GATE_SECRET_KEY_FILE",
    }
    machine.extra_env.update(variables)
    # 4. The values for the IdP, for the public URL of step 3.
    setup = machine.sh(inline_command(walkthrough, "saml-gate setup"))
    assert "https://acme.ngrok.app/saml/acs" in setup.stdout
    assert Path(variables["SAML_GATE_SP_CERT"]).read_text().strip() in setup.stdout
    # 5. The IdP's metadata (the test IdP's, saved as a file: "a saved file works too").
    machine.extra_env["SAML_GATE_IDP_METADATA"] = str(metadata)
    # 8. Check.
    check = machine.sh(inline_command(walkthrough, "saml-gate check"))
    assert "AuthnRequests are signed" in check.stdout and "ready" in check.stdout
    # 7. Run it, the tunnel opened by hand: here the public URL is a loopback one.
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "myapp.py").write_text(MYAPP)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    run = f"exec saml-gate run myapp:app --base-url {base_url} --port {port}"
    served = machine.serve(run, port, cwd=project)
    try:
        # 9. Test: sign in, land on the app.
        kit.gate_options(base_url=base_url)
        with httpx.Client(timeout=30) as browser:
            kit.sign_in(browser, email="ann@example.com")
            page = browser.get(base_url + "/")
    finally:
        log = served.stop()
    assert page.status_code == 200 and page.text == "hello ann@example.com", page.text
    assert "saml-gate login ann@example.com" in log
    assert "development key" not in log  # the JWT key keygen made


def test_the_production_checklist_on_two_hosts(
    machine: Machine, idp: tuple[SamlTestIdp, Path], tmp_path: Path
) -> None:
    _, metadata = idp
    checklist = section("Production checklist: several hosts")
    make, per_host = sh_blocks(checklist)
    machine.sh(inline_command(section("Install"), "pip install '.[redis]'"), cwd=machine.checkout)
    workshop = tmp_path / "workshop"
    workshop.mkdir()
    machine.sh(make, cwd=workshop)
    prefix = f"saml-gate-test:{os.urandom(6).hex()}:"
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "myapp.py").write_text(MYAPP)

    def on_host(name: str, line: str, port: int) -> str:
        """A line of the checklist as this host runs it: its copy of the folder for
        /etc/saml-gate, the test Redis (and a prefix of this test's own), the test IdP, a
        loopback port, and two workers rather than four on this two-core machine."""
        folder = tmp_path / name / "saml-gate"
        if not folder.exists():
            shutil.copytree(workshop / "gate-keys", folder)
        line = line.replace("/etc/saml-gate", str(folder))
        line = line.replace(
            "redis://redis.internal:6379/0", f"{TEST_REDIS_URL} SAML_GATE_STORE_PREFIX={prefix}"
        )
        line = re.sub(r"https://acme\.okta\.com/\S+", str(metadata), line)
        line = line.replace("--host 0.0.0.0 --workers 4", f"--port {port} --workers 2")
        return line

    export, check, run = per_host.splitlines()
    hosts = []
    try:
        for name in ("web-1", "web-2"):
            port = free_port()
            script = f"{on_host(name, export, port)} && {on_host(name, check, port)}"
            checked = machine.sh(script, cwd=project, check=False)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            serve = f"{on_host(name, export, port)} && exec {on_host(name, run, port)}"
            hosts.append(machine.serve(serve, port, cwd=project))
        # web-2's check saw web-1's two workers, and agreed with them
        assert "2 other gate(s) serving from it share" in checked.stdout, checked.stdout
        # A third host whose folder was never copied: the check names what differs.
        stray = machine.sh(
            f"export SAML_GATE_STORE={TEST_REDIS_URL} SAML_GATE_STORE_PREFIX={prefix}"
            f" SAML_GATE_SECRET_KEY={'x' * 40} SAML_GATE_STATE_DIR={tmp_path / 'web-3'} && "
            + on_host("web-3", check, 0),
            cwd=project,
            check=False,
        )
    finally:
        logs = [host.stop() for host in hosts]
        _empty_redis_prefix(prefix)
    assert stray.returncode == 1
    assert stray.stdout.count("shares this store but not these values: secret_key") == 4
    assert not any("shares this store" in log for log in logs), logs


def _empty_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


#: The user's app for the README's test example: ``create_app(**options)`` adds the gate.
GATED_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from saml_gate import SamlGate
from saml_gate.policy import Rule


async def page(request):
    return PlainTextResponse("ok")


def create_app(**options):
    app = Starlette(routes=[Route("/", page), Route("/admin", page)])
    return SamlGate(app, access_rules=[Rule("/admin", groups=["admins"])], **options)
"""


def test_the_readme_test_example_runs_without_a_warning(machine: Machine, tmp_path: Path) -> None:
    """A fresh project with the testing extra: the README's example, as written, passes with
    every warning an error, and pytest reports none."""
    testing = section("Testing your app")
    machine.sh(inline_command(testing, "pip install '.[testing]'"), cwd=machine.checkout)
    project = tmp_path / "fresh-project"
    project.mkdir()
    (project / "myapp.py").write_text(GATED_APP)
    (example,) = re.findall(r"```python\n(.*?)\n```", testing, re.S)[:1]
    (project / "test_admin.py").write_text(example + "\n")
    ran = machine.sh("python -m pytest -q -W error -p no:cacheprovider", cwd=project, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout and "warning" not in ran.stdout.lower(), ran.stdout


def test_a_wheel_built_from_the_checkout_installs_elsewhere(
    machine: Machine, tmp_path: Path
) -> None:
    build, install = sh_blocks(section("Install"))[1:3]
    built = machine.sh(build, cwd=machine.checkout)
    wheel = Path(machine.checkout / built.stdout.strip().splitlines()[-1])
    assert wheel.is_file() and wheel.name == f"saml_gate-{__version__}-py3-none-any.whl"
    other = Machine(
        tmp_path / "server", tmp_path / "none", tmp_path / "server/.venvs/saml-gate", {}
    )
    other.home.mkdir()
    shutil.copy(wheel, other.home / wheel.name)  # copied to the machine without the checkout
    other.sh(install)
    assert other.sh("saml-gate --version").stdout.strip() == f"saml-gate {__version__}"
    assert other.sh("python -c 'import redis'").returncode == 0
    assert sys.executable not in other.sh("command -v saml-gate").stdout
