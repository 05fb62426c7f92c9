"""An engine on a Ray queue for the SIGKILL test: ``python -m tests.ray_executor.ray_engine_proc DATA LOG GATES
ADDRESS COUNT``. Starts ``fan-out`` (COUNT gated activities on Ray), prints ``ready``, then runs until killed."""

from __future__ import annotations

import sys
import threading

import aion
from tests.ray_executor import flows


def main() -> None:
    data, log, gates, address, count = sys.argv[1:6]
    queues = {"ray": aion.RayQueue(address=address, num_cpus=0.25)}
    engine = aion.Engine(
        data, workflows=flows.WORKFLOWS, activities=flows.ACTIVITIES, activity_workers=1, task_queues=queues
    )
    engine.start()
    if engine.store.get_run("fan-out") is None:
        engine.start_workflow(flows.fan_out_gated, log, gates, int(count), workflow_id="fan-out")
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
