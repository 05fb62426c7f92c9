"""Engine recovery: the whole engine SIGKILLed with many workflows in flight, then a new engine on its data.

``python -m benchmarks.engine_recovery [--quick] [--workflows N]``: an engine in a subprocess starts N workflows
(default 1,000; 50 in quick mode) of 3 sequential no-op activities and is SIGKILLed as soon as every start is
durable, with the workflows in flight. Then a new ``aion.Engine`` is started on the same data directory in this
process. Measured from the call to ``Engine.start()``:

- to ``Engine.start()`` returning (it recovers every running workflow: reads its history, spawns its process);
- to the first resumed workflow: the first event of progress (an activity scheduled, started or completed, or a
  workflow completed) recorded by the new engine;
- to all completed: the last ``WorkflowCompleted``.

Target: the first resumed workflow under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

import aion
from aion import activity, events, workflow
from aion.store import open_store
from benchmarks._report import met_text, report

TARGET_FIRST_S = 1.0
PROGRESS = (events.ActivityScheduled, events.ActivityStarted, events.ActivityCompleted, events.WorkflowCompleted)
REPO = Path(__file__).resolve().parents[1]


@activity.defn
def noop() -> None:
    """Do nothing."""


@workflow.defn
async def three_steps() -> int:
    """Run three no-op activities one after another."""
    for _ in range(3):
        await workflow.execute_activity(noop, start_to_close_timeout=30)
    return 3


def serve(data: str, count: int) -> None:
    """The engine to kill (``--serve``): start ``count`` workflows, print ``ready``, run until killed."""
    engine = aion.Engine(data, workflows=[three_steps], activities=[noop])
    engine.start()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: engine.start_workflow(three_steps, workflow_id=f"rec-{i}"), range(count)))
    print("ready", flush=True)
    threading.Event().wait()


def crash(data: Path, count: int) -> int:
    """Run the engine subprocess, SIGKILL it once its starts are durable; how many workflows were running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.engine_recovery", "--serve", str(data), str(count)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"the engine subprocess said {line!r}")
        descendants = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for leftover in alive:  # children die with the engine; never leave one behind if one did not
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
    store = open_store(data, readonly=True)
    try:
        return sum(1 for info in store.list_workflows() if info.is_running)
    finally:
        store.close()


def measure(data: Path, count: int) -> dict[str, Any]:
    """Crash an engine with ``count`` workflows in flight, recover them with a new one; the timings."""
    in_flight = crash(data, count)
    engine = aion.Engine(data, workflows=[three_steps], activities=[noop])
    began_wall, began = time.time(), time.perf_counter()
    engine.start()
    try:
        started = time.perf_counter() - began
        for index in range(count):
            engine.get_workflow(f"rec-{index}").result(timeout=600)
        progress: list[float] = []
        completed: list[float] = []
        for index in range(count):
            for event in engine.get_workflow(f"rec-{index}").history():
                at = event.recorded_at.timestamp()
                if at >= began_wall and isinstance(event, PROGRESS):
                    progress.append(at - began_wall)
                    if isinstance(event, events.WorkflowCompleted):
                        completed.append(at - began_wall)
    finally:
        engine.stop()
    first = min(progress)
    return {
        "workflows": count,
        "in_flight_at_kill": in_flight,
        "engine_start_s": started,
        "first_resumed_s": first,
        "all_completed_s": max(completed),
        "target_first_s": TARGET_FIRST_S,
        "met": first < TARGET_FIRST_S,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 workflows (for CI)")
    parser.add_argument("--workflows", type=int, default=None, help="workflows in flight (default 1,000)")
    parser.add_argument("--serve", nargs=2, metavar=("DATA", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    count = args.workflows or (50 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="aion-bench-recovery-") as tmp:
        r = measure(Path(tmp, "data"), count)
    rows = [
        ("first resumed workflow", r["first_resumed_s"], f"< {TARGET_FIRST_S:g} s", met_text(r["met"])),
        ("Engine.start() returned", r["engine_start_s"], "", ""),
        ("all completed", r["all_completed_s"], "", ""),
    ]
    title = f"new engine after SIGKILL with {r['in_flight_at_kill']:,} of {count:,} workflows in flight"
    report("engine_recovery", title, ["from Engine.start() to", "seconds", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
