"""End-to-end tests of workflows through the public API, with real processes, LMDB files and SIGKILLs."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion import workflow
from aion.engine._messages import SignalWorkflow
from aion.engine._timer_lead import TIMER_LEAD_S
from tests.engine import flows
from tests.helpers import wait_until


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(
        tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=2
    ) as running:
        yield running


def kill_workflow_process(engine: aion.Engine, workflow_id: str) -> int:
    pid = wait_until(lambda: engine.workflow_pid(workflow_id))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: engine.workflow_pid(workflow_id) not in (None, pid))
    return pid


def history_types(handle: aion.WorkflowHandle) -> list[str]:
    return [event.type for event in handle.history()]


@pytest.mark.timeout(60)
def test_checkout_example_runs_end_to_end(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.checkout, log, {"id": 1, "amount": 30}, workflow_id="order-1")
    assert handle.workflow_id == "order-1" and handle.run_id
    wait_until(lambda: handle.query("stage") == "waiting")
    handle.signal("approve", "alice")
    result = handle.result(timeout=30)
    assert result["receipt"] == {"charged": 1, "amount": 30}
    assert result["by"] == "alice" and result["sum"] == 6
    assert handle.query("stage") == "done"  # closed run: answered by a replay
    description = handle.describe()
    assert description.status is aion.WorkflowStatus.COMPLETED and description.workflow_type == "checkout"
    types = history_types(handle)
    assert types[0] == "WorkflowStarted" and types[-1] == "WorkflowCompleted"
    assert [e.seq for e in handle.history()] == list(range(1, len(types) + 1))
    assert engine.get_workflow("order-1").run_id == handle.run_id
    assert [r.workflow_id for r in engine.list_workflows(status="completed", workflow_type=flows.checkout)] == [
        "order-1"
    ]
    assert sorted(flows.executions(log)) == ["charge:1", "double:1", "double:2"]


@pytest.mark.timeout(90)
def test_fifty_concurrent_workflows_complete(engine: aion.Engine, log: str) -> None:
    handles = [engine.start_workflow(flows.chain, log, 3, workflow_id=f"chain-{i}") for i in range(50)]
    assert [h.result(timeout=60) for h in handles] == [0 + 2 + 4] * 50
    assert Counter(flows.executions(log)) == {"double:0": 50, "double:1": 50, "double:2": 50}
    assert len(engine.list_workflows(status=aion.WorkflowStatus.COMPLETED)) == 50


@pytest.mark.timeout(60)
def test_async_activity_and_caught_activity_failure(engine: aion.Engine, log: str) -> None:
    assert engine.start_workflow(flows.uses_async_activity, log).result(timeout=30) == 5
    assert engine.start_workflow(flows.catches_failure, log).result(timeout=30) == "caught ActivityError: ValueError"


@pytest.mark.timeout(60)
def test_exception_in_workflow_fails_it_with_cause(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.raises, log)
    with pytest.raises(aion.WorkflowFailedError) as caught:
        handle.result(timeout=30)
    assert caught.value.type == "RuntimeError" and "workflow code raised" in str(caught.value)
    assert "raise RuntimeError" in (caught.value.traceback or "")
    assert handle.describe().status is aion.WorkflowStatus.FAILED


@pytest.mark.timeout(90)
def test_workflow_process_killed_at_every_await_kind_completes_with_activities_run_once(
    engine: aion.Engine, log: str, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    handle = engine.start_workflow(flows.gated, log, str(gates), workflow_id="gated")

    # 1. waiting on an activity
    wait_until((gates / "a.started").exists)
    kill_workflow_process(engine, "gated")
    (gates / "a.open").touch()
    # 2. waiting on a durable sleep
    wait_until(lambda: "TimerStarted" in history_types(handle))
    kill_workflow_process(engine, "gated")
    # 3. waiting on a signal
    wait_until(lambda: handle.query("stage") == "signal")
    kill_workflow_process(engine, "gated")
    handle.signal("go", "bob")
    # 4. waiting on a gather of two activities
    wait_until(lambda: (gates / "b.started").exists() and (gates / "c.started").exists())
    kill_workflow_process(engine, "gated")
    (gates / "b.open").touch()
    (gates / "c.open").touch()

    assert handle.result(timeout=30) == ["a", "bob", "b", "c"]
    assert sorted(flows.executions(log)) == ["gate:a", "gate:b", "gate:c"]
    types = history_types(handle)
    assert types.count("ActivityScheduled") == 3 and types.count("WorkflowCompleted") == 1


@pytest.mark.timeout(90)
def test_workflow_process_killed_at_random_points_completes_exactly_once(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.chain, log, 12, workflow_id="chain-kill")
    kills = 0
    for completed in (2, 5, 9):
        wait_until(lambda n=completed: history_types(handle).count("ActivityCompleted") >= n or _closed(handle))
        pid = wait_until(lambda: engine.workflow_pid("chain-kill") or _closed(handle))
        if _closed(handle):
            break
        os.kill(pid, signal.SIGKILL)
        kills += 1
        # Restarted in another process; with little left to do, the run may also have finished there before a
        # look at the tree saw that process.
        wait_until(lambda p=pid: engine.workflow_pid("chain-kill") not in (None, p) or _closed(handle))
    assert handle.result(timeout=30) == sum(2 * i for i in range(12))
    assert Counter(flows.executions(log)) == {f"double:{i}": 1 for i in range(12)}
    assert kills >= 1


def _closed(handle: aion.WorkflowHandle) -> bool:
    return handle.history()[-1].terminal


@pytest.mark.timeout(60)
def test_crash_loop_fails_the_run_after_restart_intensity(tmp_path: Path, log: str) -> None:
    with aion.Engine(
        tmp_path / "data", workflows=[flows.crash_loop], activities=[], activity_workers=1, max_restarts=2
    ) as engine:
        handle = engine.start_workflow(flows.crash_loop, log)
        with pytest.raises(aion.WorkflowFailedError) as caught:
            handle.result(timeout=30)
    assert caught.value.type == "WorkflowProcessCrashed"
    assert "exit" in str(caught.value).lower()
    assert len(flows.executions(log)) == 3  # the first run and two restarts


@pytest.mark.timeout(60)
def test_determinism_guard_fails_a_workflow_that_reads_the_wall_clock(engine: aion.Engine, log: str) -> None:
    with pytest.raises(aion.WorkflowFailedError) as caught:
        engine.start_workflow(flows.reads_wall_clock, log).result(timeout=30)
    assert caught.value.type == "NonDeterministicCallError"
    assert "workflow.now()" in str(caught.value)


@pytest.mark.timeout(60)
def test_unknown_activity_is_a_typed_error_inside_the_workflow(engine: aion.Engine, log: str) -> None:
    with pytest.raises(aion.WorkflowFailedError) as caught:
        engine.start_workflow(flows.calls_unknown_activity, log).result(timeout=30)
    assert caught.value.type == "UnknownActivityTypeError" and "no-such-activity" in str(caught.value)


@pytest.mark.timeout(60)
def test_signals_are_buffered_in_order_and_start_of_a_running_id_is_refused(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.waits_for_signals, log, 3, workflow_id="sig")
    with pytest.raises(aion.WorkflowAlreadyStartedError):
        engine.start_workflow(flows.waits_for_signals, log, 3, workflow_id="sig")
    for item in ("x", "y", "z"):
        handle.signal("item", item)
    assert handle.result(timeout=30) == ["x", "y", "z"]
    with pytest.raises(aion.WorkflowNotRunningError):
        handle.signal("item", "late")
    second = engine.start_workflow(flows.waits_for_signals, log, 0, workflow_id="sig")
    assert second.run_id != handle.run_id and second.result(timeout=30) == []
    assert handle.result(timeout=1) == ["x", "y", "z"]


@pytest.mark.timeout(60)
def test_queries_answer_from_live_state_and_unknown_names_are_refused(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.checkout, log, {"id": 7})
    wait_until(lambda: handle.query("stage") == "waiting")
    with pytest.raises(aion.QueryError, match="stage"):
        handle.query("nope")
    assert "QueryAnswered" not in history_types(handle)
    handle.signal("approve", "carol")
    handle.result(timeout=30)


@pytest.mark.timeout(60)
def test_bad_inputs_of_the_api_are_typed_errors(engine: aion.Engine, log: str, tmp_path: Path) -> None:
    with pytest.raises(aion.errors.UnknownWorkflowTypeError, match="nope"):
        engine.start_workflow("nope", log)
    with pytest.raises(aion.PayloadError, match=r"checkout input\[1\]\.bad"):
        engine.start_workflow(flows.checkout, log, {"bad": object()})
    with pytest.raises(aion.InvalidArgumentError):
        engine.start_workflow(flows.checkout, log, {}, workflow_id="bad\nid")
    with pytest.raises(aion.WorkflowNotFoundError):
        engine.get_workflow("never-started")
    with pytest.raises(aion.WorkflowNotFoundError):
        engine.request(SignalWorkflow("never-started", "x", None))
    with pytest.raises(aion.errors.ResultTimeoutError):
        engine.start_workflow(flows.waits_for_signals, log, 1).result(timeout=0.2)
    with pytest.raises(aion.errors.RegistrationError, match="async def"):

        @workflow.defn
        def not_async() -> None: ...

    with pytest.raises(aion.errors.RegistrationError, match="twice"):
        aion.Engine(tmp_path / "other", workflows=[flows.chain, flows.chain])
    with pytest.raises(aion.errors.RegistrationError, match="not a workflow"):
        aion.Engine(tmp_path / "other", workflows=[flows.log_execution])
    with pytest.raises(aion.errors.StoreLockedError):
        aion.Engine(tmp_path / "data", workflows=[flows.chain]).start()


@pytest.mark.timeout(60)
def test_durable_sleep_over_an_engine_restart_fires_once_at_its_recorded_time(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    with aion.Engine(data, workflows=[flows.sleeper], activity_workers=1) as engine:
        handle = engine.start_workflow(flows.sleeper, log, 1.5, workflow_id="sleepy")
        wait_until(lambda: "TimerStarted" in history_types(handle))
    with aion.Engine(data, workflows=[flows.sleeper], activity_workers=1) as engine:
        engine.get_workflow("sleepy").result(timeout=30)
        history = engine.get_workflow("sleepy").history()
    (started,) = [e for e in history if isinstance(e, ev.TimerStarted)]
    (fired,) = [e for e in history if isinstance(e, ev.TimerFired)]
    # Recorded at most the lead ahead of its time (so that it is durable when due), with the due time.
    assert fired.due_at == started.fire_at
    assert fired.recorded_at >= started.fire_at - timedelta(seconds=TIMER_LEAD_S)
