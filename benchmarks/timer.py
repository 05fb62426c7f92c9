"""Durable timer accuracy: how late a 100 ms ``workflow.sleep`` fires.

``python -m benchmarks.timer [--quick]``: a few workflows each sleep 100 ms in a loop (200 sleeps in all, 20 in
quick mode), so several timers are armed at once as in real use. The overshoot of one sleep, *seen inside the
workflow*, is the real time at which the workflow resumes after the ``await`` (read with
``time.clock_gettime(CLOCK_REALTIME)``, which the workflow guard leaves alone, for this measurement only: the
value is returned, never decided on) minus the ``fire_at`` recorded in its ``TimerStarted``. ``TimerFired`` is
recorded 5 ms ahead and held by the workflow process until ``fire_at``, so this is the hold's wake-up and the
event applied, or, when the commit took longer than the lead, what it overran. Targets: p50 at most 1.0 ms, p99
at most 2.0 ms. Shown too: how many sleeps resumed before ``fire_at`` (must be 0), the moment ``TimerFired`` was
recorded minus ``fire_at`` (negative: ahead), and the resume minus the moment ``workflow.sleep`` was called minus
100 ms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import events, workflow
from benchmarks._report import met_text, percentile, report

TARGET_P50_MS = 1.0
TARGET_P99_MS = 2.0
SLEEP_S = 0.1


def _real_time() -> float:
    return time.clock_gettime(time.CLOCK_REALTIME)


@workflow.defn
async def sleeper(count: int) -> list[list[float]]:
    """Sleep 100 ms ``count`` times; for each sleep, the real time it was called and the real time it resumed."""
    seen = []
    for _ in range(count):
        called = _real_time()
        await workflow.sleep(SLEEP_S)
        seen.append([called, _real_time()])
    return seen


def overshoots(history: list[events.Event], seen: list[list[float]]) -> dict[str, list[float]]:
    """Per sleep of ``history`` (timers in order) and ``seen`` (its real call and resume times), in milliseconds:
    resumed - fire_at (``inside``), recorded - fire_at (``recorded``), resumed - called - 100 ms (``requested``)."""
    started: dict[int, events.TimerStarted] = {}
    fired: list[tuple[events.TimerStarted, events.TimerFired]] = []
    for event in history:
        if isinstance(event, events.TimerStarted):
            started[event.timer_id] = event
        elif isinstance(event, events.TimerFired):
            fired.append((started[event.timer_id], event))
    assert len(fired) == len(seen), (len(fired), len(seen))
    out: dict[str, list[float]] = {"inside": [], "recorded": [], "requested": []}
    for (begun, done), (called, resumed) in zip(fired, seen, strict=True):
        fire_at = begun.fire_at.timestamp()
        out["inside"].append((resumed - fire_at) * 1000)
        out["recorded"].append((done.recorded_at.timestamp() - fire_at) * 1000)
        out["requested"].append((resumed - called - SLEEP_S) * 1000)
    return out


def measure(data: Path, workflows: int, sleeps: int) -> dict[str, Any]:
    """``workflows`` workflows of ``sleeps`` sleeps each, started 10 ms apart; the overshoot samples."""
    with aion.Engine(data, workflows=[sleeper]) as engine:
        handles = []
        for _ in range(workflows):
            handles.append(engine.start_workflow(sleeper, sleeps))
            time.sleep(0.01)  # spread the timers over the 100 ms instead of firing them all at once
        samples: dict[str, list[float]] = {"inside": [], "recorded": [], "requested": []}
        for handle in handles:
            seen = handle.result(timeout=120)
            for name, values in overshoots(handle.history(), seen).items():
                samples[name] += values
    inside = samples["inside"]
    p50, p99 = percentile(inside, 50), percentile(inside, 99)
    early = sum(1 for value in inside if value < 0)
    return {
        "sleeps": len(inside),
        "workflows": workflows,
        "overshoot_p50_ms": p50,
        "overshoot_p99_ms": p99,
        "overshoot_max_ms": max(inside),
        "resumed_early": early,
        "recorded_p50_ms": percentile(samples["recorded"], 50),
        "recorded_p99_ms": percentile(samples["recorded"], 99),
        "over_requested_p50_ms": percentile(samples["requested"], 50),
        "over_requested_p99_ms": percentile(samples["requested"], 99),
        "target_p50_ms": TARGET_P50_MS,
        "target_p99_ms": TARGET_P99_MS,
        "met": p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS and early == 0,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 sleeps (for CI)")
    args = parser.parse_args()
    workflows, sleeps = (2, 10) if args.quick else (4, 50)
    with tempfile.TemporaryDirectory(prefix="aion-bench-timer-") as tmp:
        r = measure(Path(tmp, "data"), workflows, sleeps)
    met = met_text(r["overshoot_p50_ms"] <= TARGET_P50_MS and r["overshoot_p99_ms"] <= TARGET_P99_MS)
    rows = [
        (
            "workflow resumed - fire_at (inside the workflow)",
            r["overshoot_p50_ms"],
            r["overshoot_p99_ms"],
            f"p50 ≤ {TARGET_P50_MS:g}, p99 ≤ {TARGET_P99_MS:g}",
            met,
        ),
        ("sleeps resumed before fire_at", r["resumed_early"], "", "0", met_text(r["resumed_early"] == 0)),
        ("TimerFired recorded - fire_at (negative: ahead)", r["recorded_p50_ms"], r["recorded_p99_ms"], "", ""),
        ("workflow resumed - sleep called - 100 ms", r["over_requested_p50_ms"], r["over_requested_p99_ms"], "", ""),
    ]
    title = f"overshoot of {r['sleeps']} sleeps of 100 ms ({workflows} workflows at once)"
    report("timer", title, ["overshoot", "p50 ms", "p99 ms", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
