"""An engine process for activity crash tests: ``python -m tests.engine.activity_engine_proc DATA LOG GATES [retry]``.

Starts ``backoff`` (an activity failing once, then retried after a 1 s durable backoff) and ``running`` (an
activity that waits on a gate file), or with ``retry`` only ``retrying`` (an activity failing once, whose second
attempt waits on a gate file); prints ``ready``, then runs until killed.
"""

from __future__ import annotations

import sys
import threading

import aion
from tests.engine import activity_flows as af


def main() -> None:
    data, log, gates = sys.argv[1], sys.argv[2], sys.argv[3]
    engine = aion.Engine(data, workflows=af.WORKFLOWS, activities=af.ACTIVITIES, activity_workers=2)
    engine.start()
    retry = {"initial_interval": 1.0, "maximum_attempts": 5}
    if sys.argv[4:] == ["retry"]:
        engine.start_workflow(
            af.call,
            log,
            "fails_then_waits_for_gate",
            [gates],
            {"start_to_close_timeout": 30, "retry_policy": {"initial_interval": 0.05, "maximum_attempts": 5}},
            workflow_id="retrying",
        )
        print("ready", flush=True)
        threading.Event().wait()
    engine.start_workflow(
        af.call, log, "flaky", [1], {"start_to_close_timeout": 30, "retry_policy": retry}, workflow_id="backoff"
    )
    engine.start_workflow(
        af.call,
        log,
        "waits_for_gate",
        [gates],
        {"start_to_close_timeout": 30, "retry_policy": retry},
        workflow_id="running",
    )
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
