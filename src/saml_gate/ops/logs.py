"""Where the gate's log lines go, and what they never carry.

- :func:`install_log_defaults` (at start-up): when nothing configured logging (plain
  ``uvicorn app:app`` configures only uvicorn's own loggers), the ``saml_gate`` loggers print at
  INFO on stderr, so auth events are visible; as soon as the root logger has a handler, that
  handler alone prints them (never twice). It also redacts SAML messages from uvicorn's access
  log: a query's ``SAMLRequest=``/``SAMLResponse=``/``Signature=`` values become ``…``.
- :class:`JsonFormatter`, optional, keeps the auth events' fields at the top level:
  ``handler.setFormatter(saml_gate.ops.logs.JsonFormatter())``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

from saml_gate.ops.events import EVENT_FIELDS

#: Query parameters that carry a SAML message or its signature: never in a log line.
_SAML_VALUE: Final = re.compile(r"((?:^|[?&;])(?:SAMLRequest|SAMLResponse|Signature)=)[^&;\s\"]*")
#: Loggers that print URLs with their query: uvicorn's access log (and the gate's own).
REDACTED_LOGGERS: Final = ("uvicorn.access", "saml_gate", "saml_gate.auth")


def redact_saml(text: str) -> str:
    """``text`` with the values of SAML message parameters in URLs replaced by ``…``."""
    return _SAML_VALUE.sub(r"\1…", text) if "SAML" in text or "Signature=" in text else text


class RedactSamlMessages(logging.Filter):
    """Rewrites a record's message arguments so no SAML message value reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_saml(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_saml(record.msg)
        return True


class FallbackHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints on stderr only while the root logger has no handler: once the app (or
    ``logging.basicConfig``) gives root one, records reach it by propagation, printed once."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def install_log_defaults() -> None:
    """Idempotent: the fallback handler when logging is not configured, and the redaction."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSamlMessages) for f in logger.filters):
            logger.addFilter(RedactSamlMessages())
    gate = logging.getLogger("saml_gate")
    if gate.handlers or logging.getLogger().handlers:
        return  # configured by someone: leave it to them
    gate.addHandler(FallbackHandler())
    if gate.level == logging.NOTSET:
        gate.setLevel(logging.INFO)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the event fields present."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EVENT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != ():
                data[name] = list(value) if isinstance(value, tuple) else value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


#: Libraries whose INFO lines are noise in the gate's console (schema loading, each HTTP call).
QUIET_LIBRARIES: Final = ("xmlschema", "httpx", "httpcore")


def configure_cli_logging() -> None:
    """The ``saml-gate`` command's console: INFO lines on stderr, libraries' chatter only from
    WARNING, and SAML messages redacted from every access log line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    install_log_defaults()
