"""An engine in its own process, killed by a test while an update is accepted and not completed:
``python -m tests.api.update_engine_proc DATA GATE``.

It starts ``counter`` (``c``, from 1) and, in a thread, calls its update ``add_later(4, GATE)`` with the update
id ``u-1`` (the handler awaits an activity that waits for the file GATE), prints ``ready`` and runs until it is
killed.
"""

from __future__ import annotations

import sys
import threading

import aion
from tests.api import flows


def main() -> None:
    data, gate = sys.argv[1], sys.argv[2]
    engine = aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=1)
    engine.start()
    handle = engine.start_workflow(flows.counter, 1, workflow_id="c")
    threading.Thread(
        target=lambda: handle.execute_update("add_later", 4, gate, update_id="u-1", timeout=300), daemon=True
    ).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
