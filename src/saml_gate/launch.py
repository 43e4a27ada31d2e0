"""Starting a served gate from the command line: the secret from a file, ``--workers``, and the
summary ``saml-gate run`` and ``proxy`` print before serving (as ``demo`` does).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from saml_gate.config.declaration import declared
from saml_gate.config.settings import GateSettings

if TYPE_CHECKING:
    from saml_gate.middleware import SamlGate

#: The command line a ``--workers`` child rebuilds its app from (JSON: argv, base_url).
WORKER_SPEC: Final = "SAML_GATE_CLI_WORKER_SPEC"

#: The settings ``metadata`` describes (the SP), and what the setup sheet shows on top.
SP_FLAGS = frozenset(
    (
        "base_url",
        "prefix",
        "entity_id",
        "sp_key",
        "sp_cert",
        "state_dir",
        "name_id_format",
        "sign_authn_requests",
    )
)
SHEET_FLAGS = frozenset(("authorized_groups", "groups_attribute", "allow_idp_initiated"))


class LaunchError(Exception):
    """A command-line input the gate cannot start with; the message says what to do."""


def secret_from_file(path: str) -> tuple[str, ...]:
    """``--secret-key-file``: the secret(s) in a file (comma-separated, like the variable)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text().strip()
    except OSError as exc:
        raise LaunchError(f"--secret-key-file {path}: cannot read it ({exc.strerror})") from exc
    if not text:
        raise LaunchError(f"--secret-key-file {path}: the file is empty")
    parse = declared(GateSettings, "secret_key").kind.from_text
    assert parse is not None  # the secret is read from the environment, so from text too
    secrets: tuple[str, ...] = parse(text)
    return secrets


def check_workers(workers: int, store: object) -> None:
    """Several worker processes need a shared store: with ``memory`` each process would keep
    its own replay cache and sign-outs (a signed-out cookie would still open the others)."""
    if workers < 1:
        raise LaunchError(f"--workers {workers}: give 1 or more")
    if workers > 1 and store == "memory":
        raise LaunchError(
            f"--workers {workers} with the memory store: replay protection and sign-outs would"
            " be per process (a signed-out cookie still opens the other workers). Give a Redis"
            " store shared by all workers: --store redis://127.0.0.1:6379/0 (SAML_GATE_STORE),"
            " or run one worker"
        )


def worker_spec(argv: list[str], base_url: str | None) -> str:
    return json.dumps({"argv": argv, "base_url": base_url})


def read_worker_spec() -> tuple[list[str], str | None]:
    spec: dict[str, Any] = json.loads(os.environ[WORKER_SPEC])
    return list(spec["argv"]), spec.get("base_url")


def example_factory() -> Callable[..., Any] | None:
    """examples/fastapi_app's create_app, when run from a checkout that has it."""
    if not (Path.cwd() / "examples" / "fastapi_app" / "main.py").is_file():
        return None
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.fastapi_app.main")
    factory: Callable[..., Any] = module.create_app
    return factory


def whoami_app(prefix: str) -> Any:
    """The demo's app outside a checkout: who signed in, with a sign-out link."""
    from saml_gate.web.whoami import whoami_app as page

    return page(prefix)


def loaded(app: Any) -> Any:
    """``app`` with its gate's start-up loading done (IdP metadata, keys), so that a bad setting
    stops the command before it serves, in the command's words (the flag named); the server's
    lifespan then only starts the gate's background work."""
    import anyio

    from saml_gate.middleware import SamlGate

    if isinstance(app, SamlGate):
        anyio.run(app.load)
    return app


def start_summary(gate: SamlGate, *, what: str, listen: str, workers: int) -> str:
    """Where the gate is, which IdP it trusts, where the setup sheet is, and what to do next
    (the gate ``loaded``)."""
    s, saml = gate.settings, gate.core.saml
    if s.dev_idp:
        idp = "the embedded DEVELOPMENT IdP (test users; never in production)"
    else:
        source = saml.source
        where = "its metadata URL" if source is not None and source.is_url else "a file/XML"
        idp = f"{saml.idp.entity_id} (metadata from {where})"
    sheet = s.base_url + s.prefix + "/setup"
    next_step = (
        f"open {s.base_url}/ in a browser and pick a test user"
        if s.dev_idp
        else f"enter the setup sheet's values in the IdP (once), then open {s.base_url}/"
    )
    processes = f", {workers} workers" if workers > 1 else ""
    later = ": the values for a real IdP, later" if s.dev_idp else ""
    return (
        f"\n  saml-gate: {what} at {s.base_url}/ (listening on {listen}{processes})\n"
        f"  IdP:         {idp}\n"
        f"  Setup sheet: {sheet} (or: saml-gate setup){later}\n"
        f"  Next:        {next_step}\n"
    )


#: The forward-auth command's flags naming the identity headers (as proxy mode's).
IDENTITY_HEADER_FLAGS: Final = ("user_header", "email_header", "groups_header")


def forward_auth_gate(header_names: list[str | None], options: dict[str, Any]) -> Any:
    """``saml-gate forward-auth``: the gate with no app behind it but a "signed in" page,
    answering ``/saml/auth``; identity header names from the flags, else ``SAML_GATE_*``."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from saml_gate.config.checks import header_name
    from saml_gate.errors import ConfigError
    from saml_gate.identity.headers import DEFAULT_IDENTITY_HEADERS, IdentityHeaders
    from saml_gate.middleware import SamlGate

    names = [
        given if given is not None else os.environ.get("SAML_GATE_" + flag.upper(), default)
        for flag, given, default in zip(
            IDENTITY_HEADER_FLAGS, header_names, DEFAULT_IDENTITY_HEADERS, strict=True
        )
    ]
    for flag, value in zip(IDENTITY_HEADER_FLAGS, names, strict=True):
        problem = header_name(value)
        if problem is not None:
            raise ConfigError(flag, problem)
    page = PlainTextResponse("Signed in. saml-gate answers the reverse proxy's forward-auth.")
    # an app that speaks lifespan, so the gate's start-up runs at start, not at the first request
    signed_in = Starlette(routes=[Route("/{path:path}", lambda request: page)])
    gate = SamlGate(signed_in, **{**options, "forward_auth": True})
    assert gate.parts.forward_auth is not None  # forward_auth is on
    gate.parts.forward_auth.identity_headers = IdentityHeaders.named(*names)
    return gate


#: Reverse-proxy options (``saml-gate proxy``); also read from SAML_GATE_<NAME>.
PROXY_FLAGS: Final[dict[str, dict[str, Any]]] = {
    "user_header": {"help": "identity header for the NameID (default X-Forwarded-User)"},
    "email_header": {"help": "identity header for the email (default X-Forwarded-Email)"},
    "groups_header": {"help": "identity header for the groups (default X-Forwarded-Groups)"},
    "upstream_timeout": {
        "type": float,
        "help": "seconds to wait for the upstream's answer (default 300)",
    },
}


def sp_only_settings(options: dict[str, Any]) -> GateSettings:
    """Settings for commands that describe the SP before any IdP exists (setup, metadata):
    the Okta values come before the IdP metadata does, so stand-ins for what is not needed."""
    import secrets

    env = os.environ.get
    options.setdefault(
        "idp_metadata", env("SAML_GATE_IDP_METADATA") or "(not needed for this command)"
    )
    options.setdefault("secret_key", env("SAML_GATE_SECRET_KEY") or secrets.token_urlsafe(32))
    return GateSettings.load(**options)


def sessions_command(args: Any, out: Any) -> int:
    """``saml-gate sessions list|revoke``: the exit status (1: nothing matched; 2: a problem,
    said on stderr)."""
    import anyio

    from saml_gate.session.admin import AdminSettings, NotShared, StoreUnavailable, run

    def fail(problem: str) -> int:
        print(f"saml-gate: {problem}", file=sys.stderr)
        return 2

    if args.action == "revoke" and (args.user is None) == (args.session is None):
        return fail("sessions revoke needs exactly one of --user NAME or --session ID")
    env = os.environ.get
    settings = AdminSettings(
        store=args.store,
        store_prefix=args.store_prefix,
        store_timeout=float(env("SAML_GATE_STORE_TIMEOUT") or 5.0),
        clock_skew=float(
            env("SAML_GATE_CLOCK_SKEW") or declared(GateSettings, "clock_skew").default
        ),
    )
    try:
        code: int = anyio.run(run, settings, args.action, args.user, args.session, out)
    except NotShared as exc:
        return fail(str(exc))
    except StoreUnavailable as exc:
        return fail(f"the store is unreachable: {exc}")
    return code


def import_app(target: str, factory: bool) -> Any:
    """The ASGI app named ``package.module:app`` (called when ``factory``), from the cwd too."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise LaunchError(f"the app {target!r} must look like package.module:app")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
        app = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise LaunchError(f"cannot import the app {target!r}: {exc}") from exc
    return app() if factory else app


def add_sessions_parser(sub: Any) -> Any:
    """The ``sessions`` subcommand's parser (its function is set by the caller)."""
    from saml_gate.config.flags import gate_default, gate_env

    sessions = sub.add_parser("sessions", help="list or revoke sessions in the shared store")
    sessions.add_argument("action", choices=("list", "revoke"))
    sessions.add_argument("--user", help="their NameID (default: everyone's sessions)")
    sessions.add_argument("--session", help="one session, by its ID (default: none)")
    sessions.add_argument(
        "--store",
        default=gate_env("store") or gate_default("store"),
        help="the shared store's Redis URL (default: %(default)s)",
    )
    sessions.add_argument(
        "--store-prefix",
        default=gate_env("store_prefix") or gate_default("store_prefix"),
        help="prefix of the gate's keys (default: %(default)s)",
    )
    return sessions
