"""Structured logs: one JSON object per line, for log collectors.

Selected with LOG_FORMAT=json (see settings.LOGGING); local runs keep the
plain format, which reads better in a terminal. Every line carries time,
level, logger, message and process, plus whatever a call passed in `extra`,
so that `logger.info("round ended", extra={"room": code})` can be filtered
by room without parsing the message.
"""

import json
import logging
from datetime import UTC, datetime

# The attributes every LogRecord has; anything else on a record came from
# `extra` (or from a library that sets its own, like Django's `request`).
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}


def _plain(value):
    """A value json.dumps can write; objects it cannot become their str()."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = _plain(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii keeps every line 7-bit clean, whatever a player typed.
        return json.dumps(entry, ensure_ascii=True)
