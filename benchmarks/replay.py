"""Replay speed: re-executing a workflow through a 10,000-event history.

``python -m benchmarks.replay [--quick]``: a real run records the history first (a workflow doing 3,333 no-op
activities in batches of 100 run in parallel: 10,001 events; 1,001 in quick mode). Then the history is read
from the store and replayed to its end with ``WorkflowRuntime(fn, started).replay(history)``, the same call a
workflow process makes when it (re)starts, several times; each replay is timed alone, in this process (no
process start, no pipe). Reading and decoding the history from the store is timed separately.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, events, workflow
from aion.workflow._runtime import WorkflowRuntime
from benchmarks._report import report

BATCH = 100
#: The target: a 10,000-event history replayed in at most this many ms (median).
TARGET_MS = 30.0


@activity.defn
def noop() -> None:
    """Do nothing."""


@workflow.defn
async def batches(activities: int) -> int:
    """Run ``activities`` no-op activities, ``BATCH`` at a time in parallel."""
    done = 0
    while done < activities:
        size = min(BATCH, activities - done)
        await workflow.gather(*(workflow.execute_activity(noop, start_to_close_timeout=60) for _ in range(size)))
        done += size
    return done


def measure(data: Path, activities: int, repeats: int) -> dict[str, Any]:
    """Record one run of ``activities`` activities, then time ``repeats`` replays of its history."""
    with aion.Engine(data, workflows=[batches], activities=[noop]) as engine:
        handle = engine.start_workflow(batches, activities)
        handle.result(timeout=600)
        reads = []
        for _ in range(repeats):
            began = time.perf_counter()
            history = engine.store.read_run(handle.workflow_id)
            reads.append(time.perf_counter() - began)
    started = history[0]
    assert isinstance(started, events.WorkflowStarted)
    assert isinstance(history[-1], events.WorkflowCompleted)
    replays = []
    for _ in range(repeats):
        runtime = WorkflowRuntime(batches, started)
        began = time.perf_counter()
        runtime.replay(history)
        replays.append(time.perf_counter() - began)
    best, median = min(replays), statistics.median(replays)
    return {
        "events": len(history),
        "repeats": repeats,
        "replay_median_ms": median * 1000,
        "replay_min_ms": best * 1000,
        "replay_events_per_s": len(history) / median,
        "read_decode_median_ms": statistics.median(reads) * 1000,
        # The target is for 10,000 events: the quick mode's 1,000 have none.
        "target_ms": TARGET_MS if len(history) >= 10_000 else None,
        "met": median * 1000 <= TARGET_MS if len(history) >= 10_000 else None,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1,001-event history (for CI)")
    args = parser.parse_args()
    activities = 333 if args.quick else 3333
    with tempfile.TemporaryDirectory(prefix="aion-bench-replay-") as tmp:
        r = measure(Path(tmp, "data"), activities, 3 if args.quick else 7)
    rows = [
        ("replay to the end (median)", r["replay_median_ms"], f"{r['replay_events_per_s']:,.0f} events/s"),
        ("replay to the end (best)", r["replay_min_ms"], ""),
        ("read + decode from the store (median)", r["read_decode_median_ms"], ""),
    ]
    report("replay", f"replay of a {r['events']:,}-event history", ["step", "ms", ""], rows, r)


if __name__ == "__main__":
    main()
