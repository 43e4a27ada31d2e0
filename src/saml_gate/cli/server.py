"""What the server commands (``run``, ``proxy``, ``forward-auth``, ``demo``) share: their
flags (one definition, from the command line's declared settings), the check that several
workers share a store, the ngrok tunnel, the start summary, and serving under uvicorn, with
``--workers N`` processes that each build the app again from the same command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Callable
from typing import Any, Final

import anyio

from saml_gate.cli.options import LaunchError, cli_settings, gate_options
from saml_gate.cli.summary import setup_sheet, start_summary
from saml_gate.config.cli_settings import CliSettings
from saml_gate.config.flags import add_flags
from saml_gate.config.loading import value_of
from saml_gate.config.settings import GateSettings
from saml_gate.ops.logs import configure_cli_logging

#: The hand-off from the command to its ``--workers`` processes (JSON: the command line and
#: the options it worked out, such as the tunnel's base_url). Outside the ``SAML_GATE_*``
#: names on purpose: it is no setting, and no user sets it.
WORKER_SPEC: Final = "_SAML_GATE_WORKER_SPEC"

#: A server command's app from its parsed command line and the gate's options.
Build = Callable[[argparse.Namespace, dict[str, Any]], Any]


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every server command takes: --host, --port, --workers, --ngrok,
    --ngrok-domain, --secret-key-file."""
    add_flags(parser, [CliSettings])


def check_workers(workers: int, store: object) -> None:
    """Several worker processes need a shared store: with ``memory`` each process would keep
    its own replay cache and sign-outs (a signed-out cookie would still open the others)."""
    if workers > 1 and store == "memory":
        raise LaunchError(
            f"--workers {workers} with the memory store: replay protection and sign-outs would"
            " be per process (a signed-out cookie still opens the other workers). Give a Redis"
            " store shared by all workers: --store redis://127.0.0.1:6379/0 (SAML_GATE_STORE),"
            " or run one worker"
        )


def serve_command(
    args: argparse.Namespace,
    build: Build,
    what: Callable[[GateSettings], str],
    decided: dict[str, Any] | None = None,
) -> int:
    """Build the app (every setting checked), say where it is, serve it. ``decided``: options
    the command chose itself (the demo's secret), which every worker must use too."""
    from saml_gate.middleware import SamlGate

    server = cli_settings(args)
    decided = dict(decided or {})
    options = gate_options(args) | decided
    store = value_of(
        GateSettings, "store", options.get("store"), config_file=options.get("config_file")
    )
    check_workers(server.workers, store)
    if server.ngrok:
        from saml_gate.cli.tunnel import open_ngrok_tunnel

        url = open_ngrok_tunnel(server.host, server.port, server.ngrok_domain)
        print(f"ngrok tunnel: {url} → http://{server.host}:{server.port}", flush=True)
        options["base_url"] = decided["base_url"] = url
    app = reloading_on_sighup(build(args, options))
    gate = app if isinstance(app, SamlGate) else None
    if gate is not None:  # the start-up loading now: a bad setting is said before serving
        anyio.run(gate.load)  # (with its flag's name); the lifespan then starts the rest
    settings = gate.settings if gate is not None else GateSettings.load(**options)
    if server.ngrok:
        print(setup_sheet(settings, gate), flush=True)
    listen = f"{server.host}:{server.port}"
    summary = start_summary(
        settings, gate, what=what(settings), listen=listen, workers=server.workers
    )
    print(summary, flush=True)
    return serve(app, args, server, decided)


def serve(app: Any, args: argparse.Namespace, server: CliSettings, decided: dict[str, Any]) -> int:
    """Serve ``app`` under uvicorn; with several workers, each process builds it again."""
    import uvicorn

    workers = server.workers
    _ignore_sighup()  # until the gate's own handler is in place: never a way to kill it
    if workers == 1:
        uvicorn.run(app, host=server.host, port=server.port, log_level="info", proxy_headers=False)
        return 0
    os.environ[WORKER_SPEC] = json.dumps({"argv": args.argv, "decided": decided})
    config = uvicorn.Config(
        "saml_gate.cli.server:worker_app",
        factory=True,
        workers=workers,
        host=server.host,
        port=server.port,
        log_level="info",
        proxy_headers=False,
    )
    _hup_to_workers()(config, sockets=[config.bind_socket()]).run()
    return 0


def _ignore_sighup() -> None:
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _hup_to_workers() -> type:
    """uvicorn's supervisor, but SIGHUP is passed on to each worker, which reloads its access
    policy from the configuration file (uvicorn's own answer replaces every worker)."""
    from uvicorn.supervisors import Multiprocess

    class HupToWorkers(Multiprocess):
        def handle_hup(self) -> None:
            for process in self.processes:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGHUP)

    return HupToWorkers


def worker_app() -> Any:
    """One --workers process's app, built from the command line the parent was given."""
    from saml_gate.cli import build_parser

    configure_cli_logging()
    _ignore_sighup()
    spec: dict[str, Any] = json.loads(os.environ[WORKER_SPEC])
    args = build_parser().parse_args(spec["argv"])
    options = gate_options(args) | spec["decided"]
    return reloading_on_sighup(args.build(args, options))


def reloading_on_sighup(app: Any) -> Any:
    """Under the command line, SIGHUP reloads the access policy from the configuration file
    (each --workers process is sent it by the supervisor, :class:`HupToWorkers`)."""
    from saml_gate.middleware import SamlGate

    if isinstance(app, SamlGate) and app.core.policy_reload is not None:
        app.core.policy_reload.on_sighup = True
    return app
