"""``python -m benchmarks [--quick] [NAME ...]``: run every benchmark (or the named ones), then a summary.

Each benchmark runs in its own process (``python -m benchmarks.<name>``), so one cannot disturb the next; its
table is passed through and its JSON line collected. The summary gives each one's headline figures against its
target, with the machine's cores, Python version and load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._report import machine, met_text, report

REPO = Path(__file__).resolve().parents[1]

#: name -> what the summary shows of its JSON: (figure, value, target, met)
Row = tuple[str, Any, str, str]


def _throughput(d: dict[str, Any]) -> list[Row]:
    target = f"≥ {d['target_workflows_per_s']:g}"
    return [
        (
            f"workflows/s ({d['workflows']:,} workflows)",
            d["workflows_per_s"],
            target,
            met_text(d["met_workflows_per_s"]),
        ),
        (
            f"workflows/s ({d['single_thread_workflows']} from one thread)",
            d["single_thread_workflows_per_s"],
            target,
            met_text(d["met_single_thread"]),
        ),
        (
            "its start_workflow() call p50 / p99 ms",
            f"{d['single_thread_start_call_p50_ms']:.2f} / {d['single_thread_start_call_p99_ms']:.2f}",
            "",
            "",
        ),
        (
            "CPU ms/workflow: engine + children = total",
            f"{d['engine_cpu_s_per_workflow'] * 1000:.2f} + {d['children_cpu_s_per_workflow'] * 1000:.2f}"
            f" = {d['total_cpu_s_per_workflow'] * 1000:.2f}",
            f"total ≤ {d['target_cpu_ms_per_workflow']:g}",
            met_text(d["met_cpu"]),
        ),
        ("cores kept busy", f"{d['cores_used']:.2f}", "", ""),
        ("latency p50 / p99 ms", f"{d['latency_p50_ms']:,.0f} / {d['latency_p99_ms']:,.0f}", "", ""),
    ]


def _crash_restart(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"kill → next activity, {c['history_events_min']}-event history, p50 / p99 ms",
            f"{c['kill_to_started_p50_ms']:,.1f} / {c['kill_to_started_p99_ms']:,.1f}",
            f"p50 ≤ {c['target_p50_ms']:g}" if c["target_p50_ms"] else "",
            met_text(c["met"]),
        )
        for c in d["cases"]
    ]


def _engine_recovery(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"first resumed of {d['in_flight_at_kill']} s",
            d["first_resumed_s"],
            f"< {d['target_first_s']:g}",
            met_text(d["met"]),
        ),
        ("all completed s", d["all_completed_s"], "", ""),
    ]


def _timer(d: dict[str, Any]) -> list[Row]:
    return [
        (
            "100 ms sleep overshoot inside the workflow, p50 / p99 ms",
            f"{d['overshoot_p50_ms']:.2f} / {d['overshoot_p99_ms']:.2f}",
            f"p50 ≤ {d['target_p50_ms']:g}, p99 ≤ {d['target_p99_ms']:g}",
            met_text(d["met"]),
        ),
        ("100 ms sleeps resumed before their time", d["resumed_early"], "0", met_text(d["resumed_early"] == 0)),
    ]


def _signal(d: dict[str, Any]) -> list[Row]:
    return [
        (
            "signal() → result() p50 / p99 ms",
            f"{d['signal_to_result_p50_ms']:.2f} / {d['signal_to_result_p99_ms']:.2f}",
            f"p50 ≤ {d['target_p50_ms']:g}, p99 ≤ {d['target_p99_ms']:g}",
            met_text(d["met"]),
        ),
    ]


def _replay(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"replay of {d['events']:,} events ms",
            d["replay_median_ms"],
            f"≤ {d['target_ms']:g}" if d.get("target_ms") else "",
            met_text(d.get("met")),
        ),
        ("read + decode from the store ms", d["read_decode_median_ms"], "", ""),
    ]


def _lifecycle(d: dict[str, Any]) -> list[Row]:
    return [
        ("recycled process child lives/s", d["lives_per_s"], "", ""),
        (
            "CPU µs per life: owner (supervisor, hub) / children",
            f"{d['owner_cpu_us_per_life']:.0f} / {d['children_cpu_us_per_life']:.0f}",
            "",
            "",
        ),
    ]


def _activities(d: dict[str, Any]) -> list[Row]:
    best = max(d["cases"], key=lambda c: c["activities_per_s"])
    return [(f"activities/s ({best['in_flight']} workflows)", best["activities_per_s"], "", "")]


def _activity_burst(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for use_engine_cpu in (False, True):
        case = next(c for c in d["cases"] if c["use_engine_cpu"] is use_engine_cpu)
        where = "on every CPU" if use_engine_cpu else "off the engine's CPU"
        rows.append(
            (
                f"short workflow p50 / p99 ms beside {d['activities']} CPU-bound activities {where}; burst s",
                f"{case['during_p50_ms']:.1f} / {case['during_p99_ms']:.1f}; {case['burst_s']:.2f}",
                "",
                "",
            )
        )
    return rows


def _ray_activities(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for executor in ("local", "ray"):
        cases = [c for c in d["cases"] if c["executor"] == executor]
        if cases:
            best = max(cases, key=lambda c: c["activities_per_s"])
            one = next(c for c in cases if c["in_flight"] == 1)
            figure = f"{executor}: activities/s ({best['in_flight']} wf), dispatch→start p50 ms (1 wf)"
            rows.append((figure, f"{best['activities_per_s']:,.0f}, {one['dispatch_to_start_p50_ms']:.1f}", "", ""))
    return rows


def _recorder(d: dict[str, Any]) -> list[Row]:
    return [
        (
            "100 workflows the engine's way, % of raw ceiling",
            f"{100 * d['engine_100_ratio_to_raw_100']:.0f}%",
            f"≥ {100 * d['target_ratio']:.0f}%",
            met_text(d["met"]),
        ),
        ("100 writer threads, % of raw ceiling", f"{100 * d['threads_100_ratio_to_raw_100']:.0f}%", "", ""),
    ]


def _testing_env(d: dict[str, Any]) -> list[Row]:
    return [("30-day sleep + 1-hour signal timeout, real ms p50", d["thirty_day_test_p50_ms"], "", "")]


def _visibility(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"selective query of {d['runs']:,} runs ms (x faster than a scan)",
            f"{d['selective_query_ms']:.2f} ({d['speedup']:.0f}x)",
            f"< {d['target_ms']:g} ms, ≥ {d['target_speedup']:g}x",
            met_text(d["met"]),
        ),
    ]


def _schedules(d: dict[str, Any]) -> list[Row]:
    return [
        (
            f"schedule fire lateness p50 / p99 ({d['schedules']} schedules at 1 s)",
            f"{d['lateness_p50_ms']:.1f} / {d['lateness_p99_ms']:.1f} ms",
            f"p99 < {d['target_p99_ms']:g} ms",
            met_text(d["met"]),
        ),
    ]


def _waiting(d: dict[str, Any]) -> list[Row]:
    return [
        (f"starts/s ({d['runs']:,} waiting runs)", d["starts_per_s"], f"≥ {d['target_starts_per_s']:,.0f}",
         met_text(d["starts_met"])),
        ("engine RSS MiB, all waiting, settled", d["settled_engine_rss_mib"], f"≤ {d['target_engine_rss_mib']:g}",
         met_text(d["engine_rss_met"])),
        ("unique MiB of all processes, settled", d["settled_unique_mib"], f"≤ {d['target_unique_mib']:g}",
         met_text(d["unique_met"])),
        ("processes / open fds, settled", f"{d['settled_processes']} / {d['settled_open_fds']}", "", ""),
        ("signal all → all completed s", d["signal_all_s"], f"≤ {d['target_signal_all_s']:g}",
         met_text(d["signal_all_met"])),
    ]  # fmt: skip


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "throughput": _throughput,
    "crash_restart": _crash_restart,
    "engine_recovery": _engine_recovery,
    "timer": _timer,
    "signal": _signal,
    "replay": _replay,
    "activities": _activities,
    "activity_burst": _activity_burst,
    "recorder": _recorder,
    "testing_env": _testing_env,
    "visibility": _visibility,
    "schedules": _schedules,
    "ray_activities": _ray_activities,
    "waiting": _waiting,
    "lifecycle": _lifecycle,
}


def available() -> list[str]:
    """Every benchmark module in this package: the ones above first, then any other (``restart``, ...)."""
    found = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    return [name for name in SUMMARIES if name in found] + [name for name in found if name not in SUMMARIES]


def run(name: str, quick: bool) -> tuple[dict[str, Any] | None, float]:
    """Run benchmark ``name`` in a subprocess, passing its output through; its JSON line and wall seconds."""
    command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if quick else [])]
    began = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    sys.stdout.write(completed.stdout)
    if completed.returncode != 0:
        sys.stdout.write(completed.stderr)
        return None, elapsed
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line), elapsed
    return None, elapsed


def main() -> None:
    """Run the benchmarks and print the summary table and a JSON line of every result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every benchmark's quick mode (for CI)")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    names = args.names or available()
    rows: list[tuple[Any, ...]] = []
    results: dict[str, Any] = {}
    failed = []
    for name in names:
        data, elapsed = run(name, args.quick)
        results[name] = data
        if data is None:
            failed.append(name)
            rows.append((name, "FAILED", "", "", "", f"{elapsed:.1f}"))
            continue
        summary = SUMMARIES.get(name, lambda _d: [("(see its table)", "", "", "")])(data)
        for index, (figure, value, target, met) in enumerate(summary):
            rows.append(
                (name if index == 0 else "", figure, value, target, met, f"{elapsed:.1f}" if index == 0 else "")
            )
    facts = machine()
    title = (
        f"aion benchmarks{' (quick)' if args.quick else ''}: {facts['cores']} cores, Python {facts['python']}, "
        f"load {facts['load_average']}, Python speed {facts['python_speed_ms']} ms, {facts['date']}"
    )
    report(
        "all",
        title,
        ["benchmark", "figure", "value", "target", "met", "run s"],
        rows,
        {"quick": args.quick, "results": results, "failed": failed},
        facts=facts,
    )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
