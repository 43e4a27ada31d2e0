"""The ``saml-gate`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from saml_gate.errors import ConfigError

ASGIFactory = Callable[..., Any]


def _example_factory() -> ASGIFactory | None:
    """examples/fastapi_app's create_app, when run from a checkout that has it."""
    if not (Path.cwd() / "examples" / "fastapi_app" / "main.py").is_file():
        return None
    sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module("examples.fastapi_app.main")
    factory: ASGIFactory = module.create_app
    return factory


def _whoami_factory(**options: Any) -> Any:
    """A one-page app that shows who signed in; used outside a checkout."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from saml_gate.middleware import SamlGate

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(request.user.as_dict())

    return SamlGate(Starlette(routes=[Route("/", whoami)]), **options)


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn

    base_url = f"http://127.0.0.1:{args.port}"
    factory = _example_factory() or _whoami_factory
    try:
        app = factory(
            base_url=base_url,
            dev_idp=True,
            secret_key=secrets.token_urlsafe(32),
            state_dir=args.state_dir,
            debug=True,
        )
    except ConfigError as exc:
        print(f"saml-gate: {exc}", file=sys.stderr)
        return 2
    print(
        f"\n  saml-gate demo: open {base_url}/ in a browser.\n"
        "  The embedded DEVELOPMENT IdP signs you in as a test user; never use it in"
        " production.\n",
        flush=True,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saml-gate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the example app behind the gate with the dev IdP")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--state-dir", default=".saml-gate", help="where dev keys are kept")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
