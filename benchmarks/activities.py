"""Activity throughput and dispatch latency through the worker pool.

``python -m benchmarks.activities [--quick]``: no-op activities run by workflows that each call them in a
sequence, with 1, 10 and 100 workflows in flight. Prints activities/s and the dispatch-to-start latency (from
the commit of ``ActivityScheduled`` to the activity's first line in its worker), p50/p99.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, events, workflow
from benchmarks._report import percentile, report


@activity.defn
def noop() -> float:
    """Return the moment the activity started (epoch seconds)."""
    return time.time()


@workflow.defn
async def sequence(count: int) -> int:
    """Run ``count`` no-op activities one after another."""
    for _ in range(count):
        await workflow.execute_activity(noop, start_to_close_timeout=30)
    return count


def run_batch(engine: aion.Engine, workflow_fn: Any, per_workflow: int, in_flight: int, *args: Any) -> dict[str, Any]:
    """Start ``in_flight`` runs of ``workflow_fn(per_workflow, *args)`` at once and wait for all: activities/s and
    dispatch-to-start latencies (from each ``ActivityScheduled``'s record to the activity's first line), p50/p99."""
    began = time.perf_counter()
    handles = [engine.start_workflow(workflow_fn, per_workflow, *args) for _ in range(in_flight)]
    for handle in handles:
        handle.result(timeout=600)
    elapsed = time.perf_counter() - began
    latencies = []
    for handle in handles:
        scheduled: dict[int, float] = {}
        for event in handle.history():
            if isinstance(event, events.ActivityScheduled):
                scheduled[event.activity_id] = event.recorded_at.timestamp()
            elif isinstance(event, events.ActivityCompleted):
                latencies.append((event.result - scheduled[event.activity_id]) * 1000)
    done = per_workflow * in_flight
    return {
        "in_flight": in_flight,
        "activities": done,
        "seconds": elapsed,
        "activities_per_s": done / elapsed,
        "dispatch_to_start_p50_ms": percentile(latencies, 50),
        "dispatch_to_start_p99_ms": percentile(latencies, 99),
    }


def measure(data: Path, in_flight: int, total: int) -> dict[str, Any]:
    """Run ``total`` activities with ``in_flight`` workflows at once; throughput and latency samples."""
    with aion.Engine(data, workflows=[sequence], activities=[noop]) as engine:
        return run_batch(engine, sequence, max(1, total // in_flight), in_flight)


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few hundred activities per case (for CI)")
    args = parser.parse_args()
    total = 200 if args.quick else 2000
    results = []
    with tempfile.TemporaryDirectory(prefix="aion-bench-activities-") as tmp:
        for in_flight in (1, 10, 100):
            results.append(measure(Path(tmp, f"data-{in_flight}"), in_flight, total))
    rows = [
        (
            r["in_flight"],
            r["activities"],
            r["activities_per_s"],
            r["dispatch_to_start_p50_ms"],
            r["dispatch_to_start_p99_ms"],
        )
        for r in results
    ]
    columns = ["workflows in flight", "activities", "activities/s", "dispatch→start p50 ms", "p99 ms"]
    report("activities", "no-op activities through the worker pool", columns, rows, {"cases": results})


if __name__ == "__main__":
    main()
