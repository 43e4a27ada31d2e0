"""How the proxy reports what went wrong: one log line per failure on the ``saml_gate.proxy``
logger, never a traceback, and an error page for the client when it is not too late."""

from __future__ import annotations

import logging
import re

from starlette.types import Receive, Scope, Send

from saml_gate.errors import GateError
from saml_gate.ip_addresses import ClientAddresses, peer_of
from saml_gate.web.pages import error_response
from saml_gate.web.sign_in import wants_json

#: Every module of the proxy logs here (the name is part of the logging contract).
log = logging.getLogger("saml_gate.proxy")


def describe_exception(exc: BaseException) -> str:
    """An exception on one short line, without the raw bytes h11 quotes in some messages (an
    upstream header line may hold a cookie)."""
    text = re.split(r"bytearray\(|\bb['\"]", str(exc), maxsplit=1)[0].rstrip(" :")
    return " ".join(f"{type(exc).__name__}: {text}".split())[:200]


def log_failure(scope: Scope, error: GateError) -> None:
    """One line per proxy failure, no traceback."""
    log.warning(
        "saml-gate proxy: %s %r: %s (%s)",
        scope["method"],
        scope["path"],
        error.code,
        error.detail,
        extra={"event": "proxy_error", "error_code": error.code},
    )


async def answer_failure(
    scope: Scope, receive: Receive, send: Send, error: GateError, *, debug: bool
) -> None:
    """Log ``error`` and answer the request with its error page (HTML or JSON, as accepted),
    with the detail for a loopback client not behind a proxy (as the gate's own pages) or with
    ``debug``."""
    log_failure(scope, error)
    raw = scope["headers"]
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    local = ClientAddresses.is_local(peer_of(scope), raw)
    response = error_response(error, wants_json=wants_json(headers), show_detail=debug or local)
    await response(scope, receive, send)
