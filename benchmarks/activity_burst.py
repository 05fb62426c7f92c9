"""Workflows beside a burst of CPU-bound activities: what activities taking CPU time cost every other run.

``python -m benchmarks.activity_burst [--quick]``: an engine with two local task queues, ``burst`` (one worker per
activity of the burst) and ``default`` (one worker). A workflow runs a burst of CPU-bound activities on ``burst``
(each burns S ms of CPU: two per CPU of the machine, S = 1,500, or 200 with ``--quick``) while short workflows (one
no-op activity on ``default``) are started one after another from one thread until the burst ends. Measured twice
in one run, in new engines, alternated: with the ``burst`` queue's workers off the engine's CPU (the default) and
with ``LocalQueue(use_engine_cpu=True)``. Prints, for each, the short workflows' start-to-result latency p50/p99
during the burst and the burst's own seconds, and the same latency with no burst (the reference). No target: it
shows the trade-off ``use_engine_cpu`` makes (docs/operations.md, "CPU placement").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import activity, workflow
from benchmarks._report import percentile, report

#: Short workflows measured with no burst, for the reference latency.
QUIET_SAMPLES = 100


@activity.defn(task_queue="burst")
def burn(milliseconds: int) -> int:
    """Take ``milliseconds`` of CPU time (of this thread), then return how many loops that was."""
    end = time.thread_time() + milliseconds / 1000
    loops = 0
    while time.thread_time() < end:
        loops += 1
    return loops


@activity.defn
def noop() -> None:
    """Do nothing."""


@workflow.defn
async def burst(count: int, milliseconds: int) -> int:
    """Run ``count`` CPU-bound activities at once."""
    done = await asyncio.gather(
        *(workflow.execute_activity(burn, milliseconds, start_to_close_timeout=600) for _ in range(count))
    )
    return len(done)


@workflow.defn
async def short() -> None:
    """One no-op activity."""
    await workflow.execute_activity(noop, start_to_close_timeout=60)


def _latency_ms(engine: aion.Engine) -> float:
    """Start a short workflow and wait for its result; the milliseconds that took."""
    began = time.perf_counter()
    engine.start_workflow(short).result(timeout=120)
    return (time.perf_counter() - began) * 1000


def measure(data: Path, count: int, milliseconds: int, *, use_engine_cpu: bool) -> dict[str, Any]:
    """One engine, the ``burst`` queue placed as ``use_engine_cpu`` says: latencies with no burst, then during one."""
    queues = {
        "default": aion.LocalQueue(workers=1),
        "burst": aion.LocalQueue(workers=count, use_engine_cpu=use_engine_cpu),
    }
    with aion.Engine(data, workflows=[burst, short], activities=[burn, noop], task_queues=queues) as engine:
        engine.start_workflow(burst, count, 1).result(timeout=120)  # warm: every worker has run once
        quiet = [_latency_ms(engine) for _ in range(QUIET_SAMPLES)]
        began = time.perf_counter()
        handle = engine.start_workflow(burst, count, milliseconds)
        during: list[float] = []
        while not during or handle.describe().status == aion.WorkflowStatus.RUNNING:
            during.append(_latency_ms(engine))
        handle.result(timeout=600)
        burst_s = time.perf_counter() - began
    return {
        "use_engine_cpu": use_engine_cpu,
        "quiet_p50_ms": percentile(quiet, 50),
        "quiet_p99_ms": percentile(quiet, 99),
        "during_samples": len(during),
        "during_p50_ms": percentile(during, 50),
        "during_p99_ms": percentile(during, 99),
        "burst_s": burst_s,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 ms activities (for CI)")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    count, milliseconds = 2 * cpus, 200 if args.quick else 1500
    cases = []
    with tempfile.TemporaryDirectory(prefix="aion-bench-activity-burst-") as tmp:
        for index, use_engine_cpu in enumerate((False, True, False, True)[: 2 if args.quick else 4]):
            cases.append(measure(Path(tmp, f"data-{index}"), count, milliseconds, use_engine_cpu=use_engine_cpu))
    rows = [
        (
            "on every CPU" if c["use_engine_cpu"] else "off the engine's CPU (default)",
            f"{c['quiet_p50_ms']:.2f} / {c['quiet_p99_ms']:.2f}",
            f"{c['during_p50_ms']:.2f} / {c['during_p99_ms']:.2f} ({c['during_samples']})",
            f"{c['burst_s']:.2f}",
        )
        for c in cases
    ]
    report(
        "activity_burst",
        f"short workflows beside {count} activities of {milliseconds} ms of CPU each",
        ["burst queue's workers", "no burst: p50 / p99 ms", "during the burst: p50 / p99 ms (runs)", "burst s"],
        rows,
        {"activities": count, "activity_cpu_ms": milliseconds, "cases": cases},
    )


if __name__ == "__main__":
    main()
