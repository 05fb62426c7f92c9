"""Every benchmark's ``--quick`` mode runs and prints a JSON line with its figures (never asserts on speed).

This is what keeps a benchmark from rotting silently: CI runs each one as ``python -m benchmarks.<name> --quick``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MACHINE = {"benchmark", "cores", "python", "date", "load_average", "python_speed_ms"}

#: benchmark -> keys its JSON line must carry (besides the machine facts)
EXPECTED: dict[str, set[str]] = {
    "visibility": {"runs", "selective_query_ms", "full_scan_ms", "speedup", "count_by_status_ms", "met"},
    "schedules": {"schedules", "fires", "lateness_p50_ms", "lateness_p99_ms", "target_p99_ms", "met"},
    "throughput": {
        "workflows",
        "workflows_per_s",
        "activities_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "engine_cpu_s_per_workflow",
        "children_cpu_s_per_workflow",
        "total_cpu_s_per_workflow",
        "cores_used",
        "target_workflows_per_s",
        "single_thread_workflows_per_s",
        "single_thread_start_call_p50_ms",
        "single_thread_start_call_p99_ms",
        "single_thread_commits_per_workflow",
        "single_thread_warm_workflows_per_s",
        "single_thread_warm_start_call_p50_ms",
        "single_thread_warm_commits_per_workflow",
        "paced_latency_p50_ms",
        "paced_latency_p99_ms",
        "paced_commits_per_workflow",
        "single_thread_warm_total_cpu_s_per_workflow",
        "commits_per_workflow",
        "start_call_p50_ms",
        "target_cpu_ms_per_workflow",
        "met_cpu",
        "met",
    },
    "crash_restart": {"cases"},
    "engine_recovery": {
        "workflows",
        "in_flight_at_kill",
        "engine_start_s",
        "first_resumed_s",
        "all_completed_s",
        "target_first_s",
        "met",
    },
    "timer": {
        "sleeps",
        "overshoot_p50_ms",
        "overshoot_p99_ms",
        "resumed_early",
        "recorded_p50_ms",
        "target_p50_ms",
        "target_p99_ms",
        "met",
    },
    "signal": {
        "signals",
        "signal_to_result_p50_ms",
        "signal_to_result_p99_ms",
        "signal_call_p50_ms",
        "target_p50_ms",
        "target_p99_ms",
        "met",
    },
    "replay": {"events", "replay_median_ms", "replay_min_ms", "replay_events_per_s", "read_decode_median_ms"},
    "activities": {"cases"},
    "activity_burst": {"activities", "activity_cpu_ms", "cases"},
    "testing_env": {"runs", "environment_start_s", "thirty_day_test_p50_ms", "thirty_day_test_max_ms"},
    "ray_activities": {"cases", "ray"},
    "lifecycle": {
        "lives",
        "in_flight",
        "lives_per_s",
        "owner_cpu_us_per_life",
        "owner_cpu_us_per_life_by_thread",
        "children_cpu_us_per_life",
    },
    "waiting": {
        "runs",
        "starts_per_s",
        "all_waiting_s",
        "engine_rss_mib",
        "unique_mib",
        "processes",
        "open_fds",
        "settled_unique_mib",
        "settled_processes",
        "signal_all_s",
        "starts_met",
        "engine_rss_met",
        "unique_met",
        "signal_all_met",
        "met",
    },
}
CRASH_CASE = {
    "history_size",
    "kills",
    "history_events_min",
    "history_events_max",
    "kill_to_scheduled_p50_ms",
    "kill_to_scheduled_p99_ms",
    "kill_to_started_p50_ms",
    "kill_to_started_p99_ms",
    "met",
}


def run_quick(*args: str) -> dict[str, Any]:
    """Run ``python -m <args> --quick``; the JSON line it printed last."""
    completed = subprocess.run(
        [sys.executable, "-m", *args, "--quick"], cwd=REPO, capture_output=True, text=True, timeout=170, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert lines, completed.stdout[-3000:]
    data: dict[str, Any] = json.loads(lines[-1])
    return data


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_quick_mode_prints_its_figures(name: str) -> None:
    data = run_quick(f"benchmarks.{name}")
    assert data["benchmark"] == name
    assert set(data) >= MACHINE
    assert data["python_speed_ms"] > 0
    assert EXPECTED[name] <= set(data), EXPECTED[name] - set(data)
    if name == "crash_restart":
        assert [case["history_size"] for case in data["cases"]] == [10, 100, 1000]
        for case in data["cases"]:
            assert set(case) >= CRASH_CASE, CRASH_CASE - set(case)
            assert case["kills"] > 0
    if name == "throughput":
        assert 0 < data["single_thread_start_call_p50_ms"] <= data["single_thread_start_call_p99_ms"]
        # Each start is a transaction of its own at least; the warm batch commits for its starts too.
        assert data["single_thread_commits_per_workflow"] >= 1 and data["single_thread_warm_commits_per_workflow"] >= 1
        assert 0 < data["paced_latency_p50_ms"] <= data["paced_latency_p99_ms"]
        assert data["paced_commits_per_workflow"] >= 1
    if name == "activity_burst":
        assert [case["use_engine_cpu"] for case in data["cases"]] == [False, True]
        assert all(case["during_samples"] >= 1 and case["burst_s"] > 0 for case in data["cases"])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_runner_summarises_the_named_benchmarks() -> None:
    data = run_quick("benchmarks", "timer", "replay")
    assert data["benchmark"] == "all"
    assert data["failed"] == []
    assert set(data["results"]) == {"timer", "replay"}
    assert data["results"]["timer"]["benchmark"] == "timer"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_throughput_with_metrics_on_runs_and_counts_its_workflows() -> None:
    # The benchmark itself checks that the engine's registry counted every workflow it completed.
    data = run_quick("benchmarks.throughput", "--metrics")
    assert data["benchmark"] == "throughput"
    assert data["metrics"] is True
    one_batch = {key for key in EXPECTED["throughput"] if not key.startswith(("single_thread_", "paced_"))} - {
        "target_cpu_ms_per_workflow",
        "met_cpu",
    }
    assert one_batch <= set(data), one_batch - set(data)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_throughput_metrics_cost_alternates_off_and_on_and_reports_the_cost() -> None:
    data = run_quick("benchmarks.throughput", "--metrics-cost", "2")
    assert data["benchmark"] == "throughput_metrics_cost"
    assert data["pairs"] == 2 and data["workflows"] == 100
    assert data["off_workflows_per_s"] > 0 and data["on_workflows_per_s"] > 0
    assert {"throughput_cost", "engine_cpu_cost", "target_cost", "met"} <= set(data)


@pytest.mark.timeout(10)
def test_the_cpu_target_is_compared_without_the_float_noise_of_summed_cpu_times() -> None:
    from benchmarks.throughput import cpu_target_met

    # What a batch read on 2026-12-05: engine 1.23 + children 0.77 ms per workflow, each a difference of two
    # readings of cumulative CPU seconds.
    total = 0.0020000000000000005
    assert total * 1000 > 2.0
    assert cpu_target_met(total)
    assert not cpu_target_met(0.00201)
