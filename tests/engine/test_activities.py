"""Activities end to end: retries with durable backoff, timeouts, heartbeats, cancellation, lost workers."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aion
from aion import events as ev
from tests.engine import activity_flows as af
from tests.engine import flows
from tests.engine.helpers import engine_process, recorded
from tests.helpers import wait_until

FAST = {"initial_interval": 0.05, "backoff_coefficient": 2.0}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(
        tmp_path / "data",
        workflows=af.WORKFLOWS,
        activities=af.ACTIVITIES,
        activity_workers=2,
        activity_cancel_grace=0.3,
    ) as running:
        yield running


def run_call(engine: aion.Engine, log: str, name: str, args: list[Any], **options: Any) -> tuple[Any, list[ev.Event]]:
    handle = engine.start_workflow(af.call, log, name, args, options)
    return handle.result(timeout=60), handle.history()


def of_type(history: list[ev.Event], kind: type[ev.Event]) -> list[Any]:
    return [event for event in history if isinstance(event, kind)]


@pytest.mark.timeout(60)
def test_failing_twice_then_succeeding_completes_on_attempt_3_after_recorded_backoffs(
    engine: aion.Engine, log: str
) -> None:
    result, history = run_call(engine, log, "flaky", [2], start_to_close_timeout=10, retry_policy=FAST)
    assert result == 3
    assert flows.executions(log) == ["flaky:1", "flaky:2", "flaky:3"]
    assert [e.attempt for e in of_type(history, ev.ActivityStarted)] == [1, 2, 3]
    failed = of_type(history, ev.ActivityFailed)
    assert [(f.attempt, f.retryable, f.failure.type) for f in failed] == [
        (1, True, "ConnectionError"),
        (2, True, "ConnectionError"),
    ]
    started = of_type(history, ev.ActivityStarted)
    for failure, next_start in zip(failed, started[1:], strict=True):
        assert failure.next_attempt_at is not None and failure.next_attempt_at > failure.recorded_at
        assert next_start.recorded_at >= failure.next_attempt_at  # the recorded backoff was honoured
    first_gap = failed[0].next_attempt_at - failed[0].recorded_at
    second_gap = failed[1].next_attempt_at - failed[1].recorded_at
    assert second_gap > first_gap  # backoff grows by the coefficient
    assert of_type(history, ev.ActivityCompleted)[0].attempt == 3


@pytest.mark.timeout(60)
def test_non_retryable_failures_stop_at_once(engine: aion.Engine, log: str) -> None:
    result, _ = run_call(engine, log, "declines", ["application"], start_to_close_timeout=10, retry_policy=FAST)
    assert result == {"error": "Declined", "attempt": 1, "details": {"code": 51}}
    policy = {**FAST, "non_retryable_error_types": ["CardDeclinedError"]}
    result, history = run_call(engine, log, "declines", ["type"], start_to_close_timeout=10, retry_policy=policy)
    assert result["error"] == "CardDeclinedError" and result["attempt"] == 1
    (final,) = of_type(history, ev.ActivityFailed)
    assert final.retryable is False and final.next_attempt_at is None
    assert flows.executions(log) == ["declines:1", "declines:1"]


@pytest.mark.timeout(60)
def test_maximum_attempts_is_honoured(engine: aion.Engine, log: str) -> None:
    policy = {**FAST, "maximum_attempts": 3}
    result, history = run_call(engine, log, "flaky", [10], start_to_close_timeout=10, retry_policy=policy)
    assert result["error"] == "ConnectionError" and result["attempt"] == 3
    assert flows.executions(log) == ["flaky:1", "flaky:2", "flaky:3"]
    assert of_type(history, ev.ActivityFailed)[-1].next_attempt_at is None


@pytest.mark.timeout(60)
def test_heartbeat_details_reach_the_next_attempt(engine: aion.Engine, log: str) -> None:
    result, history = run_call(engine, log, "heartbeats_then_fails", [], start_to_close_timeout=10, retry_policy=FAST)
    assert result == {"progress": 41}
    assert of_type(history, ev.ActivityFailed)[0].heartbeat_details == {"progress": 41}


@pytest.mark.timeout(60)
def test_start_to_close_timeout_kills_the_attempt_and_retries(engine: aion.Engine, log: str) -> None:
    policy = {**FAST, "maximum_attempts": 2}
    result, history = run_call(engine, log, "sleeps", [30], start_to_close_timeout=0.3, retry_policy=policy)
    assert result["error"] == "StartToCloseTimeout" and result["attempt"] == 2
    assert [f.failure.type for f in of_type(history, ev.ActivityFailed)] == ["StartToCloseTimeout"] * 2
    # The killed workers were replaced: the pool still runs activities.
    assert run_call(engine, log, "flaky", [0], start_to_close_timeout=10)[0] == 1


@pytest.mark.timeout(60)
def test_schedule_to_close_timeout_ends_the_retries(engine: aion.Engine, log: str) -> None:
    result, _ = run_call(
        engine, log, "sleeps", [30], start_to_close_timeout=10, schedule_to_close_timeout=0.4, retry_policy=FAST
    )
    assert result["error"] == "ScheduleToCloseTimeout"
    result, history = run_call(engine, log, "flaky", [100], schedule_to_close_timeout=0.5, retry_policy=FAST)
    assert result["error"] in ("ConnectionError", "ScheduleToCloseTimeout")
    assert len(of_type(history, ev.ActivityStarted)) >= 2


@pytest.mark.timeout(60)
def test_missing_heartbeats_fail_the_attempt(engine: aion.Engine, log: str) -> None:
    policy = {**FAST, "maximum_attempts": 1}
    result, _ = run_call(
        engine,
        log,
        "heartbeats_once_then_stalls",
        [],
        start_to_close_timeout=30,
        heartbeat_timeout=0.3,
        retry_policy=policy,
    )
    assert result["error"] == "HeartbeatTimeout"


@pytest.mark.timeout(60)
def test_worker_killed_mid_activity_fails_the_attempt_which_is_retried(
    engine: aion.Engine, log: str, gates: Path
) -> None:
    handle = engine.start_workflow(
        af.call, log, "waits_for_gate", [str(gates)], {"start_to_close_timeout": 30, "retry_policy": FAST}
    )
    pid = int(wait_until(lambda: (gates / "pid.1").exists() and (gates / "pid.1").read_text()))
    os.kill(pid, signal.SIGKILL)
    wait_until((gates / "pid.2").exists)
    (gates / "open.2").touch()
    assert handle.result(timeout=30) == 2
    (lost,) = of_type(handle.history(), ev.ActivityFailed)
    assert lost.failure.type == "WorkerLost" and "SIGKILL" in lost.failure.message and lost.retryable


@pytest.mark.timeout(60)
def test_cancelling_a_heartbeating_activity_reaches_it(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = engine.start_workflow(af.cancels, log, "heartbeats_until_cancelled", str(gates))
    wait_until((gates / "heartbeating.started").exists)
    handle.signal("cancel")
    assert handle.result(timeout=30) == "cancelled"
    assert "heartbeating:saw-cancel" in flows.executions(log)
    types = [e.type for e in handle.history()]
    assert types.index("ActivityCancelRequested") < types.index("ActivityCancelled")


@pytest.mark.timeout(60)
def test_cancelling_an_activity_that_never_heartbeats_kills_it_after_the_grace(
    engine: aion.Engine, log: str, gates: Path
) -> None:
    handle = engine.start_workflow(af.cancels, log, "ignores_cancellation", str(gates))
    wait_until((gates / "ignores.started").exists)
    handle.signal("cancel")
    assert handle.result(timeout=30) == "cancelled"
    assert "ActivityCancelled" in [e.type for e in handle.history()]
    assert run_call(engine, log, "flaky", [0], start_to_close_timeout=10)[0] == 1  # the worker was replaced


@pytest.mark.timeout(60)
def test_bad_activity_inputs_and_results_are_typed_errors(engine: aion.Engine, log: str) -> None:
    result, history = run_call(engine, log, "returns_unserialisable", [], start_to_close_timeout=10, retry_policy=FAST)
    assert result["error"] == "PayloadError" and result["attempt"] == 1
    assert "cannot serialise" in of_type(history, ev.ActivityFailed)[0].failure.message
    for which in ("none", "zero", "negative"):
        outcome = engine.start_workflow(af.bad_timeouts, log, which).result(timeout=30)
        assert outcome.startswith("refused:"), outcome
    assert "start_to_close_timeout or schedule_to_close_timeout" in engine.start_workflow(
        af.bad_timeouts, log, "none"
    ).result(timeout=30)


@pytest.mark.timeout(120)
def test_engine_sigkill_during_a_backoff_and_a_running_attempt(tmp_path: Path, log: str, gates: Path) -> None:
    data = tmp_path / "data"
    with engine_process("tests.engine.activity_engine_proc", data, log, gates) as kill:
        wait_until(lambda: "flaky:1" in flows.executions(log) and (gates / "pid.1").exists(), timeout=30)
        wait_until(lambda: any(isinstance(e, ev.ActivityFailed) for e in recorded(data, "backoff")), timeout=30)
        kill()  # one workflow is in its durable backoff, the other's attempt is running
    # A first attempt's ActivityStarted is recorded with its outcome: none was durable at the kill.
    assert not of_type(recorded(data, "running"), ev.ActivityStarted)
    (gates / "open.1").touch()
    with aion.Engine(data, workflows=af.WORKFLOWS, activities=af.ACTIVITIES, activity_workers=2) as engine:
        backoff = engine.get_workflow("backoff")
        running = engine.get_workflow("running")
        assert backoff.result(timeout=30) == 2
        assert running.result(timeout=30) == 1
        backoff_history, running_history = backoff.history(), running.history()
    # The backoff resumed at its recorded time (its retry's ActivityStarted was recorded when it started).
    (failed,) = of_type(backoff_history, ev.ActivityFailed)
    assert of_type(backoff_history, ev.ActivityStarted)[-1].recorded_at >= failed.next_attempt_at
    # The running first attempt, never recorded, was dispatched again as attempt 1: nothing was recorded lost.
    assert not of_type(running_history, ev.ActivityFailed)
    (started,) = of_type(running_history, ev.ActivityStarted)
    (completed,) = of_type(running_history, ev.ActivityCompleted)
    assert started.attempt == completed.attempt == 1 and started.seq + 1 == completed.seq
    assert started.recorded_at == completed.recorded_at  # one append
    runs = flows.executions(log)
    assert runs.count("flaky:1") == 1 and runs.count("flaky:2") == 1
    assert runs.count("gated:1") == 2


@pytest.mark.timeout(120)
def test_engine_sigkill_during_a_retry_records_it_lost(tmp_path: Path, log: str, gates: Path) -> None:
    """A retry (attempt 2 on) is recorded when it starts, so one running at an engine kill is recorded lost and
    the retry policy goes on counting from it."""
    data = tmp_path / "data"
    with engine_process("tests.engine.activity_engine_proc", data, log, gates, "retry") as kill:
        wait_until((gates / "retry.pid.2").exists, timeout=30)
        wait_until(lambda: len(of_type(recorded(data, "retrying"), ev.ActivityStarted)) == 2, timeout=30)
        kill()
    (gates / "retry.open.3").touch()
    with aion.Engine(data, workflows=af.WORKFLOWS, activities=af.ACTIVITIES, activity_workers=2) as engine:
        retrying = engine.get_workflow("retrying")
        assert retrying.result(timeout=30) == 3
        history = retrying.history()
    failed, lost = of_type(history, ev.ActivityFailed)
    assert (failed.attempt, failed.failure.type) == (1, "ConnectionError")
    assert (lost.attempt, lost.failure.type) == (2, "WorkerLost")
    assert [e.attempt for e in of_type(history, ev.ActivityStarted)] == [1, 2, 3]
    assert flows.executions(log).count("retried:2") == 1
