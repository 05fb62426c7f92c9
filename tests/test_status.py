"""Status projection from hand-built histories: one run, several runs, and histories that are not valid."""

from __future__ import annotations

import pytest

from aion.events import (
    ActivityCompleted,
    ActivityScheduled,
    Event,
    Failure,
    SignalReceived,
    TimerFired,
    WorkflowCancelled,
    WorkflowCancelRequested,
    WorkflowCompleted,
    WorkflowContinuedAsNew,
    WorkflowFailed,
    WorkflowReset,
    WorkflowStarted,
    WorkflowTerminated,
    WorkflowTimedOut,
    terminal_event_types,
)
from aion.status import TERMINAL_STATUS, WorkflowStatus, split_runs, status_of_run, status_of_workflow

WID = "order-1"


def started(run_id: str = "r1") -> WorkflowStarted:
    return WorkflowStarted(workflow_id=WID, workflow_type="Order", input={"n": 1}, run_id=run_id)


def activity() -> list[Event]:
    return [
        ActivityScheduled(workflow_id=WID, activity_id=1, activity_type="charge", input=None),
        ActivityCompleted(workflow_id=WID, activity_id=1, result=3, attempt=1),
    ]


TERMINALS: list[tuple[Event, WorkflowStatus]] = [
    (WorkflowCompleted(workflow_id=WID, result=1), WorkflowStatus.COMPLETED),
    (WorkflowFailed(workflow_id=WID, failure=Failure("ValueError", "bad")), WorkflowStatus.FAILED),
    (WorkflowCancelled(workflow_id=WID, reason="asked"), WorkflowStatus.CANCELLED),
    (WorkflowTerminated(workflow_id=WID), WorkflowStatus.TERMINATED),
    (WorkflowTimedOut(workflow_id=WID, kind="run"), WorkflowStatus.TIMED_OUT),
    (WorkflowContinuedAsNew(workflow_id=WID, input=2, new_run_id="r2"), WorkflowStatus.CONTINUED_AS_NEW),
    (WorkflowReset(workflow_id=WID, new_run_id="r2", to_seq=1), WorkflowStatus.RESET),
]


def test_status_values_and_closed() -> None:
    assert [s.value for s in WorkflowStatus] == [
        "running",
        "completed",
        "failed",
        "cancelled",
        "terminated",
        "timed_out",
        "continued_as_new",
        "blocked",
        "paused",
        "reset",
    ]
    assert WorkflowStatus("timed_out") is WorkflowStatus.TIMED_OUT
    assert str(WorkflowStatus.FAILED) == "failed"
    assert not WorkflowStatus.RUNNING.is_closed
    open_ = {WorkflowStatus.RUNNING, WorkflowStatus.BLOCKED, WorkflowStatus.PAUSED}
    assert all(s.is_closed for s in WorkflowStatus if s not in open_)
    assert not any(s.is_closed for s in open_)


def test_terminal_status_covers_every_terminal_event() -> None:
    assert set(TERMINAL_STATUS) == terminal_event_types()
    assert set(TERMINAL_STATUS.values()) == {s for s in WorkflowStatus if s.is_closed}
    for event, status in TERMINALS:
        assert TERMINAL_STATUS[event.type] is status


def test_running_with_only_started() -> None:
    assert status_of_run([started()]) is WorkflowStatus.RUNNING


def test_running_with_work_in_progress() -> None:
    history = [
        started(),
        *activity(),
        SignalReceived(workflow_id=WID, name="go"),
        WorkflowCancelRequested(workflow_id=WID),
        TimerFired(workflow_id=WID, timer_id=1),
    ]
    assert status_of_run(history) is WorkflowStatus.RUNNING


@pytest.mark.parametrize(("terminal", "status"), TERMINALS, ids=lambda x: getattr(x, "type", str(x)))
def test_terminal_event_decides(terminal: Event, status: WorkflowStatus) -> None:
    assert status_of_run([started(), *activity(), terminal]) is status
    assert status_of_run([started(), terminal]) is status


def test_events_after_the_terminal_do_not_change_status() -> None:
    history = [started(), WorkflowCompleted(workflow_id=WID), SignalReceived(workflow_id=WID, name="late")]
    assert status_of_run(history) is WorkflowStatus.COMPLETED


def test_bad_runs_raise() -> None:
    with pytest.raises(ValueError, match="empty"):
        status_of_run([])
    with pytest.raises(ValueError, match="must start with WorkflowStarted, not ActivityScheduled"):
        status_of_run(activity())
    with pytest.raises(ValueError, match="second terminal event WorkflowCancelled"):
        status_of_run([started(), WorkflowCompleted(workflow_id=WID), WorkflowCancelled(workflow_id=WID)])
    with pytest.raises(ValueError, match="WorkflowStarted at seq 7 inside a run"):
        status_of_run([started(), WorkflowStarted(workflow_id=WID, seq=7, workflow_type="O", input=0, run_id="r2")])


def test_split_runs() -> None:
    first = [started("r1"), *activity(), WorkflowContinuedAsNew(workflow_id=WID, input=1, new_run_id="r2")]
    second = [started("r2"), WorkflowFailed(workflow_id=WID, failure=Failure("E", "m"))]
    third = [started("r3"), TimerFired(workflow_id=WID, timer_id=1)]
    assert split_runs([*first, *second, *third]) == [first, second, third]
    assert split_runs([]) == []
    assert split_runs([started()]) == [[started()]]
    with pytest.raises(ValueError, match="must start with WorkflowStarted"):
        split_runs([*activity(), started()])


def test_status_of_workflow_is_the_last_runs() -> None:
    continued = WorkflowContinuedAsNew(workflow_id=WID, input=1, new_run_id="r2")
    assert status_of_workflow([started("r1"), continued, started("r2")]) is WorkflowStatus.RUNNING
    assert (
        status_of_workflow([started("r1"), continued, started("r2"), WorkflowCompleted(workflow_id=WID)])
        is WorkflowStatus.COMPLETED
    )
    # A later run after a closed one (restart of a closed id, retry) decides, whatever the earlier ones were.
    failed = WorkflowFailed(workflow_id=WID, failure=Failure("E", "m"))
    assert status_of_workflow([started("r1"), failed, started("r2")]) is WorkflowStatus.RUNNING
    assert status_of_workflow([started("r1")]) is WorkflowStatus.RUNNING
    assert status_of_workflow([started("r1"), continued]) is WorkflowStatus.CONTINUED_AS_NEW


def test_status_of_workflow_bad_histories() -> None:
    with pytest.raises(ValueError, match="empty"):
        status_of_workflow([])
    with pytest.raises(ValueError, match="must start with WorkflowStarted"):
        status_of_workflow([WorkflowCompleted(workflow_id=WID)])
    with pytest.raises(ValueError, match="second terminal event"):
        status_of_workflow([started("r1"), WorkflowTerminated(workflow_id=WID), WorkflowTimedOut(workflow_id=WID)])


def test_accepts_tuples() -> None:
    assert status_of_run((started(), WorkflowTerminated(workflow_id=WID))) is WorkflowStatus.TERMINATED
