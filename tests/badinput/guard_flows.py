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


@workflow.defn
async def guarded(case: str) -> str:
    """Make call ``case``; return the guard's error code, or ``allowed``."""
    try:
        _calls()[case]()
    except NonDeterministicCallError as error:
        return error.code
    return "allowed"
