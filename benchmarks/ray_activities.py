"""Activities on the local pool against activities on Ray, in one run.

``python -m benchmarks.ray_activities [--quick]``: no-op activities run by workflows that each call them in a
sequence, with 1, 10 and 100 workflows in flight, once on the ``default`` queue (the local pool, one worker per
CPU) and once on a ``RayQueue`` of a local Ray instance started for the run (one CPU per task, so as many at
once as the local pool). Prints activities/s and the dispatch-to-start latency (from the commit of
``ActivityScheduled`` to the activity's first line, in its worker), p50/p99. Without Ray installed, only the
local pool is measured.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from benchmarks._report import report
from benchmarks.activities import run_batch


@activity.defn
def noop() -> float:
    """Return the moment the activity started (epoch seconds)."""
    return time.time()


@workflow.defn
async def sequence(count: int, queue: str) -> int:
    """Run ``count`` no-op activities on ``queue`` one after another."""
    for _ in range(count):
        await workflow.execute_activity(noop, start_to_close_timeout=60, task_queue=queue)
    return count


def measure(data: Path, executor: str, in_flight: int, total: int) -> dict[str, Any]:
    """Run ``total`` activities with ``in_flight`` workflows at once on ``executor``'s queue."""
    queues: dict[str, Any] = {"ray": aion.RayQueue(num_cpus=1)} if executor == "ray" else {}
    queue = "ray" if executor == "ray" else "default"
    with aion.Engine(data, workflows=[sequence], activities=[noop], task_queues=queues) as engine:
        engine.start_workflow(sequence, 2, queue).result(timeout=600)  # Ray starts its worker processes
        return {"executor": executor, **run_batch(engine, sequence, max(1, total // in_flight), in_flight, queue)}


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a hundred activities per case (for CI)")
    args = parser.parse_args()
    total = 100 if args.quick else 1000
    executors = ["local", "ray"] if _ray_available() else ["local"]
    results = []
    with tempfile.TemporaryDirectory(prefix="aion-bench-ray-") as tmp:
        for executor in executors:
            for in_flight in (1, 10, 100):
                results.append(measure(Path(tmp, f"{executor}-{in_flight}"), executor, in_flight, total))
    rows = [
        (
            r["executor"],
            r["in_flight"],
            r["activities"],
            r["activities_per_s"],
            r["dispatch_to_start_p50_ms"],
            r["dispatch_to_start_p99_ms"],
        )
        for r in results
    ]
    columns = ["executor", "workflows in flight", "activities", "activities/s", "dispatch→start p50 ms", "p99 ms"]
    extra = {"cases": results, "ray": "ray" in executors, "cpus": os.cpu_count()}
    report("ray_activities", "no-op activities: local pool against Ray", columns, rows, extra)


if __name__ == "__main__":
    main()
