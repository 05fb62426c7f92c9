"""An engine with schedules in its own process, for tests that kill it:
``python -m tests.schedules.engine_proc DATA CATCHUP_SECONDS``.

On first start it creates schedule ``every`` (1 s interval, ``quick``) with the given catch-up window; on later
starts it resumes it. Prints ``ready``, then runs until killed.
"""

from __future__ import annotations

import sys
import threading

import aion
from aion.schedules import SchedulePolicy, ScheduleSpec
from tests.schedules import flows


def main() -> None:
    data, catchup = sys.argv[1], float(sys.argv[2])
    engine = aion.Engine(data, workflows=flows.ALL, activity_workers=1)
    engine.start()
    if "every" not in engine.store.schedule_ids():
        engine.create_schedule(
            "every",
            flows.quick,
            1,
            spec=ScheduleSpec(interval=1),
            policy=SchedulePolicy(overlap="allow_all", catchup_window=catchup),
        )
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
