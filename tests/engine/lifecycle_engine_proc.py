"""An engine process for lifecycle crash tests (run with ``python -m tests.engine.lifecycle_engine_proc``).

Arguments: SCENARIO DATA LOG GATES.

Scenarios: ``timer`` (a 1.5 s sleep), ``cleanup`` (a workflow cancelled while its activity heartbeats, whose
clean-up activity then waits on a gate), ``continue`` (a workflow that continues as new every 0.1 s). Prints
``ready`` when the scenario is under way, then runs until killed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import aion
from tests.engine import activity_flows as af
from tests.engine import flows
from tests.engine import lifecycle_flows as lf


def main() -> None:
    scenario, data, log, gates = sys.argv[1:5]
    engine = aion.Engine(data, workflows=[*lf.WORKFLOWS, flows.sleeper], activities=af.ACTIVITIES, activity_workers=2)
    engine.start()
    if scenario == "timer":
        engine.start_workflow(flows.sleeper, log, 1.5, workflow_id="sleepy")
    elif scenario == "cleanup":
        handle = engine.start_workflow(lf.cleans_up, log, gates, True, workflow_id="cleanup")
        deadline = time.monotonic() + 30
        while not Path(gates, "heartbeating.started").exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        handle.cancel("crash test")
    elif scenario == "continue":
        engine.start_workflow(lf.forever_continuing, log, 0, workflow_id="looping")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
