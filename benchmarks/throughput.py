"""Workflow throughput: many short workflows started at once.

``python -m benchmarks.throughput [--quick] [--workflows N] [--metrics | --metrics-cost PAIRS]``: N workflows
(default 1,000) of 3 sequential no-op activities are started concurrently (from a pool of client threads, so starts
share group commits) and run to completion. Prints workflows/s and activities/s over the whole batch (first start
call to last completion), the per-workflow latency (its ``start_workflow`` call to its ``WorkflowCompleted`` record)
p50/p99, the ``start_workflow`` call's own p50/p99, and CPU seconds per workflow: of the engine process (the
benchmark's own process, where the engine's actors run; the client threads are included) and, separately, of its
child processes (zygote, workflow processes, activity workers), their sum, and how many cores that kept busy over
the batch. Then a second batch, of 200 workflows (a fifth of N) started one after another from a single thread, in a
new engine, then the same batch again in that engine (its workflow processes warm), then the same number started
from one thread at a steady pace (one every 5 ms: their latency, not a target). Targets on 2 cores: at least 600
workflows/s for both batches, at most 2.0 ms of CPU per workflow in all. ``--metrics`` runs it with
``Engine(metrics=True)`` (every metric counted; a scrape after the batch checks they moved). ``--metrics-cost
PAIRS`` measures what metrics cost: PAIRS batches without and PAIRS with, alternated in one process (off-on,
on-off, ...) so that the machine's drift falls on both alike; it prints the medians and the cost
(target: within 5%).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aion
from aion import activity, events, workflow
from benchmarks._cpu import children_cpu, own_cpu
from benchmarks._report import met_text, percentile, report

TARGET_WORKFLOWS_PER_S = 600.0
TARGET_CPU_MS_PER_WORKFLOW = 2.0
#: The single-thread batch's size (quick mode: a fifth of it).
SINGLE_THREAD_WORKFLOWS = 200
#: The pace of the paced run: one start every 5 ms (200 starts/s), a load a commit per step does not overload.
PACED_INTERVAL = 0.005
ACTIVITIES_PER_WORKFLOW = 3


@activity.defn
def noop() -> None:
    """Do nothing."""


@workflow.defn
async def three_steps() -> int:
    """Run three no-op activities one after another."""
    for _ in range(ACTIVITIES_PER_WORKFLOW):
        await workflow.execute_activity(noop, start_to_close_timeout=30)
    return ACTIVITIES_PER_WORKFLOW


def measure(data: Path, count: int, clients: int, *, metrics: bool = False, again: bool = False) -> dict[str, Any]:
    """Start ``count`` workflows from ``clients`` threads at once and wait for all; figures of the batch. With
    ``again``, the same batch once more in the same engine, its workflow processes warm, under ``again``."""
    with aion.Engine(data, workflows=[three_steps], activities=[noop], metrics=metrics) as engine:
        # Warm up: the first workflow of a type starts its supervisor; keep that out of the figures.
        engine.start_workflow(three_steps).result(timeout=60)
        r = _batch(engine, count, clients, "tp")
        registry = engine.metrics_registry
        if registry is not None:
            counted = registry.get_sample_value("aion_workflows_completed_total", {"workflow_type": "three_steps"})
            assert counted == count + 1, counted  # the batch and the warm-up
        if again:
            r["again"] = _batch(engine, count, clients, "tp-again")
            r["paced"] = _paced(engine, count, PACED_INTERVAL, "tp-paced")
    r["metrics"] = metrics
    return r


def _batch(engine: aion.Engine, count: int, clients: int, prefix: str) -> dict[str, Any]:
    """One batch of ``count`` workflows started from ``clients`` threads, run to completion: its figures."""
    cpu_before, children_before = own_cpu(), children_cpu()
    batches_before = engine.recorder_stats().batches

    def start(index: int) -> tuple[float, aion.WorkflowHandle, float]:
        called, timer = time.time(), time.perf_counter()
        handle = engine.start_workflow(three_steps, workflow_id=f"{prefix}-{index}")
        return called, handle, (time.perf_counter() - timer) * 1000

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        started = list(pool.map(start, range(count)))
    for _, handle, _ in started:
        handle.result(timeout=600)
    elapsed = time.perf_counter() - began
    cpu_engine, cpu_children = own_cpu() - cpu_before, children_cpu() - children_before
    commits = engine.recorder_stats().batches - batches_before
    start_calls = [took for _, _, took in started]
    latencies = [_latency_ms(called, handle) for called, handle, _ in started]
    return {
        "workflows": count,
        "activities": count * ACTIVITIES_PER_WORKFLOW,
        "seconds": elapsed,
        "workflows_per_s": count / elapsed,
        "activities_per_s": count * ACTIVITIES_PER_WORKFLOW / elapsed,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "start_call_p50_ms": percentile(start_calls, 50),
        "start_call_p99_ms": percentile(start_calls, 99),
        "commits_per_workflow": commits / count,
        "engine_cpu_s_per_workflow": cpu_engine / count,
        "children_cpu_s_per_workflow": cpu_children / count,
        "total_cpu_s_per_workflow": (cpu_engine + cpu_children) / count,
        "cores_used": (cpu_engine + cpu_children) / elapsed,
        "target_workflows_per_s": TARGET_WORKFLOWS_PER_S,
        "met": count / elapsed >= TARGET_WORKFLOWS_PER_S,
    }


def _paced(engine: aion.Engine, count: int, interval: float, prefix: str) -> dict[str, Any]:
    """``count`` workflows started from one thread, one every ``interval`` seconds, run to completion: each one's
    latency (its ``start_workflow`` call to its ``WorkflowCompleted`` record) and the commits per workflow."""
    batches_before = engine.recorder_stats().batches
    started: list[tuple[float, aion.WorkflowHandle]] = []
    due = time.perf_counter()
    for index in range(count):
        started.append((time.time(), engine.start_workflow(three_steps, workflow_id=f"{prefix}-{index}")))
        due += interval
        time.sleep(max(0.0, due - time.perf_counter()))
    for _, handle in started:
        handle.result(timeout=600)
    latencies = [_latency_ms(called, handle) for called, handle in started]
    return {
        "starts_per_s": 1 / interval,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "commits_per_workflow": (engine.recorder_stats().batches - batches_before) / count,
    }


def _latency_ms(called: float, handle: aion.WorkflowHandle) -> float:
    """A completed workflow's latency: from ``called`` (its ``start_workflow`` call, ``time.time()``) to its
    ``WorkflowCompleted`` record, in milliseconds."""
    completed = handle.history()[-1]
    assert isinstance(completed, events.WorkflowCompleted)
    return (completed.recorded_at.timestamp() - called) * 1000


def both_batches(count: int, clients: int, single: int) -> dict[str, Any]:
    """The ``count`` batch from ``clients`` threads, then the ``single`` batch from one thread (a new engine each):
    the first's figures, the second's under ``single_thread_*``, and ``met`` for every target."""
    with tempfile.TemporaryDirectory(prefix="aion-bench-throughput-") as tmp:
        r = measure(Path(tmp, "data"), count, clients)
    with tempfile.TemporaryDirectory(prefix="aion-bench-throughput-") as tmp:
        one = measure(Path(tmp, "data"), single, 1, again=True)
    r["single_thread_workflows"] = single
    r["single_thread_workflows_per_s"] = one["workflows_per_s"]
    r["single_thread_total_cpu_s_per_workflow"] = one["total_cpu_s_per_workflow"]
    r["single_thread_start_call_p50_ms"] = one["start_call_p50_ms"]
    r["single_thread_start_call_p99_ms"] = one["start_call_p99_ms"]
    r["single_thread_commits_per_workflow"] = one["commits_per_workflow"]
    # The same batch again in that engine, its workflow processes warm (not a target: a figure beside it).
    warm = one["again"]
    r["single_thread_warm_workflows_per_s"] = warm["workflows_per_s"]
    r["single_thread_warm_total_cpu_s_per_workflow"] = warm["total_cpu_s_per_workflow"]
    r["single_thread_warm_start_call_p50_ms"] = warm["start_call_p50_ms"]
    r["single_thread_warm_commits_per_workflow"] = warm["commits_per_workflow"]
    # The same number again from one thread at a steady pace: what the runs' latency is at a moderate load.
    paced = one["paced"]
    r["paced_starts_per_s"] = paced["starts_per_s"]
    r["paced_latency_p50_ms"] = paced["latency_p50_ms"]
    r["paced_latency_p99_ms"] = paced["latency_p99_ms"]
    r["paced_commits_per_workflow"] = paced["commits_per_workflow"]
    r["target_cpu_ms_per_workflow"] = TARGET_CPU_MS_PER_WORKFLOW
    r["met_workflows_per_s"] = r["met"]
    r["met_single_thread"] = one["met"]
    r["met_cpu"] = cpu_target_met(r["total_cpu_s_per_workflow"])
    r["met"] = r["met_workflows_per_s"] and r["met_single_thread"] and r["met_cpu"]
    return r


def cpu_target_met(total_cpu_s_per_workflow: float) -> bool:
    """Whether a batch's CPU per workflow (seconds) is within the target. CPU times come in clock ticks and their
    sums carry float noise (1.23 + 0.77 ms read 2.0000000000000004): it is compared at a nanosecond's precision."""
    return round(total_cpu_s_per_workflow * 1000, 6) <= TARGET_CPU_MS_PER_WORKFLOW


#: What metrics may cost, in throughput and in the engine's CPU per workflow (``--metrics-cost``).
METRICS_COST_TARGET = 0.05


def metrics_cost(count: int, clients: int, pairs: int) -> dict[str, Any]:
    """``pairs`` batches without metrics and ``pairs`` with, alternated; the medians and the relative cost."""
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="aion-bench-throughput-") as tmp:
        for index in range(pairs):
            order = (False, True) if index % 2 == 0 else (True, False)
            for metrics in order:
                data = Path(tmp, f"data-{index}-{int(metrics)}")
                runs[metrics].append(measure(data, count, clients, metrics=metrics))

    def median(metrics: bool, key: str) -> float:
        return statistics.median(r[key] for r in runs[metrics])

    throughput_cost = 1 - median(True, "workflows_per_s") / median(False, "workflows_per_s")
    cpu_cost = median(True, "engine_cpu_s_per_workflow") / median(False, "engine_cpu_s_per_workflow") - 1
    return {
        "pairs": pairs,
        "workflows": count,
        "off_workflows_per_s": median(False, "workflows_per_s"),
        "on_workflows_per_s": median(True, "workflows_per_s"),
        "off_engine_cpu_s_per_workflow": median(False, "engine_cpu_s_per_workflow"),
        "on_engine_cpu_s_per_workflow": median(True, "engine_cpu_s_per_workflow"),
        "throughput_cost": throughput_cost,
        "engine_cpu_cost": cpu_cost,
        "target_cost": METRICS_COST_TARGET,
        "met": throughput_cost <= METRICS_COST_TARGET and cpu_cost <= METRICS_COST_TARGET,
    }


def report_metrics_cost(r: dict[str, Any]) -> None:
    """Print the ``--metrics-cost`` table and JSON line."""
    target = f"≤ {METRICS_COST_TARGET:.0%}"
    rows = [
        ("workflows/s", r["off_workflows_per_s"], r["on_workflows_per_s"], f"{r['throughput_cost']:+.1%}", target),
        (
            "engine CPU ms/workflow",
            r["off_engine_cpu_s_per_workflow"] * 1000,
            r["on_engine_cpu_s_per_workflow"] * 1000,
            f"{r['engine_cpu_cost']:+.1%}",
            target,
        ),
    ]
    title = f"metrics off vs on: medians of {r['pairs']} alternated pairs of {r['workflows']:,} workflows"
    report("throughput_metrics_cost", title, ["measure", "off", "on", "cost", "target"], rows, r)


def main() -> None:
    """Run the benchmark and print its table and JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 workflows (for CI)")
    parser.add_argument("--workflows", type=int, default=None, help="how many workflows (default 1,000)")
    parser.add_argument("--clients", type=int, default=32, help="client threads calling start_workflow")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--metrics", action="store_true", help="with Engine(metrics=True)")
    mode.add_argument("--metrics-cost", type=int, metavar="PAIRS", help="alternate PAIRS batches off and on")
    args = parser.parse_args()
    count = args.workflows or (100 if args.quick else 1000)
    if args.metrics_cost is not None:
        if args.metrics_cost < 1:
            parser.error("--metrics-cost needs at least 1 pair")
        report_metrics_cost(metrics_cost(count, args.clients, args.metrics_cost))
        return
    if args.metrics:
        with tempfile.TemporaryDirectory(prefix="aion-bench-throughput-") as tmp:
            r = measure(Path(tmp, "data"), count, args.clients, metrics=True)
    else:
        r = both_batches(count, args.clients, SINGLE_THREAD_WORKFLOWS // 5 if args.quick else SINGLE_THREAD_WORKFLOWS)
    rows = [
        (
            "workflows/s",
            r["workflows_per_s"],
            f"≥ {TARGET_WORKFLOWS_PER_S:g}",
            met_text(r.get("met_workflows_per_s", r["met"])),
        ),
        ("activities/s", r["activities_per_s"], "", ""),
        ("latency p50 ms", r["latency_p50_ms"], "", ""),
        ("latency p99 ms", r["latency_p99_ms"], "", ""),
        ("engine CPU ms/workflow", r["engine_cpu_s_per_workflow"] * 1000, "", ""),
        ("children CPU ms/workflow", r["children_cpu_s_per_workflow"] * 1000, "", ""),
        (
            "total CPU ms/workflow",
            r["total_cpu_s_per_workflow"] * 1000,
            f"≤ {TARGET_CPU_MS_PER_WORKFLOW:g}",
            met_text(r.get("met_cpu")),
        ),
        ("cores kept busy", r["cores_used"], "", ""),
    ]
    if "single_thread_workflows_per_s" in r:
        rows.append(
            (
                f"workflows/s, {r['single_thread_workflows']} started from one thread",
                r["single_thread_workflows_per_s"],
                f"≥ {TARGET_WORKFLOWS_PER_S:g}",
                met_text(r["met_single_thread"]),
            )
        )
        rows.append(
            (
                "its start_workflow() call p50 / p99 ms",
                f"{r['single_thread_start_call_p50_ms']:.2f} / {r['single_thread_start_call_p99_ms']:.2f}",
                "",
                "",
            )
        )
        rows.append(("its commits per workflow", r["single_thread_commits_per_workflow"], "", ""))
        rows.append(
            (
                "the same again, processes warm: workflows/s",
                r["single_thread_warm_workflows_per_s"],
                "",
                "",
            )
        )
        rows.append(
            (
                "  its start call p50 ms / commits per workflow / CPU ms",
                f"{r['single_thread_warm_start_call_p50_ms']:.2f} / "
                f"{r['single_thread_warm_commits_per_workflow']:.2f} / "
                f"{r['single_thread_warm_total_cpu_s_per_workflow'] * 1000:.2f}",
                "",
                "",
            )
        )
        rows.append(
            (
                f"the same, one start every {1000 / r['paced_starts_per_s']:g} ms: latency p50 / p99 ms",
                f"{r['paced_latency_p50_ms']:.2f} / {r['paced_latency_p99_ms']:.2f}",
                "",
                "",
            )
        )
        rows.append(("  its commits per workflow", r["paced_commits_per_workflow"], "", ""))
    title = f"{count:,} workflows of {ACTIVITIES_PER_WORKFLOW} no-op activities, started at once"
    title += ", metrics on" if args.metrics else ""
    report("throughput", title, ["measure", "value", "target", "met"], rows, r)


if __name__ == "__main__":
    main()
