"""A tiny demo of the event store and the recorder: ``python -m aion.demo_store``.

Creates a temporary data directory, appends a small workflow history through the recorder, reads it back
from the store and prints it with the derived run record and timer rows. A placeholder until the workflow demo
exists.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta

from aion._ids import new_run_id
from aion.clock import SYSTEM_CLOCK
from aion.events import (
    ActivityCompleted,
    ActivityScheduled,
    ActivityStarted,
    TimerStarted,
    WorkflowCompleted,
    WorkflowStarted,
)
from aion.recorder import start_recorder
from aion.store import open_store


def main() -> None:
    """Append a history through the recorder, then print what the store holds."""
    with tempfile.TemporaryDirectory(prefix="aion-demo-") as data_dir:
        clock = SYSTEM_CLOCK
        store = open_store(data_dir, clock=clock)
        recorder = start_recorder(store)
        wf = "order-42"
        try:
            head = 0
            for events in (
                [WorkflowStarted(workflow_id=wf, workflow_type="Order", input={"sku": "A1"}, run_id=new_run_id())],
                [ActivityScheduled(workflow_id=wf, activity_id=1, activity_type="charge", input={"eur": 12})],
                [ActivityStarted(workflow_id=wf, activity_id=1, attempt=1)],
                [ActivityCompleted(workflow_id=wf, activity_id=1, result="paid", attempt=1)],
                [TimerStarted(workflow_id=wf, timer_id=1, fire_at=clock.now() + timedelta(hours=1))],
            ):
                head = recorder.append(wf, events, head).get(timeout=10)[-1].seq
            print(f"data dir: {data_dir}")
            print(f"timers while running: {store.all_timers()}")
            recorder.append(wf, [WorkflowCompleted(workflow_id=wf, result="shipped")], head).get(timeout=10)
        finally:
            recorder.stop()
        for event in store.read_history(wf):
            print(f"{event.seq:3}  {event.recorded_at:%H:%M:%S.%f}  {event.type}")
        run = store.get_run(wf)
        assert run is not None
        print(f"run {run.run_id}: {run.workflow_type} {run.status}, head {run.head_seq}")
        print(f"timers after completion: {store.all_timers()}")
        print(f"recorder: {recorder.stats()}")
        store.close()


if __name__ == "__main__":
    main()
