"""An optional JSON log formatter that keeps the auth events' fields at the top level.

handler.setFormatter(saml_gate.ops.logs.JsonFormatter())
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from saml_gate.ops.events import EVENT_FIELDS


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
