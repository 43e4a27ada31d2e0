"""The targets behind the gate, on real uvicorn servers, and real sign-ins to get sessions.

* ``starlette`` / ``starlette-root``: ``SamlGate`` around :func:`~.apps.starlette_app`, served
  by the tests' ``UvicornThread`` in this process (at the root, and with ``root_path``);
* ``django`` / ``django-root``: ``SamlGate`` around Django's ``get_asgi_application()``, in a
  process of its own (:mod:`.django_server`);
* ``proxy``: ``build_proxy_app`` in front of the servlet-style upstream (:mod:`.servlet`);
* ``sinatra``, ``rails``, ``symfony``, ``laravel``: ``build_proxy_app`` in front of a real
  framework's process (:mod:`.real_upstreams`), which reports what *it* ran.

All use uvicorn's defaults except ``proxy_headers=False``, as ``saml-gate run`` and ``saml-gate
proxy`` do, so the gate itself judges forwarding headers. Sessions come from a real sign-in
over HTTP: a navigation to a protected page, then the test IdP's signed Response posted to the
ACS with the pending-sign-in cookies the gate set.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from saml_gate import SamlGate
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.proxy import build_proxy_app
from saml_gate.saml.keys import KeyPair
from saml_gate.testing.access_tokens import AccessTokenIssuer
from tests.interop.servers import UvicornThread, bound_socket, stop_process
from tests.request_side.apps import starlette_app
from tests.request_side.oracle import ACCESS_TOKENS, GATE_POLICY, PRINCIPALS, Principal
from tests.request_side.real_upstreams import NAMES as REAL_NAMES
from tests.request_side.real_upstreams import RealUpstreams
from tests.request_side.servlet import ServletUpstream
from tests.request_side.wire import Answer, exchange, request
from tests.support import (
    IDP_ENTITY_ID,
    IDP_SSO_URL,
    FrozenClock,
    decode_redirect_request,
    gate_options,
)

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0
"""Seconds a server may take to finish a case's requests: a guard, never reached."""
ROOT_PATH = "/prefix"
OTHER_ENTITY_ID = "urn:example:another-app"
SESSION_COOKIE = "saml_gate_session"
#: The targets where the gate is a reverse proxy in front of an upstream of its own process.
PROXIED = frozenset({"proxy", "proxy-fast", *REAL_NAMES})


class LogWatch(logging.Handler):
    """Errors and tracebacks logged by the servers of this process (uvicorn, the gate)."""

    LOGGERS = ("uvicorn", "saml_gate")  # uvicorn.error and saml_gate.* propagate to these

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.found.append(self.format(record) if record.exc_info else record.getMessage())

    def attach(self) -> None:
        """(Again): every uvicorn.Config re-applies uvicorn's logging config, dropping handlers."""
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)

    def detach(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


@dataclass
class Target:
    name: str
    port: int
    base_url: str
    lab: Lab
    entity_id: str = ""
    sessions: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entity_id = self.entity_id or self.base_url + "/saml/metadata"

    @property
    def host(self) -> bytes:
        """The Host a browser sends: base_url's (a twin stands in for its target's address;
        the gate starts no sign-in at an address other than base_url)."""
        return urlsplit(self.base_url).netloc.encode()

    @property
    def acs_url(self) -> str:
        return self.base_url + "/saml/acs"

    def token(self, principal: str, **wrong: Any) -> bytes:
        """An access token for the token principal ``principal``, valid now."""
        groups = PRINCIPALS[principal].groups
        return self.lab.access_tokens.token(time.time(), groups=groups, **wrong).encode()

    @property
    def token_jwks(self) -> str:
        return self.lab.access_tokens.jwks

    def session(self, principal: str) -> bytes:
        """The session cookie value of ``principal``, signed in through this target once."""
        if principal not in self.sessions:
            if principal == "foreign-base":  # admins, signed in through another target
                other = "proxy" if self.name != "proxy" else "starlette"
                self.sessions[principal] = self.lab.target(other).session("admins")
            elif principal == "foreign-entity":
                self.sessions[principal] = self.lab.twin(self, OTHER_ENTITY_ID).session("admins")
            elif self.name.endswith("-root"):  # see Lab.twin
                self.sessions[principal] = self.lab.twin(self).session(principal)
            else:
                self.sessions[principal] = self.lab.sign_in(self, PRINCIPALS[principal])
        return self.sessions[principal]


class Lab:
    """Starts targets on first use, signs people in, and collects server-side errors."""

    def __init__(self, idp_keys: KeyPair, sp_keys: KeyPair, state_dir: Path) -> None:
        self.idp_keys = idp_keys
        self.sp_keys = sp_keys
        self.state_dir = state_dir
        self.watch = LogWatch()
        self.access_tokens = AccessTokenIssuer(idp_keys)
        """The test authorization server every target trusts (``ACCESS_TOKENS``)."""
        self._targets: dict[str, Target] = {}
        self._twins: dict[str, Target] = {}
        self._stops: list[Callable[[], None]] = []
        self._servers: list[UvicornThread] = []
        self._upstream: ServletUpstream | None = None
        self._real: RealUpstreams | None = None
        self._django: tuple[subprocess.Popen[str], Path] | None = None
        self._django_log_offset = 0

    # ------------------------------------------------------------------ configuration
    def gate_options(self, base_url: str, **overrides: Any) -> dict[str, Any]:
        """The shared test options (tests.support) in real time: the Django target runs in
        another process, and sign-ins there must agree with the clock of this one."""
        options = gate_options(
            self.idp_keys,
            self.sp_keys,
            FrozenClock(),
            str(self.state_dir),
            base_url=base_url,
            verify_isolation="thread",
            **ACCESS_TOKENS,
            access_token_keys=self.access_tokens.jwks,
            **overrides,
        )
        del options["clock"]
        return options

    # ------------------------------------------------------------------ targets
    def target(self, name: str) -> Target:
        if name not in self._targets:
            if name in ("starlette", "starlette-root", "starlette-fast"):
                root = ROOT_PATH if name.endswith("-root") else ""
                self._targets[name] = self._in_process(name, root)
            elif name in ("proxy", "proxy-fast"):
                self._targets[name] = self._proxy(name, self.servlet.url)
            elif name in REAL_NAMES:
                self._targets[name] = self._proxy(name, self.real.url(name))
            elif name in ("django", "django-root"):
                self._start_django()  # both at once: one Django process
            else:
                raise KeyError(name)
        return self._targets[name]

    @property
    def servlet(self) -> ServletUpstream:
        """The servlet-style upstream of the proxy targets (started on first use)."""
        if self._upstream is None:
            self._upstream = ServletUpstream().start()
            self._stops.append(self._upstream.stop)
        return self._upstream

    def _serve(self, name: str, app_for: Callable[[str], Any], root: str = "") -> Target:
        """``app_for(base_url)`` on a new uvicorn server of this process (``*-fast``: on
        httptools and uvloop, else on h11 and asyncio)."""
        sock = bound_socket()
        port = int(sock.getsockname()[1])
        base_url = f"http://127.0.0.1:{port}"
        stack = {"http": "httptools", "loop": "uvloop"} if name.endswith("-fast") else {}
        server = UvicornThread(sock, proxy_headers=False, root_path=root, **stack)
        server.start(app_for(base_url))
        self._servers.append(server)
        self._stops.append(server.stop)
        self.watch.attach()
        return Target(name, port, base_url, self)

    def _in_process(self, name: str, root: str) -> Target:
        def app(base_url: str) -> SamlGate:
            return SamlGate(starlette_app(root), **self.gate_options(base_url, **GATE_POLICY))

        return self._serve(name, app, root)

    def _proxy(self, name: str, upstream: str) -> Target:
        def app(base_url: str) -> SamlGate:
            return build_proxy_app(upstream, **self.gate_options(base_url, **GATE_POLICY))

        return self._serve(name, app)

    @property
    def real(self) -> RealUpstreams:
        """The real frameworks' processes (started on first use)."""
        if self._real is None:
            real = self._real = RealUpstreams(self.state_dir)
            self._stops.append(real.stop)
        return self._real

    @property
    def upstream(self) -> ServletUpstream | None:
        """The proxy target's upstream, once started."""
        return self._upstream

    def twin(self, target: Target, entity_id: str | None = None) -> Target:
        """A gate configured as ``target`` (same secret, base_url, policy), at the site's root.

        With ``entity_id``: the same but for the entity ID, a configuration whose sessions
        ``target`` must refuse. Without: a gate whose sessions ``target`` must accept, which
        signs people in for the ``root_path`` targets (their own sign-in under ``root_path`` is
        a case of its own, root-paths/sign-in, so that a broken one fails that case, not all).
        """
        key = f"{target.name}-twin-{entity_id or ''}"
        if key not in self._twins:

            def app(base_url: str) -> SamlGate:
                same = {"entity_id": entity_id} if entity_id else {}
                options = self.gate_options(target.base_url, **same)
                return SamlGate(starlette_app(), **options, **GATE_POLICY)

            twin = self._serve(key, app)
            twin.base_url, twin.entity_id = target.base_url, entity_id or target.entity_id
            self._twins[key] = twin
        return self._twins[key]

    def _start_django(self) -> None:
        directory = self.state_dir / "django"
        directory.mkdir(exist_ok=True)
        config = directory / "config.json"
        options = self.gate_options("http://unused")
        del options["base_url"]  # each server's own
        config.write_text(json.dumps({"gate": options}))
        log = directory / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAML_GATE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.request_side.django_server", str(config)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        self._django = (process, log)
        self._stops.append(lambda: stop_process(process))
        assert process.stdout is not None
        ports = process.stdout.readline().split()
        if len(ports) != 2:
            stop_process(process)
            raise RuntimeError(f"the Django target did not start:\n{log.read_text()[-3000:]}")
        for name, port in zip(("django", "django-root"), ports, strict=True):
            self._targets[name] = Target(name, int(port), f"http://127.0.0.1:{port}", self)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self.watch.detach()

    # ------------------------------------------------------------------ server-side errors
    def settle(self) -> None:
        """Wait until the in-process servers have finished every request they started.

        An app can still be running (and about to log a traceback) after the client read its
        answer: a WebSocket relay winding down, say. Awaiting uvicorn's own request tasks on
        its loop makes each case own the errors it caused, without sleeping."""
        for server in self._servers:
            uv = server._server  # the uvicorn.Server (UvicornThread keeps it private)
            assert uv is not None
            tasks = set(uv.server_state.tasks)  # copied at once: a set the loop mutates
            if not tasks:
                continue

            async def finished(tasks: set[asyncio.Task[None]] = tasks) -> None:
                await asyncio.wait(tasks)

            loop = next(iter(tasks)).get_loop()
            asyncio.run_coroutine_threadsafe(finished(), loop).result(WAIT)

    def mark(self) -> None:
        """Forget errors so far (call before each case)."""
        self.watch.attach()
        self.watch.found.clear()
        if self._upstream is not None:
            self._upstream.errors.clear()
        if self._real is not None:
            self._real.mark()
        if self._django is not None:
            self._django_log_offset = self._django[1].stat().st_size

    def errors(self) -> list[str]:
        """Errors and tracebacks the servers logged since :meth:`mark`."""
        found = list(self.watch.found)
        if self._upstream is not None:
            found += self._upstream.errors
        if self._real is not None:
            found += self._real.errors()
        if self._django is not None:
            with self._django[1].open("rb") as log:
                log.seek(self._django_log_offset)
                text = log.read().decode("utf-8", "replace")
            if "Traceback" in text or "ERROR" in text:
                found.append(text[-3000:])
        return found

    # ------------------------------------------------------------------ signing in
    def sign_in(self, target: Target, person: Principal) -> bytes:
        """A real sign-in through ``target``: the session cookie's value."""
        answer = exchange(target.port, navigation(target.host, b"/page"))
        assert answer.status == 303, f"no redirect to the IdP:\n{answer.summary()}"
        final = self.complete_sign_in(target, answer, person)
        value = set_cookie(final, SESSION_COOKIE)
        assert final.status == 303 and value, f"sign-in as {person.name} failed:\n{final.summary()}"
        return value

    def complete_sign_in(self, target: Target, started: Answer, person: Principal) -> Answer:
        """Post the IdP's signed Response for the sign-in ``started`` (a 303 to the IdP)."""
        location = started.header("location") or ""
        authn_request, relay = decode_redirect_request(location)
        spec = ResponseSpec(
            issuer=IDP_ENTITY_ID,
            destination=target.acs_url,
            audience=target.entity_id,
            name_id=person.name_id,
            attributes={
                "email": [person.name_id],
                "displayName": [person.name],
                "groups": list(person.groups),
            },
            in_response_to=authn_request.get("ID"),
            now=datetime.now(UTC),
        )
        form = {"SAMLResponse": base64.b64encode(issue_response(spec, self.idp_keys)).decode()}
        if relay is not None:
            form["RelayState"] = relay
        body = urlencode(form).encode()
        pending = b"; ".join(
            v.split(";", 1)[0].encode("latin-1") for v in started.headers_named("set-cookie")
        )
        headers = [
            (b"Host", target.host),
            (b"Content-Type", b"application/x-www-form-urlencoded"),
            (b"Content-Length", str(len(body)).encode()),
            (b"Cookie", pending),
            (b"Connection", b"close"),
        ]
        return exchange(target.port, request(b"POST", b"/saml/acs", headers, body))


def navigation(host: bytes, path: bytes) -> bytes:
    return request(
        b"GET", path, [(b"Host", host), (b"Accept", b"text/html"), (b"Connection", b"close")]
    )


def set_cookie(answer: Answer, name: str) -> bytes | None:
    for value in answer.headers_named("set-cookie"):
        pair = value.split(";", 1)[0]
        key, _, cookie = pair.partition("=")
        if key.strip() == name and cookie:
            return cookie.encode("latin-1")
    return None


def is_idp_redirect(answer: Answer) -> bool:
    location = answer.header("location") or ""
    return answer.status == 303 and location.startswith(IDP_SSO_URL + "?")
