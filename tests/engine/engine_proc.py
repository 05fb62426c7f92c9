"""An engine in its own process, for tests that kill it: ``python -m tests.engine.engine_proc DATA LOG COUNT``.

It starts COUNT ``steps`` workflows of 6 activities and one ``waits_for_signals`` workflow that it signals
twice, prints ``ready`` once the signals are durable, then runs until it is killed.
"""

from __future__ import annotations

import sys
import threading

import aion
from tests.engine import flows


def main() -> None:
    data, log, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    engine = aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=2)
    engine.start()
    for i in range(count):
        engine.start_workflow(flows.steps, log, 6, workflow_id=f"steps-{i}")
    waiter = engine.start_workflow(flows.waits_for_signals, log, 3, workflow_id="signals")
    waiter.signal("item", "a")
    waiter.signal("item", "b")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
