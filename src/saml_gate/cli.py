"""The ``saml-gate`` command: demo, run, proxy, setup, metadata, keygen, check, sessions.

Every gate flag is also read from its ``SAML_GATE_*`` variable (``--base-url`` from
``SAML_GATE_BASE_URL``, ...); flags win. Server flags (``--host``, ``--port``, ``--upstream``,
``--ngrok-domain``) read ``SAML_GATE_HOST`` and so on.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from saml_gate.config.declaration import ENV_PREFIX
from saml_gate.config.flags import add_gate_flags, gate_default, gate_env, gate_options
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.tunnel import TunnelError, open_ngrok_tunnel

log = logging.getLogger("saml_gate")

#: Reverse-proxy options (``saml-gate proxy``); also read from SAML_GATE_<NAME>.
PROXY_FLAGS: dict[str, dict[str, Any]] = {
    "user_header": {"help": "identity header for the NameID (default X-Forwarded-User)"},
    "email_header": {"help": "identity header for the email (default X-Forwarded-Email)"},
    "groups_header": {"help": "identity header for the groups (default X-Forwarded-Groups)"},
    "upstream_timeout": {"type": float, "help": "seconds to wait for the upstream's answer"},
}


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def add_server_flags(parser: argparse.ArgumentParser, *, ngrok: bool = True) -> None:
    parser.add_argument("--host", default=_env("host", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("port", "8000")))
    if ngrok:
        parser.add_argument(
            "--ngrok", action="store_true", help="open an ngrok tunnel and use its URL as base_url"
        )
        parser.add_argument(
            "--ngrok-domain",
            default=_env("ngrok_domain"),
            help="reserved ngrok domain, so the Okta values stay stable",
        )


def proxy_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {n: getattr(args, n) for n in PROXY_FLAGS if getattr(args, n) is not None}
    if args.preserve_host:
        options["preserve_host"] = True
    return options


def _fail(message: str) -> int:
    print(f"saml-gate: {message}", file=sys.stderr)
    return 2


def _tunnel_base_url(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """With --ngrok, open the tunnel and take its URL as base_url."""
    if getattr(args, "ngrok", False):
        url = open_ngrok_tunnel(args.host, args.port, args.ngrok_domain)
        options["base_url"] = url
        print(f"ngrok tunnel: {url} → http://{args.host}:{args.port}", flush=True)


def _print_sheet(gate: Any) -> None:
    from saml_gate.ops.setup_sheet import SetupSheet

    sheet = SetupSheet.build(gate.settings, gate.core.sp_keys.cert_pem)
    print(sheet.as_text(), flush=True)


def _serve(app: Any, args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0


# ---------------------------------------------------------------------- commands
def _example_factory() -> Callable[..., Any] | None:
    """examples/fastapi_app's create_app, when run from a checkout that has it."""
    if not (Path.cwd() / "examples" / "fastapi_app" / "main.py").is_file():
        return None
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.fastapi_app.main")
    factory: Callable[..., Any] = module.create_app
    return factory


def _whoami_app() -> Any:
    """A one-page app that shows who signed in; the demo's app outside a checkout."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(request.user.as_dict())

    return Starlette(routes=[Route("/", whoami)])


def cmd_demo(args: argparse.Namespace) -> int:
    from saml_gate.middleware import SamlGate

    options = gate_options(args)
    if args.ngrok and not (options.get("idp_metadata") or gate_env("idp_metadata")):
        return _fail("--ngrok needs --idp-metadata: the development IdP never runs on a public URL")
    uses_dev_idp = not (options.get("idp_metadata") or gate_env("idp_metadata"))
    options.setdefault("base_url", f"http://127.0.0.1:{args.port}")
    # Never the environment's secret: a demo must not mint cookies a production gate accepts.
    options["secret_key"] = secrets.token_urlsafe(32)
    options.setdefault("debug", True)
    if uses_dev_idp:
        options["dev_idp"] = True
    _tunnel_base_url(args, options)
    factory = _example_factory()
    app = factory(**options) if factory else SamlGate(_whoami_app(), **options)
    gate = app if isinstance(app, SamlGate) else None
    print(
        f"\n  saml-gate demo: open {options['base_url']}/ in a browser.\n"
        + (
            "  The embedded DEVELOPMENT IdP signs you in as a test user; never use it in"
            " production.\n"
            if uses_dev_idp
            else ""
        ),
        flush=True,
    )
    if gate is not None and not uses_dev_idp:
        _print_sheet(gate)
    return _serve(app, args)


def _import_app(target: str, factory: bool) -> Any:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError("app", f"{target!r} must look like package.module:app")
    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
        app = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("app", f"cannot import {target!r}: {exc}") from exc
    return app() if factory else app


def cmd_run(args: argparse.Namespace) -> int:
    from saml_gate.middleware import SamlGate

    options = gate_options(args)
    _tunnel_base_url(args, options)
    gate = SamlGate(_import_app(args.app, args.factory), **options)
    if args.ngrok:
        _print_sheet(gate)
    return _serve(gate, args)


def cmd_proxy(args: argparse.Namespace) -> int:
    from saml_gate.proxy import build_proxy_app

    options = gate_options(args)
    _tunnel_base_url(args, options)
    app = build_proxy_app(args.upstream, **options, **proxy_options(args))
    if args.ngrok:
        _print_sheet(app)
    return _serve(app, args)


def _setup_settings(args: argparse.Namespace) -> GateSettings:
    """Settings for commands that describe the SP before any IdP exists (setup, metadata)."""
    options = gate_options(args)
    # The Okta values come before the IdP metadata does: stand-ins for what is not needed yet.
    options.setdefault("idp_metadata", gate_env("idp_metadata") or "(not needed for this command)")
    options.setdefault("secret_key", gate_env("secret_key") or secrets.token_urlsafe(32))
    return GateSettings.load(**options)


def cmd_setup(args: argparse.Namespace) -> int:
    from saml_gate.ops.setup_sheet import SetupSheet
    from saml_gate.saml.sp import load_sp_keys

    settings = _setup_settings(args)
    keys = load_sp_keys(settings)
    print(SetupSheet.build(settings, keys.cert_pem).as_text())
    return 0


def cmd_metadata(args: argparse.Namespace) -> int:
    from saml_gate.saml.sp import load_sp_keys, sp_metadata_xml

    settings = _setup_settings(args)
    keys = load_sp_keys(settings)
    sign = bool(settings.sign_authn_requests)
    sys.stdout.write(sp_metadata_xml(settings, keys, sign).decode() + "\n")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from saml_gate.saml.keys import generate_keypair

    out = Path(args.out_dir).expanduser()
    key_path, cert_path = out / "sp.key.pem", out / "sp.cert.pem"
    if not args.force and (key_path.exists() or cert_path.exists()):
        return _fail(f"{key_path} or {cert_path} exists; use --force to replace them")
    pair = generate_keypair(args.common_name, days=args.days)
    out.mkdir(parents=True, exist_ok=True)
    for path, data, mode in ((key_path, pair.key_pem, 0o600), (cert_path, pair.cert_pem, 0o644)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)
    print(f"wrote {key_path} (private, mode 600) and {cert_path} (valid {args.days} days)")
    print(f"use: SAML_GATE_SP_KEY={key_path} SAML_GATE_SP_CERT={cert_path}")
    print("upload the certificate to the IdP for encryption and Single Logout (saml-gate setup)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from saml_gate.ops.selfcheck import run_checks

    report = run_checks(gate_options(args))
    for line in report.lines:
        print(line)
    print(f"\n{report.summary}")
    return 0 if report.ok else 1


def cmd_sessions(args: argparse.Namespace) -> int:
    """List or revoke sessions in the shared store (every gate sharing it sees a revocation)."""
    import anyio

    from saml_gate.session.admin import AdminSettings, NotShared, StoreUnavailable, run

    if args.action == "revoke" and (args.user is None) == (args.session is None):
        return _fail("sessions revoke needs exactly one of --user NAME or --session ID")
    settings = AdminSettings(
        store=args.store,
        store_prefix=args.store_prefix,
        store_timeout=float(gate_env("store_timeout") or 5.0),
        clock_skew=float(gate_env("clock_skew") or gate_default("clock_skew")),
    )
    try:
        return anyio.run(run, settings, args.action, args.user, args.session, sys.stdout)
    except NotShared as exc:
        return _fail(str(exc))
    except StoreUnavailable as exc:
        return _fail(f"the store is unreachable: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saml-gate", description="SAML single sign-on in front of any ASGI app."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the example app behind the gate with the dev IdP")
    add_server_flags(demo)
    add_gate_flags(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run an ASGI app (module:app) behind the gate")
    run.add_argument("app", help="the ASGI app to protect, as package.module:attribute")
    run.add_argument("--factory", action="store_true", help="app is a factory to call")
    add_server_flags(run)
    add_gate_flags(run)
    run.set_defaults(func=cmd_run)

    proxy = sub.add_parser(
        "proxy", help="put the gate in front of any local web app (any language)"
    )
    proxy.add_argument(
        "--upstream",
        default=_env("upstream"),
        required=_env("upstream") is None,
        help="the app to protect, e.g. http://127.0.0.1:3000",
    )
    for name, spec in PROXY_FLAGS.items():
        proxy.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **spec)
    proxy.add_argument(
        "--preserve-host", action="store_true", help="send the browser's Host to the upstream"
    )
    add_server_flags(proxy)
    add_gate_flags(proxy)
    proxy.set_defaults(func=cmd_proxy)

    setup = sub.add_parser("setup", help="print the values to enter in Okta")
    add_gate_flags(setup)
    setup.set_defaults(func=cmd_setup)

    metadata = sub.add_parser("metadata", help="print the SP metadata XML")
    add_gate_flags(metadata)
    metadata.set_defaults(func=cmd_metadata)

    keygen = sub.add_parser("keygen", help="write an SP key and certificate")
    keygen.add_argument("--out-dir", default=gate_env("state_dir") or gate_default("state_dir"))
    keygen.add_argument("--common-name", default="saml-gate SP")
    keygen.add_argument("--days", type=int, default=3650)
    keygen.add_argument("--force", action="store_true", help="replace existing files")
    keygen.set_defaults(func=cmd_keygen)

    check = sub.add_parser("check", help="load and validate everything; non-zero on problems")
    add_gate_flags(check)
    check.set_defaults(func=cmd_check)

    sessions = sub.add_parser("sessions", help="list or revoke sessions in the shared store")
    sessions.add_argument("action", choices=("list", "revoke"))
    sessions.add_argument("--user", help="only this person's sessions (their NameID)")
    sessions.add_argument("--session", help="one session, by its ID (from sessions list)")
    sessions.add_argument("--store", default=gate_env("store") or gate_default("store"))
    sessions.add_argument(
        "--store-prefix", default=gate_env("store_prefix") or gate_default("store_prefix")
    )
    sessions.set_defaults(func=cmd_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        return _fail(str(exc))
    except TunnelError as exc:
        result = _fail(str(exc))
    if "ngrok" in sys.modules:
        # The ngrok SDK's native runtime often crashes while the interpreter shuts down (seen:
        # SIGSEGV / SIGABRT after a failed connect): leave without running that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
