"""The testing kit's time skipping: real seconds for a workflow that sleeps 30 days, then waits an hour for a
signal that never comes (it times out).

``python -m benchmarks.testing_env [--quick]``: starts a ``WorkflowEnvironment`` once (that start, an engine's,
is timed apart), then runs the workflow several times and times each from ``start_workflow`` to its result.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from typing import Any

from aion import workflow
from aion.testing import WorkflowEnvironment
from benchmarks._report import report


@workflow.defn
async def month_then_an_hour() -> str:
    """Sleep 30 days, then wait an hour for an approval that never comes."""
    await workflow.sleep(timedelta(days=30))
    try:
        return str(await workflow.wait_signal("approve", timeout=timedelta(hours=1)))
    except TimeoutError:
        return "timed out"


def measure(runs: int) -> dict[str, Any]:
    """Time the environment's start, then ``runs`` runs of the workflow."""
    began = time.perf_counter()
    with WorkflowEnvironment(workflows=[month_then_an_hour]) as env:
        started = time.perf_counter() - began
        walls = []
        for _ in range(runs):
            began = time.perf_counter()
            assert env.start_workflow(month_then_an_hour).result(timeout=60) == "timed out"
            walls.append(time.perf_counter() - began)
        virtual_days = (env.now() - env.engine.store.list_workflows(limit=1)[0].start_time).total_seconds() / 86_400
    return {
        "runs": runs,
        "environment_start_s": started,
        "thirty_day_test_p50_ms": statistics.median(walls) * 1000,
        "thirty_day_test_max_ms": max(walls) * 1000,
        "virtual_days_last_run": virtual_days,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 runs (for CI)")
    args = parser.parse_args()
    r = measure(3 if args.quick else 20)
    rows = [
        ("environment start (an engine)", r["environment_start_s"] * 1000),
        ("30-day sleep + 1-hour signal timeout, p50", r["thirty_day_test_p50_ms"]),
        ("30-day sleep + 1-hour signal timeout, max", r["thirty_day_test_max_ms"]),
    ]
    report("testing_env", f"time skipping: {r['runs']} runs, real ms", ["step", "ms"], rows, r)


if __name__ == "__main__":
    main()
