"""Many waiting runs: start N runs that wait for a signal, hold them, then signal them all to completion.
``python -m benchmarks.waiting [--quick] [--runs N] [--clients C]``: N runs (default 100,000; quick: 3,000) of a
workflow that waits for one signal and returns its payload are started from C client threads (default 32, so starts
share group commits); starts/s counts from the first ``start_workflow`` call to the last one returning (each
returns once its ``WorkflowStarted`` is durable). Then it waits until every run's code has reported that it waits
for the signal (``Engine.run_waits``) and no run waits for a process slot, and measures, with all N waiting: the
engine process's RSS (the benchmark's own process, where the engine's actors run; the part of it that is file
pages, mostly the store's LMDB map, is shown too), the unique memory (USS) summed over the engine process and all
its descendants (zygote, workflow processes, recycled and pool hosts), how many processes that is and how many file
descriptors they hold open; the same again once settled (after the engine's ``evict_idle_after``, 60 s by default
and 2 s in quick mode, in which waiting runs give up their processes, the few seconds in which the recycled hosts
beyond the zygote's floor retire, and once their number stops changing): the memory targets are checked against the
settled figures, what 100,000 runs waiting for hours hold. Then every run is signalled (from the same client
threads) and timed from the first ``signal()`` call to the last ``result()`` returning: each ``result()`` returns
only once that run's ``WorkflowCompleted`` is durable. CPU seconds of the engine process and of its descendants are
shown for both phases.

Targets (issue #23): starts ≥ 2,000/s, engine RSS ≤ 200 MiB, unique memory of all processes ≤ 400 MiB, all
signalled and completed in ≤ 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

import aion
from aion import workflow
from aion.engine._residency import DEFAULT_EVICT_IDLE_AFTER
from benchmarks._cpu import children_cpu, own_cpu
from benchmarks._report import met_text, report
from supervisors._pool import RECYCLED_IDLE_SECONDS

TARGET_STARTS_PER_S = 2000.0
TARGET_ENGINE_RSS_MIB = 200.0
TARGET_UNIQUE_MIB = 400.0
TARGET_SIGNAL_ALL_S = 60.0
MIB = 1024 * 1024
#: How many runs one ``run_waits`` request asks about.
WAITS_CHUNK = 5000


@workflow.defn
async def wait_for_go() -> Any:
    """Wait for the signal ``go`` and return its payload."""
    return await workflow.wait_signal("go")


def memory() -> dict[str, Any]:
    """The engine process's RSS, the USS summed over it and all its descendants, their count and open fds."""
    engine = psutil.Process()
    processes = [engine, *engine.children(recursive=True)]
    uss = fds = alive = 0
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            uss += proc.memory_full_info().uss
            fds += proc.num_fds()
            alive += 1
    rss = engine.memory_info()
    return {
        "engine_rss_mib": rss.rss / MIB,
        # Of that, file pages mapped (the store's LMDB map, shared libraries): page cache, not the heap.
        "engine_rss_file_mib": rss.shared / MIB,
        "unique_mib": uss / MIB,
        "processes": alive,
        "open_fds": fds,
    }


def settled_memory(evict_idle_after: float) -> dict[str, Any]:
    """:func:`memory` once the waiting runs had the time to give up their processes for idleness, the recycled
    hosts beyond the zygote's floor to retire, and the number of the engine's processes has stopped changing (at
    most 30 s more)."""
    time.sleep(evict_idle_after + RECYCLED_IDLE_SECONDS + 1.5)
    end = time.monotonic() + 30.0
    count, stable_since = -1, time.monotonic()
    while time.monotonic() < end:
        now_count = len(psutil.Process().children(recursive=True))
        if now_count != count:
            count, stable_since = now_count, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            break
        time.sleep(0.1)
    return {f"settled_{key}": value for key, value in memory().items()}


def wait_all_waiting(engine: aion.Engine, runs: Sequence[tuple[str, str]], deadline: float) -> None:
    """Return once no run waits for a process slot and every run's code has reported waiting for ``go``."""
    pending = list(runs)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} runs never reported waiting")
        if engine.residency()["waiting"]:
            time.sleep(0.05)  # polling the engine's own count: the runs waiting for a slot get one by themselves
            continue
        left: list[tuple[str, str]] = []
        for first in range(0, len(pending), WAITS_CHUNK):
            chunk = pending[first : first + WAITS_CHUNK]
            left.extend(run for run, waits in zip(chunk, engine.run_waits(chunk), strict=True) if not waits)
        pending = left
        if pending:
            time.sleep(0.05)


def in_threads(clients: int, count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for every i < count, from ``clients`` threads, each taking the next index in turn; the
    results in order. Not ``ThreadPoolExecutor.map``: it submits every call at once, and 100,000 futures made
    and dropped in the engine's own process would be measured as the engine's memory (and GIL time)."""
    results: list[Any] = [None] * count
    failures: list[BaseException] = []
    indices = itertools.count()  # next() is atomic under the GIL: each index is taken by one thread

    def work() -> None:
        for index in indices:
            if index >= count or failures:
                return
            try:
                results[index] = call(index)
            except BaseException as error:  # re-raised in the caller's thread below
                failures.append(error)
                return

    threads = [threading.Thread(target=work, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def measure(data: Path, count: int, clients: int, evict_idle_after: float) -> dict[str, Any]:
    """Start ``count`` waiting runs, measure them waiting, signal them all; the figures."""
    with aion.Engine(data, workflows=[wait_for_go], evict_idle_after=evict_idle_after) as engine:
        # Warm up: the first run of a type starts its supervisor; keep that out of the figures.
        engine.start_workflow(wait_for_go).signal("go", 0)
        cpu, children = own_cpu(), children_cpu()

        def start(index: int) -> tuple[str, str]:
            handle = engine.start_workflow(wait_for_go, workflow_id=f"wait-{index}")
            return handle.workflow_id, handle.run_id

        began = time.perf_counter()
        runs = in_threads(clients, count, start)
        start_s = time.perf_counter() - began
        wait_all_waiting(engine, runs, time.monotonic() + 600 + count / 100)
        all_waiting_s = time.perf_counter() - began
        start_cpu, start_children = own_cpu() - cpu, children_cpu() - children
        gc.collect()
        held = memory()
        residency = engine.residency()
        settled = settled_memory(evict_idle_after)
        cpu, children = own_cpu(), children_cpu()

        def signal(index: int) -> None:
            engine.get_workflow(*runs[index]).signal("go", index)

        began = time.perf_counter()
        in_threads(clients, count, signal)
        signal_calls_s = time.perf_counter() - began
        for index, (workflow_id, run_id) in enumerate(runs):
            assert engine.get_workflow(workflow_id, run_id).result(timeout=600) == index
        signal_all_s = time.perf_counter() - began
        signal_cpu, signal_children = own_cpu() - cpu, children_cpu() - children
    return {
        "runs": count,
        "clients": clients,
        "start_s": start_s,
        "starts_per_s": count / start_s,
        "all_waiting_s": all_waiting_s,
        "start_engine_cpu_ms_per_run": start_cpu / count * 1000,
        "start_children_cpu_ms_per_run": start_children / count * 1000,
        **held,
        **settled,
        "max_resident": residency["max_resident"],
        "evict_idle_after_s": evict_idle_after,
        "evictions": residency["evictions"],
        "signal_calls_s": signal_calls_s,
        "signal_all_s": signal_all_s,
        "signal_engine_cpu_ms_per_run": signal_cpu / count * 1000,
        "signal_children_cpu_ms_per_run": signal_children / count * 1000,
        "target_starts_per_s": TARGET_STARTS_PER_S,
        "target_engine_rss_mib": TARGET_ENGINE_RSS_MIB,
        "target_unique_mib": TARGET_UNIQUE_MIB,
        "target_signal_all_s": TARGET_SIGNAL_ALL_S,
        "starts_met": count / start_s >= TARGET_STARTS_PER_S,
        "engine_rss_met": settled["settled_engine_rss_mib"] <= TARGET_ENGINE_RSS_MIB,
        "unique_met": settled["settled_unique_mib"] <= TARGET_UNIQUE_MIB,
        "signal_all_met": signal_all_s <= TARGET_SIGNAL_ALL_S,
    }


def _pair(r: dict[str, Any], phase: str) -> str:
    return f"{r[f'{phase}_engine_cpu_ms_per_run']:.2f} / {r[f'{phase}_children_cpu_ms_per_run']:.2f}"


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3,000 runs (for CI)")
    parser.add_argument("--runs", type=int, default=None, help="how many waiting runs (default 100,000)")
    parser.add_argument("--clients", type=int, default=32, help="client threads starting and signalling")
    parser.add_argument(
        "--evict-idle-after",
        type=float,
        default=None,
        help=f"Engine(evict_idle_after=...) [default: the engine's, {DEFAULT_EVICT_IDLE_AFTER:g} s; quick: 2 s]",
    )
    args = parser.parse_args()
    count = args.runs if args.runs is not None else (3000 if args.quick else 100_000)
    idle = args.evict_idle_after
    if idle is None:
        idle = 2.0 if args.quick else DEFAULT_EVICT_IDLE_AFTER
    with tempfile.TemporaryDirectory(prefix="aion-bench-waiting-") as tmp:
        r = measure(Path(tmp, "data"), count, args.clients, idle)
    r["met"] = all(r[key] for key in ("starts_met", "engine_rss_met", "unique_met", "signal_all_met"))
    rows = [
        ("starts/s", r["starts_per_s"], f"≥ {TARGET_STARTS_PER_S:,.0f}", met_text(r["starts_met"])),
        ("all waiting after s", r["all_waiting_s"], "", ""),
        ("engine / children CPU ms per start", _pair(r, "start"), "", ""),
        ("engine RSS MiB, all waiting", r["engine_rss_mib"], "", ""),
        ("of which file pages mapped (store map, libraries)", r["engine_rss_file_mib"], "", ""),
        ("unique MiB, all processes", r["unique_mib"], "", ""),
        ("processes / open fds", f"{r['processes']} / {r['open_fds']}", "", ""),
        (
            "settled: engine RSS MiB",
            r["settled_engine_rss_mib"],
            f"≤ {TARGET_ENGINE_RSS_MIB:g}",
            met_text(r["engine_rss_met"]),
        ),
        (
            "settled: unique MiB, all processes",
            r["settled_unique_mib"],
            f"≤ {TARGET_UNIQUE_MIB:g}",
            met_text(r["unique_met"]),
        ),
        ("settled: processes / open fds", f"{r['settled_processes']} / {r['settled_open_fds']}", "", ""),
        (
            "signal all → all completed s",
            r["signal_all_s"],
            f"≤ {TARGET_SIGNAL_ALL_S:g}",
            met_text(r["signal_all_met"]),
        ),
        ("signal() calls alone s", r["signal_calls_s"], "", ""),
        ("engine / children CPU ms per signalled run", _pair(r, "signal"), "", ""),
    ]
    title = f"{count:,} runs waiting for a signal ({args.clients} client threads, max_resident {r['max_resident']})"
    report("waiting", title, ["figure", "value", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
