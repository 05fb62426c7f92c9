"""``/metrics`` of a real engine, scraped over HTTP on a loopback port and parsed with the Prometheus text parser:
counters move as workflows complete, fail, retry and crash; histograms have observations."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import aion
from aion.control import connect_engine
from aion.errors import InvalidArgumentError, WorkflowFailedError
from tests.helpers import wait_until
from tests.observability import flows

WORKFLOWS = [flows.tree, flows.leaf, flows.retrying, flows.failing, flows.waiting]
ACTIVITIES = [flows.double, flows.flaky, flows.current_span_id]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(engine: aion.Engine) -> Samples:
    """Every sample of the engine's ``/metrics``, by name and labels."""
    address = engine.metrics_address
    assert address is not None
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it is absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.timeout(120)
def test_counters_move_as_workflows_complete_fail_retry_and_crash(tmp_path: Path) -> None:
    with aion.Engine(
        tmp_path / "data", WORKFLOWS, ACTIVITIES, metrics="127.0.0.1:0", activity_workers=1, warm_pool=1
    ) as engine:
        assert value(scrape(engine), "aion_workflows_started_total", workflow_type="tree") == 0
        engine.start_workflow(flows.tree, 1, workflow_id="t").result(timeout=60)
        assert engine.start_workflow(flows.retrying, 2).result(timeout=60) == "ok after 3"
        with pytest.raises(WorkflowFailedError):
            engine.start_workflow(flows.failing, "boom").result(timeout=60)

        # A crash: SIGKILL the workflow process; it restarts, replays, and the run still completes.
        handle = engine.start_workflow(flows.waiting, workflow_id="w")
        pid = wait_until(lambda: engine.workflow_pid("w"), timeout=30)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: engine.workflow_pid("w") not in (None, pid), timeout=30)
        handle.signal("go", "went")
        assert handle.result(timeout=60) == "went"

        with connect_engine(engine.data_dir) as client:  # type: ignore[union-attr]
            client.request("ping")

        def settled() -> Samples | None:
            samples = scrape(engine)
            done = value(samples, "aion_workflows_completed_total", workflow_type="waiting") == 1
            return samples if done else None

        samples = wait_until(settled, timeout=30)

    assert value(samples, "aion_workflows_started_total", workflow_type="tree") == 1
    assert value(samples, "aion_workflows_started_total", workflow_type="leaf") == 1
    assert value(samples, "aion_workflows_completed_total", workflow_type="tree") == 1
    assert value(samples, "aion_workflows_completed_total", workflow_type="leaf") == 1
    assert value(samples, "aion_workflows_failed_total", workflow_type="failing") == 1
    assert value(samples, "aion_workflows_completed_total", workflow_type="retrying") == 1
    # Retries: three attempts of flaky, two of them failed and retried, none final.
    assert value(samples, "aion_activity_attempts_total", activity_type="flaky") == 3
    assert value(samples, "aion_activity_failures_total", activity_type="flaky", final="false") == 2
    assert value(samples, "aion_activity_failures_total", activity_type="flaky", final="true") == 0
    assert value(samples, "aion_activity_attempts_total", activity_type="double") == 2
    # The crash and its restart, by supervisor and exit kind.
    assert value(samples, "aion_process_restarts_total", supervisor="workflows:waiting", reason="killed") == 1
    assert value(samples, "aion_process_exits_total", supervisor="workflows:waiting", reason="killed") == 1
    assert value(samples, "aion_control_requests_total", op="ping") >= 1
    # Histograms have observations.
    for name, labels in [
        ("aion_workflow_duration_seconds_count", {"workflow_type": "tree", "outcome": "completed"}),
        ("aion_workflow_duration_seconds_count", {"workflow_type": "failing", "outcome": "failed"}),
        ("aion_activity_execution_seconds_count", {"activity_type": "flaky"}),
        ("aion_activity_schedule_to_start_seconds_count", {"activity_type": "double"}),
        ("aion_recorder_commit_seconds_count", {}),
        ("aion_recorder_batch_size_count", {}),
    ]:
        assert value(samples, name, **labels) > 0, (name, labels)
    assert value(samples, "aion_activity_execution_seconds_count", activity_type="flaky") == 3
    assert value(samples, "aion_recorder_fsyncs_total") > 0
    assert value(samples, "aion_appends_total") > 0
    assert value(samples, "aion_events_recorded_total", event_type="WorkflowStarted") == 5
    assert ("aion_resident_runs", frozenset()) in samples
    assert value(samples, "aion_max_resident_runs") == 64


@pytest.mark.timeout(60)
def test_a_timer_lag_is_observed(tmp_path: Path) -> None:
    @aion.workflow.defn
    async def sleeper() -> None:
        await aion.workflow.sleep(0.05)

    with aion.Engine(tmp_path / "data", [sleeper], [], metrics=True, activity_workers=1, warm_pool=1) as engine:
        engine.start_workflow(sleeper).result(timeout=30)
        registry = engine.metrics_registry
        assert registry is not None
        assert engine.metrics_address is None  # counted, not served
        wait_until(lambda: (registry.get_sample_value("aion_timer_lag_seconds_count") or 0) >= 1)


@pytest.mark.timeout(60)
def test_engines_in_one_process_have_registries_of_their_own(tmp_path: Path) -> None:
    with (
        aion.Engine(tmp_path / "a", [flows.leaf], [flows.double], metrics="127.0.0.1:0", activity_workers=1) as a,
        aion.Engine(tmp_path / "b", [flows.leaf], [flows.double], metrics="127.0.0.1:0", activity_workers=1) as b,
    ):
        a.start_workflow(flows.leaf, 1).result(timeout=30)
        wait_until(lambda: value(scrape(a), "aion_workflows_completed_total", workflow_type="leaf") == 1)
        assert value(scrape(b), "aion_workflows_completed_total", workflow_type="leaf") == 0
        assert a.metrics_address != b.metrics_address


def test_a_bad_metrics_address_is_refused() -> None:
    for bad in ("nohost", "host:port", ":9000", "127.0.0.1:70000"):
        with pytest.raises(InvalidArgumentError, match="HOST:PORT"):
            aion.Engine("/nonexistent", [flows.leaf], metrics=bad)
    with pytest.raises(InvalidArgumentError, match="metrics must be"):
        aion.Engine("/nonexistent", [flows.leaf], metrics=9000)  # type: ignore[arg-type]
