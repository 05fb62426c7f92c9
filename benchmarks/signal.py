"""Signal round trip: ``handle.signal()`` to the waiting workflow's result.

``python -m benchmarks.signal [--quick]``: workflows that wait for one signal and return its payload are started
in batches of 20; once a batch's processes are up and waiting (a query answered by each live process says so),
each is signalled in turn and timed from the ``handle.signal()`` call to ``handle.result()`` returning. That path
is: ``SignalReceived`` made durable (``signal()`` returns), delivered to the workflow process, the workflow
completes, ``WorkflowCompleted`` made durable, the waiter woken. The ``signal()`` call alone is shown too.
200 signals (20 in quick mode). Targets: p50 at most 1.5 ms, p99 at most 4 ms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import aion
from aion import workflow
from benchmarks._report import met_text, percentile, report

TARGET_P50_MS = 1.5
TARGET_P99_MS = 4.0
BATCH = 20


@workflow.defn
async def waiter() -> Any:
    """Wait for the signal ``ping`` and return its payload."""
    workflow.set_query_handler("ready", lambda: True)
    return await workflow.wait_signal("ping")


def measure(data: Path, count: int) -> dict[str, Any]:
    """``count`` signal round trips, one at a time."""
    to_result: list[float] = []
    to_durable: list[float] = []
    with aion.Engine(data, workflows=[waiter]) as engine:
        engine.start_workflow(waiter).signal("ping", 0)  # warm-up: the type's supervisor starts
        for first in range(0, count, BATCH):
            handles = [engine.start_workflow(waiter) for _ in range(min(BATCH, count - first))]
            for handle in handles:
                assert handle.query("ready") is True  # the process has replayed and waits for the signal
            for index, handle in enumerate(handles):
                began = time.perf_counter()
                handle.signal("ping", index)
                durable = time.perf_counter()
                result = handle.result(timeout=30)
                done = time.perf_counter()
                assert result == index
                to_durable.append((durable - began) * 1000)
                to_result.append((done - began) * 1000)
    p50, p99 = percentile(to_result, 50), percentile(to_result, 99)
    return {
        "signals": len(to_result),
        "signal_call_p50_ms": percentile(to_durable, 50),
        "signal_call_p99_ms": percentile(to_durable, 99),
        "signal_to_result_p50_ms": p50,
        "signal_to_result_p99_ms": p99,
        "target_p50_ms": TARGET_P50_MS,
        "target_p99_ms": TARGET_P99_MS,
        "met": p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS,
    }


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 signals (for CI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aion-bench-signal-") as tmp:
        r = measure(Path(tmp, "data"), 20 if args.quick else 200)
    rows = [
        (
            "signal() → result()",
            r["signal_to_result_p50_ms"],
            r["signal_to_result_p99_ms"],
            f"p50 ≤ {TARGET_P50_MS:g}, p99 ≤ {TARGET_P99_MS:g}",
            met_text(r["met"]),
        ),
        ("signal() call (durable)", r["signal_call_p50_ms"], r["signal_call_p99_ms"], "", ""),
    ]
    title = f"{r['signals']} signals to waiting workflows, one at a time"
    report("signal", title, ["path", "p50 ms", "p99 ms", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
