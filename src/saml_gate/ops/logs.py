"""Where the gate's log lines go, and what they never carry.

- :func:`install_log_defaults` (at start-up): when nothing configured logging (plain
  ``uvicorn app:app`` configures only uvicorn's own loggers), the ``saml_gate`` loggers print at
  INFO on stderr, so auth events are visible; as soon as the root logger has a handler, that
  handler alone prints them (never twice). It also redacts SAML messages from uvicorn's access
  log: a query's ``SAMLRequest=``/``SAMLResponse=``/``Signature=`` values become ``…``.
- :class:`JsonFormatter`, optional, keeps the auth events' fields at the top level:
  ``handler.setFormatter(saml_gate.ops.logs.JsonFormatter())``.
- :func:`plain_consoles`: whether a line is only printed by the gate's own console handlers,
  as they left it; then :meth:`ConsoleHandler.print_line` prints it without a log record (a
  sign-in's line: most of its cost was logging's record and its passage through the handlers).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

#: The fields every auth log record carries (None when not applicable). Stable: the README
#: documents them and log pipelines depend on them. Also ``saml_gate.ops.events.EVENT_FIELDS``.
EVENT_FIELDS: Final = (
    "event",
    "outcome",
    "error_code",
    "reason",
    "name_id",
    "email",
    "groups",
    "issuer",
    "client",
    "request_id",
    "method",
    "path",
    "idp_initiated",
    "step_up",
    "duration_ms",
)

#: Query parameters that carry a SAML message or its signature: never in a log line.
_SAML_VALUE: Final = re.compile(r"((?:^|[?&;])(?:SAMLRequest|SAMLResponse|Signature)=)[^&;\s\"]*")
#: Loggers that print URLs with their query: uvicorn's access log (and the gate's own).
REDACTED_LOGGERS: Final = ("uvicorn.access", "saml_gate", "saml_gate.auth")


def may_name_saml(text: str) -> bool:
    """Whether :func:`redact_saml` may change ``text`` or a part of it (its own test)."""
    return "SAML" in text or "Signature=" in text


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


#: The console's line: what ``logging.basicConfig(format=...)`` is given by the CLI, too.
LINE_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The gate's console on stderr: ``LEVEL logger: message`` per line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.line_format = logging.Formatter(LINE_FORMAT)
        self.setFormatter(self.line_format)

    def prints_plainly(self) -> bool:
        """Whether a record reaching this handler is printed as :meth:`print_line` prints it:
        its own line format, no filter."""
        return self.formatter is self.line_format and not self.filters

    def print_line(self, levelname: str, name: str, message: str) -> bool:
        """Print the line that a record of ``levelname`` on the logger ``name`` with this
        ``message`` would be (what :meth:`emit` writes). False when writing failed (then the
        caller makes the record, for :meth:`handleError`)."""
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            try:
                stream = self.stream
                stream.write(f"{levelname} {name}: {message}{self.terminator}")
                if hasattr(stream, "flush"):  # as StreamHandler.flush
                    stream.flush()
            except RecursionError:
                raise
            except Exception:
                return False
        return True


class FallbackHandler(ConsoleHandler):
    """Prints on stderr only while the root logger has no handler: once the app (or
    ``logging.basicConfig``) gives root one, records reach it by propagation, printed once."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.root.handlers:
            super().emit(record)

    def print_line(self, levelname: str, name: str, message: str) -> bool:
        return True if logging.root.handlers else super().print_line(levelname, name, message)


def plain_consoles(logger: logging.Logger, level: int) -> list[ConsoleHandler] | None:
    """The handlers a record of ``level`` (which ``logger`` is enabled for) would reach when
    each of them is a :class:`ConsoleHandler` printing it plainly and ``logger``'s filters are
    only :class:`RedactSamlMessages`: then printing the line with each handler's
    :meth:`~ConsoleHandler.print_line` (its arguments redacted when ``logger`` redacts) is what
    ``logger.log`` would do. Else None: anything else (a handler of the app's, a formatter or
    filter set on ours, no handler at all) gets a real record."""
    for f in logger.filters:
        if type(f) is not RedactSamlMessages:
            return None
    found: list[ConsoleHandler] = []
    current: logging.Logger | None = logger
    seen = False
    while current is not None:  # as Logger.callHandlers walks them
        for handler in current.handlers:
            seen = True
            if level < handler.level:
                continue
            if not isinstance(handler, ConsoleHandler) or not handler.prints_plainly():
                return None
            found.append(handler)
        current = current.parent if current.propagate else None
    return found if seen else None


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
    logging.basicConfig(level=logging.INFO, handlers=[ConsoleHandler()])
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    install_log_defaults()
