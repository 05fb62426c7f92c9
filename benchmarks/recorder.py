"""Recorder throughput: events/s through the group-committing recorder, against the raw LMDB ceiling.

The ceiling is a raw LMDB loop writing 100 encoded events per fsync'd write transaction, on the same disk: what a
perfect group commit of 100 writers could reach. A writer appends one small event at a time to its own workflow
and waits until it is durable before the next. The cases:

* 1 and 10 writer threads, each blocking on its append's future;
* 100 workflows appended the engine's way: one thread (the engine core is one actor) keeps one append in flight
  per workflow with ``RecorderHandle.append_to`` and learns of the commits from a sink, one call per batch;
* 100 writer threads, each blocking on its append's future (CPython wakes each one through the GIL, which
  costs more than the append itself: see docs/benchmarks.md).

This disk's fsync time drifts by tens of percent from one run to the next, so the 100-writer cases are measured
in paired trials (ceiling, then both cases, moments apart) and each ratio is the median of the trials' ratios.
Expectation: the engine's way reaches at least 50% of the ceiling.

    python -m benchmarks.recorder [--quick] [--trials N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb

from aion._codec import encode_event
from aion._ids import new_run_id
from aion.events import SignalReceived, WorkflowStarted
from aion.recorder import Committed, start_recorder
from aion.store import open_store
from benchmarks._report import report

#: The expectation of the issue: 100 writers reach half the raw ceiling.
TARGET_RATIO = 0.5


def _small_event(workflow_id: str) -> SignalReceived:
    return SignalReceived(workflow_id=workflow_id, name="tick", payload={"n": 1})


def raw_ceiling(base: Path, batch: int, seconds: float) -> float:
    """Events/s of a bare LMDB loop: ``batch`` encoded events per fsync'd write transaction."""
    path = base / f"raw-{batch}"
    env = lmdb.open(str(path), map_size=1 << 30, sync=True, metasync=True, max_dbs=2)
    db = env.open_db(b"history")
    data = encode_event(
        SignalReceived(workflow_id="raw", seq=1, recorded_at=datetime.now(UTC), name="tick", payload={"n": 1})
    )
    seq = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        with env.begin(write=True) as txn:
            for _ in range(batch):
                seq += 1
                txn.put(b"wf-%d\x00" % (seq % 100) + seq.to_bytes(8, "big"), data, db=db)
    elapsed = time.perf_counter() - start
    env.close()
    return seq / elapsed


def through_recorder(base: Path, writers: int, seconds: float) -> dict[str, float]:
    """Events/s with ``writers`` threads appending through one recorder, plus the mean batch size."""
    path = base / f"recorder-{writers}"
    store = open_store(path)
    handle = start_recorder(store)
    counts = [0] * writers
    go = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        workflow_id = f"bench-{index}"
        try:
            started = WorkflowStarted(workflow_id=workflow_id, workflow_type="Bench", input=None, run_id=new_run_id())
            head = len(handle.append(workflow_id, [started], 0).get())
            event = _small_event(workflow_id)
            go.wait()
            while not stop.is_set():
                head = handle.append(workflow_id, [event], head).get()[-1].seq
                counts[index] += 1
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    # Wait until every workflow is started before measuring.
    deadline = time.monotonic() + 30
    while handle.stats().appends < writers and time.monotonic() < deadline and not errors:
        time.sleep(0.005)
    before = handle.stats()
    start = time.perf_counter()
    go.set()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    after = handle.stats()
    handle.stop()
    store.close()
    if errors:
        raise errors[0]
    batches = max(1, after.batches - before.batches)
    return {
        "events_per_s": sum(counts) / elapsed,
        "mean_batch": (after.appends - before.appends) / batches,
        "max_batch": after.max_batch,
    }


def pipelined(base: Path, writers: int, seconds: float) -> dict[str, float]:
    """Events/s with ``writers`` workflows appending through one recorder the way the engine core does: one
    driver thread keeps one append in flight per workflow and learns of the commits from a sink
    (``RecorderHandle.append_to``), one call per committed batch."""
    path = base / f"pipelined-{writers}"
    store = open_store(path)
    handle = start_recorder(store)
    ready: queue.SimpleQueue[list[Committed]] = queue.SimpleQueue()
    sink = ready.put
    workflow_ids = [f"pipe-{index}" for index in range(writers)]
    events = [_small_event(workflow_id) for workflow_id in workflow_ids]
    heads = []
    for workflow_id in workflow_ids:
        started = WorkflowStarted(workflow_id=workflow_id, workflow_type="Bench", input=None, run_id=new_run_id())
        heads.append(handle.append(workflow_id, [started], 0).get()[-1].seq)
    before = handle.stats()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    for index, head in enumerate(heads):
        handle.append_to(sink, index, workflow_ids[index], [events[index]], head)
    in_flight = writers
    while in_flight:
        committed = ready.get()
        running = time.perf_counter() < deadline
        for index, stamped, error in committed:
            if error is not None or stamped is None:
                raise RuntimeError(f"an append failed: {error!r}")
            in_flight -= 1
            count += 1
            if running:
                handle.append_to(sink, index, workflow_ids[index], [events[index]], stamped[-1].seq)
                in_flight += 1
    elapsed = time.perf_counter() - start
    after = handle.stats()
    handle.stop()
    store.close()
    batches = max(1, after.batches - before.batches)
    return {"events_per_s": count / elapsed, "mean_batch": (after.appends - before.appends) / batches}


def main() -> None:
    """Run the benchmark and print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (2 trials of 0.5 s per case)")
    parser.add_argument("--trials", type=int, help="paired trials of the 100-writer cases (default 5)")
    parser.add_argument("--dir", help="directory for the data (default: a temporary directory)")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 2.0
    trials = max(1, args.trials or (2 if args.quick else 5))
    base = Path(tempfile.mkdtemp(prefix="aion-bench-", dir=args.dir))
    try:
        (base / "once").mkdir()
        ceiling_1 = raw_ceiling(base / "once", 1, seconds)
        small = {n: through_recorder(base / "once", n, seconds) for n in (1, 10)}
        paired = [_trial(base / f"trial-{index}", seconds) for index in range(trials)]
    finally:
        shutil.rmtree(base, ignore_errors=True)

    ceiling_100 = statistics.median(trial["raw"] for trial in paired)
    rows: list[list[Any]] = [
        ["raw LMDB, 1 event/txn", ceiling_1, "1", f"{100 * ceiling_1 / ceiling_100:.0f}%", ""],
        ["raw LMDB, 100 events/txn (the ceiling)", ceiling_100, "100", "100%", ""],
    ]
    for writers, result in small.items():
        share = 100 * result["events_per_s"] / ceiling_100
        rows.append(
            [f"recorder, {writers} writer thread(s)", result["events_per_s"], result["mean_batch"], f"{share:.0f}%", ""]
        )
    summary: dict[str, Any] = {}
    for case, label in (
        ("engine", "recorder, 100 workflows, the engine's way"),
        ("threads", "recorder, 100 writer threads"),
    ):
        ratios = [trial[case]["events_per_s"] / trial["raw"] for trial in paired]
        ratio = statistics.median(ratios)
        rate = statistics.median(trial[case]["events_per_s"] for trial in paired)
        batch = statistics.median(trial[case]["mean_batch"] for trial in paired)
        spread = f"{100 * min(ratios):.0f}-{100 * max(ratios):.0f}%"
        rows.append([label, rate, batch, f"{100 * ratio:.0f}%", spread])
        summary[case] = {"events_per_s": round(rate), "mean_batch": round(batch, 1), "ratio": round(ratio, 3)}
    met = summary["engine"]["ratio"] >= TARGET_RATIO
    report(
        "recorder",
        f"recorder throughput: events/s, medians of {trials} paired trials ({os.cpu_count()} cores)",
        ["case", "events/s", "mean batch", "% of ceiling", "trial range"],
        rows,
        {
            "trials": trials,
            "seconds_per_case": seconds,
            "raw_batch_1_events_per_s": round(ceiling_1),
            "raw_batch_100_events_per_s": round(ceiling_100),
            **{f"recorder_{n}_events_per_s": round(r["events_per_s"]) for n, r in small.items()},
            "engine_100_events_per_s": summary["engine"]["events_per_s"],
            "engine_100_mean_batch": summary["engine"]["mean_batch"],
            "engine_100_ratio_to_raw_100": summary["engine"]["ratio"],
            "threads_100_events_per_s": summary["threads"]["events_per_s"],
            "threads_100_mean_batch": summary["threads"]["mean_batch"],
            "threads_100_ratio_to_raw_100": summary["threads"]["ratio"],
            "target_ratio": TARGET_RATIO,
            "met": met,
        },
    )


def _trial(base: Path, seconds: float) -> dict[str, Any]:
    """One paired trial: the ceiling and both 100-writer cases back to back, so that each ratio compares runs
    made moments apart (this disk's fsync time drifts by tens of percent between runs)."""
    base.mkdir(parents=True)
    return {
        "raw": raw_ceiling(base, 100, seconds),
        "engine": pipelined(base, 100, seconds),
        "threads": through_recorder(base, 100, seconds),
    }


if __name__ == "__main__":
    main()
