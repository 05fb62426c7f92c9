"""Workflows that read the clock, entropy or start threads through names bound at import (``from x import y``),
before the guard was installed in their workflow process."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from time import perf_counter
from typing import Any

from aion import workflow
from aion.errors import NonDeterministicCallError


def _calls() -> dict[str, Any]:
    return {
        "from-datetime-now": datetime.now,
        "from-time-perf-counter": perf_counter,
        "os-urandom": lambda: os.urandom(8),
        "thread-start": lambda: threading.Thread(target=lambda: None).start(),
    }


#: The calls the guard must refuse.
GUARDED_CALLS = sorted(_calls())


def _allowed() -> dict[str, Any]:
    return {
        "construct-datetime": lambda: datetime(2020, 1, 2, 3, 4, 5).isoformat(),
        "isinstance-datetime": lambda: isinstance(workflow.now(), datetime),
        "parse-datetime": lambda: datetime.fromisoformat("2020-01-02T03:04:05+00:00").year,
    }


#: Uses of the rebound names that must keep working.
ALLOWED_CALLS = sorted(_allowed())


@workflow.defn
async def guarded(case: str) -> str:
    """Make call ``case``; return the guard's error code, or ``allowed``."""
    try:
        calls = {**_calls(), **_allowed()}
        calls[case]()
    except NonDeterministicCallError as error:
        return error.code
    return "allowed"
