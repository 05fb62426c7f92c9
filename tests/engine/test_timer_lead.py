"""A durable timer's ``TimerFired`` is recorded a moment before the timer is due (with the due time in
``due_at``) so that it is durable by then; the workflow still never resumes before the due time, live or after
a restart, and its clock reads the due time, also for arrivals recorded in that moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import aion
from aion import events as ev
from aion import workflow
from aion.engine._timer_lead import TIMER_LEAD_S
from aion.store import open_store
from aion.testing import WorkflowEnvironment
from aion.workflow._commands import CompleteWorkflow
from aion.workflow._runtime import WorkflowRuntime
from tests.engine import timer_flows
from tests.helpers import wait_until


def _fired_with_started(history: list[ev.Event]) -> list[tuple[ev.TimerStarted, ev.TimerFired]]:
    started = {e.timer_id: e for e in history if isinstance(e, ev.TimerStarted)}
    return [(started[e.timer_id], e) for e in history if isinstance(e, ev.TimerFired)]


@pytest.mark.timeout(60)
def test_a_workflow_never_resumes_before_its_timer_is_due(tmp_path: Path) -> None:
    with aion.Engine(tmp_path / "data", workflows=[timer_flows.punctual]) as engine:
        handle = engine.start_workflow(timer_flows.punctual, 15, 0.03)
        seen = handle.result(timeout=30)
        pairs = _fired_with_started(handle.history())
    assert len(pairs) == len(seen) == 15
    for (begun, fired), (resumed, clock) in zip(pairs, seen, strict=True):
        assert fired.due_at == begun.fire_at  # recorded ahead, with the due time
        assert resumed >= begun.fire_at.timestamp()  # the hold in the workflow process: never early
        assert clock == max(fired.recorded_at, begun.fire_at).timestamp()  # the clock reads the due time


@pytest.mark.timeout(90)
def test_a_timer_fired_ahead_of_its_time_is_held_on_replay_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with aion.Engine(data, workflows=[timer_flows.punctual]) as engine:
        engine.start_workflow(timer_flows.punctual, 1, 3600, workflow_id="p")
        wait_until(lambda: any(isinstance(e, ev.TimerStarted) for e in engine.store.read_history("p")))
    # As if the engine recorded TimerFired ahead of its time and then stopped before the due time came: the
    # restarted engine's process replays it, and must wait for the due time.
    store = open_store(data)
    history = store.read_history("p")
    started = next(e for e in history if isinstance(e, ev.TimerStarted))
    due = datetime.now(UTC) + timedelta(seconds=0.5)
    fired = ev.TimerFired(workflow_id="p", timer_id=started.timer_id, due_at=due)
    store.append("p", [fired], history[-1].seq)
    store.close()
    with aion.Engine(data, workflows=[timer_flows.punctual]) as engine:
        [[resumed, clock]] = engine.get_workflow("p").result(timeout=30)
    assert resumed >= due.timestamp()
    assert clock == due.timestamp()


@pytest.mark.timeout(60)
def test_timers_on_a_virtual_clock_are_recorded_at_their_time(tmp_path: Path) -> None:
    with WorkflowEnvironment(workflows=[timer_flows.punctual], data_dir=tmp_path / "data") as env:
        handle = env.start_workflow(timer_flows.punctual, 2, 3600)
        handle.result(timeout=30)
        pairs = _fired_with_started(handle.history())
    assert [fired.due_at for _, fired in pairs] == [None, None]
    assert all(fired.recorded_at >= begun.fire_at for begun, fired in pairs)


async def _sleeps_then_waits() -> list[datetime]:
    await workflow.sleep(1)
    after_timer = workflow.now()
    await workflow.wait_signal("go")
    return [after_timer, workflow.now()]


T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN_ID = "5f0c6f2e-8a43-4c1e-9d6f-2b9d1f3a7e10"


def _replayed_result(fired_at: datetime, due_at: datetime | None, signal_at: datetime) -> Any:
    started = ev.WorkflowStarted(workflow_id="w", seq=1, recorded_at=T0, workflow_type="t", input=[], run_id=RUN_ID)
    history: list[ev.Event] = [
        started,
        ev.TimerStarted(workflow_id="w", seq=2, recorded_at=T0, timer_id=1, fire_at=T0 + timedelta(seconds=1)),
        ev.TimerFired(workflow_id="w", seq=3, recorded_at=fired_at, timer_id=1, due_at=due_at),
        ev.SignalReceived(workflow_id="w", seq=4, recorded_at=signal_at, name="go", payload=None),
    ]
    [command] = WorkflowRuntime(_sleeps_then_waits, started).replay(history)
    assert isinstance(command, CompleteWorkflow)
    return command.result


@pytest.mark.timeout(10)
def test_the_clock_reads_the_due_time_of_a_timer_recorded_ahead_and_never_goes_back() -> None:
    due = T0 + timedelta(seconds=1)
    ahead = due - timedelta(seconds=TIMER_LEAD_S)
    # A signal recorded between TimerFired and the due time: the clock stays at the due time.
    assert _replayed_result(ahead, due, ahead + timedelta(microseconds=500)) == [due, due]
    later = due + timedelta(seconds=5)
    assert _replayed_result(ahead, due, later) == [due, later]


@pytest.mark.timeout(10)
def test_a_timer_fired_without_a_due_time_keeps_the_clock_of_its_record() -> None:
    # Histories written before due_at existed replay exactly as they did.
    fired = T0 + timedelta(seconds=1, milliseconds=3)
    signal = fired + timedelta(milliseconds=1)
    assert _replayed_result(fired, None, signal) == [fired, signal]
