"""Schedule fire lateness: how long after its nominal time a fire's start is durable.

``python -m benchmarks.schedules [--quick]``: 100 schedules (10 in quick mode) at 1 s intervals run for 5 s (3 s in
quick mode). The lateness of one fire is the ``recorded_at`` of its ``ScheduleFired`` (committed in the same
transaction as its workflow's ``WorkflowStarted``) minus its ``fire_at``. All schedules fire at the same second,
so the p99 measures a burst of starts. Target: p99 under 50 ms for 100 schedules.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import events, workflow
from aion.schedules import ScheduleSpec
from benchmarks._report import met_text, percentile, report

TARGET_P99_MS = 50.0


@workflow.defn
async def nothing() -> None:
    """Returns at once."""


def measure(data: Path, schedules: int, seconds: float) -> dict[str, Any]:
    """``schedules`` schedules at 1 s for ``seconds``; the lateness samples (ms)."""
    with aion.Engine(data, workflows=[nothing]) as engine:
        for index in range(schedules):
            engine.create_schedule(f"s{index}", nothing, spec=ScheduleSpec(interval=1))
        time.sleep(seconds)  # a benchmark runs for a set time
        lateness = [
            (event.recorded_at - event.fire_at).total_seconds() * 1000
            for index in range(schedules)
            for event in engine.store.read_schedule(f"s{index}")
            if isinstance(event, events.ScheduleFired)
        ]
    p99 = percentile(lateness, 99)
    return {
        "schedules": schedules,
        "fires": len(lateness),
        "lateness_p50_ms": percentile(lateness, 50),
        "lateness_p99_ms": p99,
        "lateness_max_ms": max(lateness),
        "target_p99_ms": TARGET_P99_MS,
        "met": p99 < TARGET_P99_MS,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 schedules for 3 s (for CI)")
    args = parser.parse_args()
    schedules, seconds = (10, 3.0) if args.quick else (100, 5.0)
    with tempfile.TemporaryDirectory(prefix="aion-bench-schedules-") as tmp:
        r = measure(Path(tmp, "data"), schedules, seconds)
    met = met_text(r["met"])
    rows = [
        (
            "ScheduleFired recorded - fire_at",
            r["lateness_p50_ms"],
            r["lateness_p99_ms"],
            r["lateness_max_ms"],
            f"p99 < {TARGET_P99_MS:g}",
            met,
        )
    ]
    title = f"lateness of {r['fires']} fires of {schedules} schedules at 1 s intervals"
    report("schedules", title, ["lateness", "p50 ms", "p99 ms", "max ms", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
