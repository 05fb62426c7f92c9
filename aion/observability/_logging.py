"""Logging set-up for ``aion serve``: text or JSON lines, with the structured fields of each record.

Engine code logs through the stdlib ``logging`` under the ``aion`` hierarchy (module loggers: ``aion.engine.*``,
``aion.recorder``, ``aion.control.*``, ``aion.observability.*``) and the supervision library under
``supervisors``. Records about one workflow carry ``workflow_id``, ``run_id`` (and ``activity_id``,
``workflow_type``, ``activity_type``, ``attempt``...) as attributes given with ``extra=``; the JSON formatter
writes them as keys of the line's object, the text formatter appends them as ``key=value``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from aion.errors import InvalidArgumentError

#: The structured fields a record may carry (given with ``extra=``), in the order the text format shows them.
FIELDS = (
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity_id",
    "activity_type",
    "task_queue",
    "attempt",
    "error",
    "next_attempt_at",
    "reason",
    "child_id",
    "supervisor",
    "data_dir",
    "resumed",
    "blocked",
    "paused",
    "schedules",
    "cause",
    "reset_from_run_id",
    "to_seq",
    "schedule_id",
    "fire_at",
    "count",
)

#: ``--log-format`` choices.
FORMATS = ("text", "json")

#: The loggers ``configure_logging`` sets the level of: aion's own, and the supervision library's.
LOGGERS = ("aion", "supervisors")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields present on ``record``."""
    values = record.__dict__
    return {name: values[name] for name in FIELDS if name in values}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``ts``, ``level``, ``logger``, ``message``, the structured
    fields, and ``exc`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(record_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of text, its structured fields appended."""
        text = super().format(record)
        fields = record_fields(record)
        if not fields:
            return text
        extra = " ".join(f"{name}={value}" for name, value in fields.items())
        head, sep, tail = text.partition("\n")
        return f"{head} {extra}{sep}{tail}"


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send the ``aion`` and ``supervisors`` loggers' records at ``level`` and above to ``stream`` (stderr) in
    ``fmt`` (``text`` or ``json``); returns the handler installed. ``InvalidArgumentError`` for an unknown level
    or format."""
    name = level.upper()
    if not isinstance(logging.getLevelName(name), int):
        raise InvalidArgumentError(f"unknown log level {level!r} (one of: DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown log format {fmt!r} (one of: {', '.join(FORMATS)})")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for logger_name in LOGGERS:
        logger = logging.getLogger(logger_name)
        logger.setLevel(name)
        logger.addHandler(handler)
        logger.propagate = False
    return handler
