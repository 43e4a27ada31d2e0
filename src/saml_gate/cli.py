"""The ``saml-gate`` command: demo, run, proxy, forward-auth, setup, metadata, keygen, check,
sessions.

Every gate flag is also read from its ``SAML_GATE_*`` variable (``--base-url`` from
``SAML_GATE_BASE_URL``, ...); flags win. Server flags (``--host``, ``--port``, ``--upstream``,
``--ngrok-domain``, ``--workers``, ``--secret-key-file``) read ``SAML_GATE_HOST`` and so on.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from saml_gate import launch
from saml_gate.__about__ import __version__
from saml_gate.config.declaration import ENV_PREFIX
from saml_gate.config.flags import (
    add_gate_flags,
    flag_message,
    gate_default,
    gate_env,
    gate_options,
)
from saml_gate.config.validation import ConfigErrors
from saml_gate.errors import ConfigError
from saml_gate.ops.logs import configure_cli_logging
from saml_gate.tunnel import TunnelError, open_ngrok_tunnel

log = logging.getLogger("saml_gate")


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def add_server_flags(parser: argparse.ArgumentParser, *, workers: bool = False) -> None:
    parser.add_argument(
        "--host",
        default=_env("host", "127.0.0.1"),
        help="address to listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=int(_env("port", "8000")), help="port (default: %(default)s)"
    )
    if workers:
        parser.add_argument(
            "--workers",
            type=int,
            default=int(_env("workers", "1")),
            help="uvicorn worker processes; more than 1 needs --store redis://... shared by"
            " them all (default: %(default)s)",
        )
    parser.add_argument(
        "--ngrok", action="store_true", help="open an ngrok tunnel and use its URL as base_url"
    )
    parser.add_argument(
        "--ngrok-domain",
        default=_env("ngrok_domain"),
        help="reserved ngrok domain, so the Okta values stay stable (default: a random one)",
    )


def add_secret_file_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-key-file",
        metavar="PATH",
        default=_env("secret_key_file"),
        help="read secret_key from this file (comma-separated to rotate), which other users"
        " cannot see: --secret-key shows the secret in `ps` (default: SAML_GATE_SECRET_KEY)",
    )


def _gate_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gate flags given, and the secret from --secret-key-file."""
    options = gate_options(args)
    path = getattr(args, "secret_key_file", None)
    if path and "secret_key" not in options:
        options["secret_key"] = launch.secret_from_file(path)
    return options


def proxy_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {n: getattr(args, n) for n in launch.PROXY_FLAGS if getattr(args, n) is not None}
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
    from saml_gate.saml.sp import load_sp_keys

    sheet = SetupSheet.build(gate.settings, load_sp_keys(gate.settings).cert_pem)
    print(sheet.as_text(), flush=True)


def _serve(app: Any, args: argparse.Namespace, base_url: str | None = None) -> int:
    """Serve ``app``; with --workers N, N processes that each build it from this command line."""
    import uvicorn

    workers: int = getattr(args, "workers", 1)
    if workers > 1:
        os.environ[launch.WORKER_SPEC] = launch.worker_spec(args.argv, base_url)
        app = "saml_gate.cli:worker_app"
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=args.host,
        port=args.port,
        log_level="info",
        proxy_headers=False,
    )
    return 0


def worker_app() -> Any:
    """One --workers process's app, built from the command line the parent was given."""
    configure_cli_logging()
    argv, base_url = launch.read_worker_spec()
    args = build_parser().parse_args(argv)
    options = _gate_options(args)
    if base_url:
        options["base_url"] = base_url
    return args.build(args, options)


# ---------------------------------------------------------------------- commands
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
    factory = launch.example_factory()
    app = (
        factory(**options)
        if factory
        else SamlGate(launch.whoami_app(options.get("prefix", "/saml")), **options)
    )
    gate = launch.loaded(app) if isinstance(app, SamlGate) else None
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


def build_run(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from saml_gate.middleware import SamlGate

    return SamlGate(launch.import_app(args.app, args.factory), **options)


def build_proxy(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from saml_gate.proxy import build_proxy_app

    return build_proxy_app(args.upstream, **options, **proxy_options(args))


def cmd_serve(args: argparse.Namespace) -> int:
    """``run`` and ``proxy``: build the gate (every setting checked), say where it is, serve."""
    options = _gate_options(args)
    launch.check_workers(args.workers, options.get("store") or gate_env("store") or "memory")
    _tunnel_base_url(args, options)
    gate = launch.loaded(args.build(args, options))
    if args.ngrok:
        _print_sheet(gate)
    what = f"{args.app} behind the gate" if args.command == "run" else f"proxy to {args.upstream}"
    listen = f"{args.host}:{args.port}"
    print(launch.start_summary(gate, what=what, listen=listen, workers=args.workers), flush=True)
    return _serve(gate, args, options.get("base_url"))


def cmd_forward_auth(args: argparse.Namespace) -> int:
    """The gate alone, answering a reverse proxy's ``/saml/auth`` sub-requests (no app)."""
    names = [getattr(args, n) for n in launch.IDENTITY_HEADER_FLAGS]
    return _serve(launch.loaded(launch.forward_auth_gate(names, _gate_options(args))), args)


def cmd_setup(args: argparse.Namespace) -> int:
    from saml_gate.ops.setup_sheet import SetupSheet
    from saml_gate.saml.sp import load_sp_keys

    settings = launch.sp_only_settings(gate_options(args))
    keys = load_sp_keys(settings)
    print(SetupSheet.build(settings, keys.cert_pem).as_text())
    return 0


def cmd_metadata(args: argparse.Namespace) -> int:
    from saml_gate.saml.sp import load_sp_keys, signs_authn_requests, sp_metadata_xml

    settings = launch.sp_only_settings(gate_options(args))
    keys = load_sp_keys(settings)
    sign = signs_authn_requests(settings, idp_wants_signed=False)
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
    from saml_gate.runtime.selfcheck import run_checks

    given = gate_options(args).keys()
    report = run_checks(_gate_options(args), lambda problem: flag_message(problem, given))
    for line in report.lines:
        print(line)
    print(f"\n{report.summary}")
    return 0 if report.ok else 1


def cmd_sessions(args: argparse.Namespace) -> int:
    """List or revoke sessions in the shared store (every gate sharing it sees a revocation)."""
    return launch.sessions_command(args, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saml-gate", description="SAML single sign-on in front of any ASGI app."
    )
    parser.add_argument("--version", action="version", version=f"saml-gate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the example app behind the gate with the dev IdP")
    add_server_flags(demo)
    add_gate_flags(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run an ASGI app (module:app) behind the gate")
    run.add_argument("app", help="the ASGI app to protect, as package.module:attribute")
    run.add_argument("--factory", action="store_true", help="app is a factory to call")
    add_server_flags(run, workers=True)
    add_secret_file_flag(run)
    add_gate_flags(run)
    run.set_defaults(func=cmd_serve, build=build_run)

    proxy = sub.add_parser(
        "proxy", help="put the gate in front of any local web app (any language)"
    )
    proxy.add_argument(
        "--upstream",
        default=_env("upstream"),
        required=_env("upstream") is None,
        help="the app to protect, e.g. http://127.0.0.1:3000 (required; or SAML_GATE_UPSTREAM)",
    )
    for name, spec in launch.PROXY_FLAGS.items():
        proxy.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **spec)
    proxy.add_argument(
        "--preserve-host", action="store_true", help="send the browser's Host to the upstream"
    )
    add_server_flags(proxy, workers=True)
    add_secret_file_flag(proxy)
    add_gate_flags(proxy)
    proxy.set_defaults(func=cmd_serve, build=build_proxy)

    forward_auth = sub.add_parser(
        "forward-auth",
        help="serve only the gate, for nginx auth_request, Caddy forward_auth, Traefik forwardAuth",
    )
    for name in launch.IDENTITY_HEADER_FLAGS:
        spec = launch.PROXY_FLAGS[name]
        forward_auth.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **spec)
    add_server_flags(forward_auth)
    add_gate_flags(forward_auth)
    forward_auth.set_defaults(func=cmd_forward_auth)

    setup = sub.add_parser("setup", help="print the values to enter in Okta")
    add_gate_flags(setup, launch.SP_FLAGS | launch.SHEET_FLAGS)
    setup.set_defaults(func=cmd_setup)

    metadata = sub.add_parser("metadata", help="print the SP metadata XML")
    add_gate_flags(metadata, launch.SP_FLAGS)
    metadata.set_defaults(func=cmd_metadata)

    keygen = sub.add_parser("keygen", help="write an SP key and certificate")
    keygen.add_argument(
        "--out-dir",
        default=gate_env("state_dir") or gate_default("state_dir"),
        help="where to write sp.key.pem and sp.cert.pem; the gate finds them there when"
        " SAML_GATE_SP_KEY is not set (default: state_dir, %(default)s)",
    )
    keygen.add_argument(
        "--common-name", default="saml-gate SP", help="the certificate's CN (default: %(default)s)"
    )
    keygen.add_argument(
        "--days", type=int, default=3650, help="validity in days (default: %(default)s)"
    )
    keygen.add_argument("--force", action="store_true", help="replace existing files")
    keygen.set_defaults(func=cmd_keygen)

    check = sub.add_parser("check", help="load and validate everything; non-zero on problems")
    add_secret_file_flag(check)
    add_gate_flags(check)
    check.set_defaults(func=cmd_check)

    launch.add_sessions_parser(sub).set_defaults(func=cmd_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_cli_logging()
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        problems = exc.problems if isinstance(exc, ConfigErrors) else (exc,)
        given = gate_options(args).keys()
        return _fail("\n  ".join(flag_message(problem, given) for problem in problems))
    except launch.LaunchError as exc:
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
