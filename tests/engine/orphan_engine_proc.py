"""An engine whose activity leaves processes behind: ``python -m tests.engine.orphan_engine_proc DATA PID_DIR``.

Prints ``ready`` once the activity noted its processes' pids, then runs until it is killed."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import aion
from tests.engine import orphan_flows
from tests.helpers import wait_until


def main() -> None:
    data, pid_dir = sys.argv[1], sys.argv[2]
    engine = aion.Engine(
        data, workflows=[orphan_flows.runs_leaver], activities=[orphan_flows.leaves_processes], activity_workers=1
    )
    engine.start()
    engine.start_workflow(orphan_flows.runs_leaver, pid_dir, workflow_id="leaver")
    wait_until(lambda: list(Path(pid_dir).glob("*.pids")), timeout=60)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
