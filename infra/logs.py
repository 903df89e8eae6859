"""Log formats: plain lines for people (the default), JSON lines for Loki/ELK (`LOG_FORMAT=json`).

Structured fields travel on a record as `extra={"fields": {...}}` (signaling/observe.py
logs every signaling event that way). The plain format appends them as
`key=value` after the message; the JSON format makes them keys of the line's
object, next to `time`, `level`, `logger` and `message` (which a field never
overrides), with the traceback, if any, under `exc`.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_RESERVED = frozenset({"time", "level", "logger", "message", "exc"})


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    """Log one event as its message, with `event` and `fields` as the record's structured fields."""
    logger.info(event, extra={"fields": {"event": event, **fields}})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def _plain_value(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or PLAIN_FORMAT, datefmt, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        # `event` is the message itself on the signaling lines: not said twice.
        fields = {
            k: v for k, v in _fields(record).items() if not (k == "event" and v == record.msg)
        }
        if not fields:
            return line
        return line + " " + " ".join(f"{k}={_plain_value(v)}" for k, v in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            if key not in _RESERVED:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exc"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
