"""Crash and restart of one workflow process: SIGKILL to the replayed run dispatching its next activity.

``python -m benchmarks.crash_restart [--quick] [--kills N]``: a workflow runs a chain of activities; in the middle
of it, an activity SIGKILLs the workflow's process (the pid comes from ``engine.supervision_tree()``) and
returns the moment of the kill. The type supervisor restarts the process, which replays the run's history and
then schedules the next activity of the chain. Measured, per kill, from the ``os.kill`` call to:

- the ``ActivityScheduled`` record of the next activity (the replayed run's command, durable, dispatched), and
- the first line of that activity in its worker (the dispatch has arrived).

The targets (p50 at most 4 ms with a ~10-event history, at most 20 ms with ~1,000 events) are checked against the
second, stricter figure. Histories of about 10, 100 and 1,000 events are built by a prefix of no-op activities (3
events each) run in parallel before the chain; the history length each replay saw is reported. One workflow is
killed up to a few times (its history grows by 7 events per kill), so ~1,000-event histories need not be rebuilt 200
times. Kills are made one at a time with nothing else running.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, events, workflow
from benchmarks._report import met_text, percentile, report

#: nominal history size -> the target p50 (ms) of kill → next activity started
TARGET_P50_MS = {10: 4.0, 1000: 20.0}
#: nominal history size -> kills made on each workflow (more kills per workflow for long histories)
KILLS_PER_WORKFLOW = {10: 1, 100: 2, 1000: 10}
#: events of one kill cycle: SignalReceived("go"), the killer's 3 events, and the next activity's 3 events
EVENTS_PER_CYCLE = 7


@activity.defn
def noop() -> None:
    """Do nothing."""


@activity.defn
def kill_process(pid: int) -> float:
    """SIGKILL the workflow process ``pid`` and return the moment of the kill (epoch seconds)."""
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    return killed_at


@activity.defn
def started_at() -> float:
    """Return the moment this activity started (epoch seconds)."""
    return time.time()


@workflow.defn
async def chain(prefix: int, cycles: int) -> int:
    """Run ``prefix`` no-op activities in parallel (to grow the history), then ``cycles`` times: wait for the
    signal ``go`` carrying the process's pid, run the activity that kills this process, run the next one."""
    await workflow.gather(*(workflow.execute_activity(noop, start_to_close_timeout=60) for _ in range(prefix)))
    for _ in range(cycles):
        pid = await workflow.wait_signal("go")
        await workflow.execute_activity(kill_process, pid, start_to_close_timeout=30)
        await workflow.execute_activity(started_at, start_to_close_timeout=30)
    return cycles


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.002) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def one_kill(engine: aion.Engine, handle: aion.WorkflowHandle, cycle: int) -> dict[str, float]:
    """Make kill number ``cycle`` (0-based) of ``handle``'s workflow; its figures."""
    pid = wait_for(lambda: engine.workflow_pid(handle.workflow_id))
    handle.signal("go", pid)

    def next_done() -> list[events.Event] | None:
        history = handle.history()
        kinds = {e.activity_id: e.activity_type for e in history if isinstance(e, events.ActivityScheduled)}
        done = [e for e in history if isinstance(e, events.ActivityCompleted) and kinds[e.activity_id] == "started_at"]
        return history if len(done) > cycle else None

    # Poll gently: the figures come from recorded timestamps, and a tight poll (reading and decoding the history)
    # would compete with the engine's threads for the GIL during the very window being measured.
    history: list[events.Event] = wait_for(next_done, interval=0.05)
    types = {e.activity_id: e.activity_type for e in history if isinstance(e, events.ActivityScheduled)}
    killers = [e for e in history if isinstance(e, events.ActivityCompleted) and types[e.activity_id] == "kill_process"]
    nexts = [e for e in history if isinstance(e, events.ActivityScheduled) and e.activity_type == "started_at"]
    starts = [e for e in history if isinstance(e, events.ActivityCompleted) and types[e.activity_id] == "started_at"]
    killed_at = float(killers[cycle].result)
    scheduled = nexts[cycle]
    return {
        "history_events": scheduled.seq - 1,
        "to_scheduled_ms": (scheduled.recorded_at.timestamp() - killed_at) * 1000,
        "to_started_ms": (float(starts[cycle].result) - killed_at) * 1000,
    }


def measure(data: Path, size: int, kills: int) -> dict[str, Any]:
    """``kills`` kills of workflows whose history holds about ``size`` events at the kill."""
    per_workflow = KILLS_PER_WORKFLOW[size]
    prefix = max(0, round((size - 5) / 3))  # WorkflowStarted + 3 per no-op + SignalReceived + the killer's 3
    samples: list[dict[str, float]] = []
    workflows = -(-kills // per_workflow)
    # Every workflow keeps its process while it waits for its "go" (the kill needs a pid): with a smaller
    # max_resident, those waiting beyond it would be evicted (they wait on a signal) and have no pid to kill.
    with aion.Engine(
        data,
        workflows=[chain],
        activities=[noop, kill_process, started_at],
        max_restarts=10_000,
        max_resident=workflows,
        evict_idle_after=None,  # nor evicted for idleness while they wait their turn
    ) as engine:
        handles = []
        remaining = kills
        while remaining > 0:
            cycles = min(per_workflow, remaining)
            handles.append((engine.start_workflow(chain, prefix, cycles), cycles))
            remaining -= cycles
        for handle, _ in handles:  # wait until every prefix has run: nothing else runs during the kills
            wait_for(lambda h=handle: len(h.history()) >= 1 + 3 * prefix, timeout=600, interval=0.01)
        for handle, cycles in handles:
            for cycle in range(cycles):
                samples.append(one_kill(engine, handle, cycle))
            handle.result(timeout=60)
    to_started = [s["to_started_ms"] for s in samples]
    to_scheduled = [s["to_scheduled_ms"] for s in samples]
    lengths = [s["history_events"] for s in samples]
    p50 = percentile(to_started, 50)
    return {
        "history_size": size,
        "kills": len(samples),
        "history_events_min": min(lengths),
        "history_events_max": max(lengths),
        "kill_to_scheduled_p50_ms": percentile(to_scheduled, 50),
        "kill_to_scheduled_p99_ms": percentile(to_scheduled, 99),
        "kill_to_started_p50_ms": p50,
        "kill_to_started_p99_ms": percentile(to_started, 99),
        "target_p50_ms": TARGET_P50_MS.get(size),
        "met": (p50 <= TARGET_P50_MS[size]) if size in TARGET_P50_MS else None,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 kills per history size (for CI)")
    parser.add_argument("--kills", type=int, default=None, help="kills per history size (default 200)")
    args = parser.parse_args()
    kills = args.kills or (10 if args.quick else 200)
    results = []
    with tempfile.TemporaryDirectory(prefix="aion-bench-crash-") as tmp:
        for size in KILLS_PER_WORKFLOW:
            results.append(measure(Path(tmp, f"data-{size}"), size, kills))
    rows = [
        (
            f"{r['history_events_min']}-{r['history_events_max']}",
            r["kills"],
            r["kill_to_scheduled_p50_ms"],
            r["kill_to_scheduled_p99_ms"],
            r["kill_to_started_p50_ms"],
            r["kill_to_started_p99_ms"],
            f"p50 ≤ {r['target_p50_ms']:g}" if r["target_p50_ms"] else "",
            met_text(r["met"]),
        )
        for r in results
    ]
    columns = [
        "history events",
        "kills",
        "→ scheduled p50 ms",
        "p99 ms",
        "→ activity started p50 ms",
        "p99 ms",
        "target",
        "met",
    ]
    report(
        "crash_restart",
        "SIGKILL of a workflow process → its replay dispatches the next activity",
        columns,
        rows,
        {"cases": results},
    )


if __name__ == "__main__":
    main()
