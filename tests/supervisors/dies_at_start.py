"""A preload module for zygote start-up tests: imported in a zygote (never in the test process), it kills its
process with SIGKILL as long as fewer than ``DIES_AT_START_TIMES`` deaths are written in ``DIES_AT_START_FILE``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

_record = Path(os.environ["DIES_AT_START_FILE"])
_deaths = len(_record.read_text().splitlines()) if _record.exists() else 0
if os.getpid() != int(os.environ["DIES_AT_START_OWNER"]) and _deaths < int(os.environ["DIES_AT_START_TIMES"]):
    with _record.open("a") as out:
        out.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)
