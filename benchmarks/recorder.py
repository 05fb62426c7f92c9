"""Recorder throughput: events/s through the group-committing recorder with 1, 10 and 100 writers.

Each writer is a thread appending one small event at a time to its own workflow and waiting for the durable
acknowledgement. Beside it, in the same run and on the same disk, a raw LMDB loop writes 100 encoded events
per fsync'd transaction: the ceiling a perfect group commit of 100 writers could reach.

    python -m benchmarks.recorder [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
from rich.console import Console
from rich.table import Table

from aion._codec import encode_event
from aion._ids import new_run_id
from aion.events import SignalReceived, WorkflowStarted
from aion.recorder import start_recorder
from aion.store import open_store


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
    driver thread keeps one append in flight per workflow and learns of each commit from ``on_done``."""
    path = base / f"pipelined-{writers}"
    store = open_store(path)
    handle = start_recorder(store)
    ready: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    events = [_small_event(f"pipe-{index}") for index in range(writers)]

    def done_for(index: int) -> Callable[[Any, BaseException | None], None]:
        def done(stamped: Any, error: BaseException | None) -> None:
            ready.put((index, -1 if error is not None else stamped[-1].seq))

        return done

    callbacks = [done_for(index) for index in range(writers)]
    for index in range(writers):
        workflow_id = f"pipe-{index}"
        started = WorkflowStarted(workflow_id=workflow_id, workflow_type="Bench", input=None, run_id=new_run_id())
        ready.put((index, handle.append(workflow_id, [started], 0).get()[-1].seq))
    before = handle.stats()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    in_flight = 0
    while True:
        index, head = ready.get()
        if head < 0:
            raise RuntimeError("an append failed")
        if in_flight:
            count += 1
            in_flight -= 1
        if time.perf_counter() >= deadline:
            break
        handle.append(f"pipe-{index}", [events[index]], head, on_done=callbacks[index])
        in_flight += 1
    elapsed = time.perf_counter() - start
    while in_flight:
        ready.get()
        in_flight -= 1
    after = handle.stats()
    handle.stop()
    store.close()
    batches = max(1, after.batches - before.batches)
    return {"events_per_s": count / elapsed, "mean_batch": (after.appends - before.appends) / batches}


def main() -> None:
    """Run the benchmark and print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 s each)")
    parser.add_argument("--dir", help="directory for the data (default: a temporary directory)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    base = Path(tempfile.mkdtemp(prefix="aion-bench-", dir=args.dir))
    try:
        ceiling_1 = raw_ceiling(base, 1, seconds)
        ceiling_100 = raw_ceiling(base, 100, seconds)
        results = {n: through_recorder(base, n, seconds) for n in (1, 10, 100)}
        engine_style = pipelined(base, 100, seconds)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    table = Table(title=f"recorder throughput ({os.cpu_count()} cores, {platform.python_version()})")
    table.add_column("case")
    table.add_column("events/s", justify="right")
    table.add_column("mean batch", justify="right")
    table.add_column("% of raw batch-100", justify="right")
    table.add_row("raw LMDB, 1 event/txn", f"{ceiling_1:,.0f}", "1", f"{100 * ceiling_1 / ceiling_100:.0f}%")
    table.add_row("raw LMDB, 100 events/txn", f"{ceiling_100:,.0f}", "100", "100%")
    for writers, result in results.items():
        table.add_row(
            f"recorder, {writers} writer(s)",
            f"{result['events_per_s']:,.0f}",
            f"{result['mean_batch']:.1f}",
            f"{100 * result['events_per_s'] / ceiling_100:.0f}%",
        )
    table.add_row(
        "recorder, 100 workflows, on_done (engine's way)",
        f"{engine_style['events_per_s']:,.0f}",
        f"{engine_style['mean_batch']:.1f}",
        f"{100 * engine_style['events_per_s'] / ceiling_100:.0f}%",
    )
    Console().print(table)
    print(
        json.dumps(
            {
                "benchmark": "recorder",
                "cores": os.cpu_count(),
                "raw_batch_1_events_per_s": round(ceiling_1),
                "raw_batch_100_events_per_s": round(ceiling_100),
                **{f"recorder_{n}_events_per_s": round(r["events_per_s"]) for n, r in results.items()},
                **{f"recorder_{n}_mean_batch": round(r["mean_batch"], 1) for n, r in results.items()},
                "recorder_100_ratio_to_raw_100": round(results[100]["events_per_s"] / ceiling_100, 3),
                "pipelined_100_events_per_s": round(engine_style["events_per_s"]),
                "pipelined_100_ratio_to_raw_100": round(engine_style["events_per_s"] / ceiling_100, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
