"""Visibility benchmark: a selective query and a count by status over many runs, against a full scan.

Builds N runs (100,000; ``--quick``: 10,000) straight through the store's batch append (no engine), each with a
``CustomerId`` keyword (100 runs share the queried one), an ``Amount`` float and a status (a third completed),
then times:

* ``CustomerId = 'c-target'`` through the index (``aion.visibility.list_workflows``, page of 1000);
* the same answer by a full scan of every run record, filtered in Python (what a client did before);
* ``GROUP BY Status`` through the index, and by the full scan.

Target: the selective query at least 100x faster than the scan, and under 10 ms.

    python -m benchmarks.visibility [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aion import events as ev
from aion.store import AppendRequest, open_store
from aion.visibility import count_workflows, list_workflows, run_attributes
from benchmarks._report import report

SCHEMA = {"CustomerId": "keyword", "Amount": "float"}
MATCHES = 100
TARGET_SPEEDUP = 100.0
TARGET_MS = 10.0


def build(directory: Path, runs: int) -> Any:
    store = open_store(directory, map_size=1 << 30)
    store.set_search_attribute_schema(SCHEMA)
    step = max(1, runs // MATCHES)
    batch: list[AppendRequest] = []
    for index in range(runs):
        wf = f"order-{index:07d}"
        customer = "c-target" if index % step == 0 and index // step < MATCHES else f"c-{index % 997}"
        started = ev.WorkflowStarted(
            workflow_id=wf,
            workflow_type="order",
            input=[],
            run_id=f"00000000-0000-4000-8000-{index:012d}",
            search_attributes={"CustomerId": customer, "Amount": float(index % 500)},
        )
        events: list[ev.Event] = [started]
        if index % 3 == 0:
            events.append(ev.WorkflowCompleted(workflow_id=wf, result=None))
        batch.append(AppendRequest(wf, events, 0))
        if len(batch) == 2000:
            store.append_batch(batch, atomic=True)
            batch = []
    if batch:
        store.append_batch(batch, atomic=True)
    return store


def timed(function: Any, trials: int) -> tuple[float, Any]:
    samples = []
    result = None
    for _ in range(trials):
        began = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), result


def main() -> None:
    """Run the benchmark and print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 runs")
    parser.add_argument("--runs", type=int, help="how many runs [100,000; quick: 10,000]")
    args = parser.parse_args()
    runs = args.runs or (10_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory() as directory:
        began = time.perf_counter()
        store = build(Path(directory) / "data", runs)
        build_s = time.perf_counter() - began
        try:
            query = "CustomerId = 'c-target'"
            index_ms, page = timed(lambda: list_workflows(store, query, page_size=1000), 7)

            def scan() -> list[str]:
                with store.visibility() as source:
                    return sorted(
                        run.workflow_id for run in source.runs() if run_attributes(run).get("CustomerId") == "c-target"
                    )

            scan_ms, scanned = timed(scan, 3 if not args.quick else 2)
            assert sorted(run.workflow_id for run in page.workflows) == scanned and len(scanned) == MATCHES
            count_ms, counted = timed(lambda: count_workflows(store, "GROUP BY Status"), 3)

            def scan_count() -> dict[str, int]:
                groups: dict[str, int] = {}
                with store.visibility() as source:
                    for run in source.runs():
                        groups[run.status.value] = groups.get(run.status.value, 0) + 1
                return groups

            scan_count_ms, scan_groups = timed(scan_count, 2)
            assert counted.groups == dict(sorted(scan_groups.items()))
        finally:
            store.close()
    speedup = scan_ms / index_ms
    met = speedup >= TARGET_SPEEDUP and index_ms < TARGET_MS
    data = {
        "runs": runs,
        "matches": MATCHES,
        "build_s": round(build_s, 2),
        "selective_query_ms": round(index_ms, 3),
        "full_scan_ms": round(scan_ms, 2),
        "speedup": round(speedup, 1),
        "count_by_status_ms": round(count_ms, 2),
        "count_by_status_scan_ms": round(scan_count_ms, 2),
        "target_speedup": TARGET_SPEEDUP,
        "target_ms": TARGET_MS,
        "met": met,
    }
    rows = [
        (f"selective query ({MATCHES} of {runs:,}) ms", data["selective_query_ms"], f"< {TARGET_MS:g}"),
        ("same answer by a full scan ms", data["full_scan_ms"], ""),
        ("speedup", data["speedup"], f"≥ {TARGET_SPEEDUP:g}x"),
        (
            "count GROUP BY Status ms (index / scan)",
            f"{data['count_by_status_ms']} / {data['count_by_status_scan_ms']}",
            "",
        ),
    ]
    report("visibility", "Visibility: index vs full scan", ("figure", "value", "target"), rows, data)


if __name__ == "__main__":
    main()
