"""Timers, timeouts, children, continue-as-new, cancel and terminate, end to end through the public API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.engine._tree import run_node
from tests.engine import activity_flows as af
from tests.engine import flows
from tests.engine import lifecycle_flows as lf
from tests.helpers import is_gone, wait_until

WORKFLOWS = lf.WORKFLOWS + af.WORKFLOWS
ACTIVITIES = af.ACTIVITIES


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(
        tmp_path / "data", workflows=WORKFLOWS, activities=ACTIVITIES, activity_workers=2, activity_cancel_grace=0.3
    ) as running:
        yield running


def types(handle: aion.WorkflowHandle) -> list[str]:
    return [event.type for event in handle.history()]


def assert_one_terminal(history: list[ev.Event]) -> None:
    assert sum(event.terminal for event in history) == 1, [e.type for e in history]
    assert history[-1].terminal


@pytest.mark.timeout(60)
def test_timer_handles_fire_or_cancel(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.timers, log)
    assert handle.result(timeout=30) == ["cancelled", "fired"]
    recorded = [(e.type, getattr(e, "timer_id", None)) for e in handle.history() if e.type.startswith("Timer")]
    assert recorded == [
        ("TimerStarted", 1),
        ("TimerCancelled", 1),
        ("TimerStarted", 2),
        ("TimerFired", 2),
        ("TimerStarted", 3),
        ("TimerFired", 3),
    ]


@pytest.mark.timeout(60)
def test_wait_condition_re_evaluates_after_each_event_and_times_out(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.counts_signals, log, 3, None)
    for _ in range(3):
        handle.signal("inc")
    assert handle.result(timeout=30) == 3
    short = engine.start_workflow(lf.counts_signals, log, 5, 0.3)
    short.signal("inc")
    assert short.result(timeout=30) == -1


@pytest.mark.timeout(60)
def test_timeout_cancels_the_losing_activity(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = engine.start_workflow(lf.races_an_activity, log, str(gates), 0.4)
    assert handle.result(timeout=30) == "timed out"
    recorded = types(handle)
    assert (
        recorded.index("TimerFired") < recorded.index("ActivityCancelRequested") < recorded.index("ActivityCancelled")
    )
    assert "heartbeating:saw-cancel" in flows.executions(log)


@pytest.mark.timeout(60)
def test_timeout_block_won_by_the_operation_cancels_the_timer(engine: aion.Engine, log: str) -> None:
    won = engine.start_workflow(lf.timeout_block, log, 30)
    won.signal("go", "in time")
    assert won.result(timeout=30) == "in time"
    assert "TimerCancelled" in types(won)
    lost = engine.start_workflow(lf.timeout_block, log, 0.2)
    assert lost.result(timeout=30) == "timed out"


@pytest.mark.timeout(60)
def test_execution_and_run_timeouts_time_the_run_out_and_stop_its_activity(
    engine: aion.Engine, log: str, gates: Path
) -> None:
    handle = engine.start_workflow(lf.long_activity, log, str(gates), execution_timeout=0.5)
    with pytest.raises(aion.errors.WorkflowTimedOutError, match="execution"):
        handle.result(timeout=30)
    history = handle.history()
    assert_one_terminal(history)
    assert isinstance(history[-1], ev.WorkflowTimedOut)
    assert handle.describe().status is aion.WorkflowStatus.TIMED_OUT
    wait_until(lambda: engine.workflow_pid(handle.workflow_id) is None)
    run_limited = engine.start_workflow(lf.waits_forever, log, run_timeout=0.3)
    with pytest.raises(aion.errors.WorkflowTimedOutError, match="run"):
        run_limited.result(timeout=30)
    # The activity's worker was killed and replaced: the pool still works.
    assert engine.start_workflow(af.call, log, "flaky", [0], {"start_to_close_timeout": 10}).result(timeout=30) == 1


@pytest.mark.timeout(60)
def test_execution_timeout_spans_continue_as_new(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.forever_continuing, log, 0, execution_timeout=0.8)
    with pytest.raises(aion.errors.WorkflowTimedOutError):
        handle.result(timeout=30)
    runs = [e for e in engine.store.read_history(handle.workflow_id) if isinstance(e, ev.WorkflowStarted)]
    assert len(runs) >= 2
    assert len({run.execution_deadline for run in runs}) == 1  # the deadline is carried, not restarted


@pytest.mark.timeout(60)
def test_child_workflows_return_fail_take_signals_and_cancel(engine: aion.Engine, log: str) -> None:
    echo = engine.start_workflow(lf.parent, log, "echo")
    assert echo.result(timeout=30) == {"echo": 42}
    recorded = types(echo)
    assert recorded.index("ChildWorkflowStarted") < recorded.index("ChildWorkflowCompleted")
    child_id = next(e for e in echo.history() if isinstance(e, ev.ChildWorkflowStarted)).child_workflow_id
    child = engine.get_workflow(child_id).history()[0]
    assert isinstance(child, ev.WorkflowStarted) and child.parent_workflow_id == echo.workflow_id

    assert engine.start_workflow(lf.parent, log, "fail").result(timeout=30) == "child failed: ValueError"

    both = engine.start_workflow(lf.parent, log, "signal-and-cancel")
    assert both.result(timeout=30) == ["from parent", "cancelled"]
    assert engine.get_workflow("kid-cancelled").describe().status is aion.WorkflowStatus.CANCELLED
    assert "child saw cancellation" in flows.executions(log)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("policy", "status"),
    [
        ("terminate", aion.WorkflowStatus.TERMINATED),
        ("request_cancel", aion.WorkflowStatus.CANCELLED),
        ("abandon", aion.WorkflowStatus.RUNNING),
    ],
)
def test_parent_close_policy_applies_when_the_parent_closes(
    engine: aion.Engine, log: str, policy: str, status: aion.WorkflowStatus
) -> None:
    handle = engine.start_workflow(lf.parent, log, policy)
    wait_until(lambda: engine.workflow_pid(f"kid-{policy}"))
    node = run_node(engine.supervision_tree(), f"kid-{policy}")
    assert node is not None and node["meta"].get("parent_workflow_id") == handle.workflow_id  # linked in the tree
    assert handle.result(timeout=30) == "parent done"
    child = engine.get_workflow(f"kid-{policy}")
    wait_until(lambda: child.describe().status is status)
    if policy == "abandon":
        child.signal("finish", "on its own")
        assert child.result(timeout=30) == "on its own"
    assert_one_terminal(child.history())


@pytest.mark.timeout(60)
def test_signal_external_delivers_once_or_says_why_not(engine: aion.Engine, log: str) -> None:
    target = engine.start_workflow(lf.waits_forever, log, workflow_id="target")
    sender = engine.start_workflow(lf.signals_another, log, "target")
    assert sender.result(timeout=30) == "delivered"
    assert target.result(timeout=30) == "from a sibling"
    received = [e for e in target.history() if isinstance(e, ev.SignalReceived)]
    assert len(received) == 1 and received[0].dedup_key
    assert engine.start_workflow(lf.signals_another, log, "target").result(timeout=30) == "WorkflowNotRunningError"
    assert engine.start_workflow(lf.signals_another, log, "nobody").result(timeout=30) == "WorkflowNotFoundError"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_continue_as_new_a_thousand_times_keeps_each_run_short(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.counter, log, 0, 1000, workflow_id="counter")
    assert handle.result(timeout=110) == 1000  # the original handle follows the chain
    final = engine.get_workflow("counter")
    assert final.run_id != handle.run_id
    assert len(final.history()) == 2  # WorkflowStarted, WorkflowCompleted: nothing carried over
    whole = engine.store.read_history("counter")
    assert [e.seq for e in whole] == list(range(1, len(whole) + 1))
    assert sum(isinstance(e, ev.WorkflowContinuedAsNew) for e in whole) == 1000
    assert sum(e.terminal for e in whole) == 1001


@pytest.mark.timeout(60)
def test_continue_as_new_is_refused_while_work_is_pending(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = engine.start_workflow(lf.continue_while_busy, log, str(gates))
    assert handle.result(timeout=30) == "refused: True"


@pytest.mark.timeout(60)
def test_cancel_lets_the_workflow_clean_up_and_finish(engine: aion.Engine, log: str, gates: Path) -> None:
    (gates / "open.1").touch()
    handle = engine.start_workflow(lf.cleans_up, log, str(gates), True)
    wait_until((gates / "heartbeating.started").exists)
    assert handle.cancel("customer asked") is True
    assert handle.result(timeout=30) == "cleaned up"
    assert handle.describe().status is aion.WorkflowStatus.COMPLETED
    assert "gated:1" in flows.executions(log)  # the clean-up activity ran
    assert handle.cancel() is False  # closed: a no-op that says so


@pytest.mark.timeout(60)
def test_cancellation_that_escapes_ends_the_run_cancelled(engine: aion.Engine, log: str, gates: Path) -> None:
    (gates / "open.1").touch()
    handle = engine.start_workflow(lf.cleans_up, log, str(gates), False)
    wait_until((gates / "heartbeating.started").exists)
    handle.cancel("stop")
    with pytest.raises(aion.errors.WorkflowCancelledError):
        handle.result(timeout=30)
    history = handle.history()
    assert_one_terminal(history)
    assert isinstance(history[-1], ev.WorkflowCancelled) and history[-1].reason == "stop"


@pytest.mark.timeout(60)
def test_terminate_kills_the_process_and_its_activity(engine: aion.Engine, log: str, gates: Path) -> None:
    handle = engine.start_workflow(lf.long_activity, log, str(gates))
    wait_until((gates / "ignores.started").exists)
    pid = wait_until(lambda: engine.workflow_pid(handle.workflow_id))
    assert handle.terminate("operator") is True
    with pytest.raises(aion.errors.WorkflowTerminatedError, match="operator"):
        handle.result(timeout=30)
    wait_until(lambda: engine.workflow_pid(handle.workflow_id) is None)
    assert is_gone(pid)
    assert_one_terminal(handle.history())
    assert handle.terminate() is False
    with pytest.raises(aion.WorkflowNotRunningError):
        handle.signal("finish")
    assert engine.start_workflow(af.call, log, "flaky", [0], {"start_to_close_timeout": 10}).result(timeout=30) == 1


@pytest.mark.timeout(60)
def test_signal_with_start_starts_or_signals_atomically(engine: aion.Engine, log: str) -> None:
    first = engine.signal_with_start(lf.waits_forever, log, workflow_id="sws", signal="finish", payload="first")
    assert first.result(timeout=30) == "first"
    assert types(first)[:2] == ["WorkflowStarted", "SignalReceived"]
    running = engine.start_workflow(lf.counts_signals, log, 2, None, workflow_id="sws-running")
    again = engine.signal_with_start(lf.counts_signals, log, 2, None, workflow_id="sws-running", signal="inc")
    assert again.run_id == running.run_id
    running.signal("inc")
    assert running.result(timeout=30) == 2


@pytest.mark.timeout(120)
def test_complete_cancel_and_timeout_racing_give_exactly_one_terminal_event(engine: aion.Engine, log: str) -> None:
    handles = []
    for batch in range(4):
        started = [
            engine.start_workflow(lf.racer, log, 0.1, workflow_id=f"race-{batch}-{i}", run_timeout=0.1)
            for i in range(50)
        ]
        for handle in started:
            handle.cancel("race")
        handles.extend(started)
    outcomes = set()
    for handle in handles:
        try:
            outcomes.add(handle.result(timeout=60))
        except (aion.errors.WorkflowCancelledError, aion.errors.WorkflowTimedOutError) as error:
            outcomes.add(type(error).__name__)
        history = handle.history()
        assert_one_terminal(history)
        assert handle.describe().status.value != "running"
    assert len(handles) == 200
    assert outcomes  # whichever won, each run closed exactly once


@pytest.mark.timeout(60)
def test_signals_and_terminate_sent_during_continue_as_new_reach_the_workflow(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.continues_per_signal, log, 0, workflow_id="hopping")
    for _ in range(30):  # each signal makes the run continue as new: many land while a run is closing
        handle.signal("next")  # never refused for falling between two runs
    history = engine.store.read_history("hopping")
    assert sum(isinstance(e, ev.SignalReceived) for e in history) == 30
    assert engine.get_workflow("hopping").terminate("done") is True
    whole = engine.store.read_history("hopping")
    assert isinstance(whole[-1], ev.WorkflowTerminated)
    assert [e.seq for e in whole] == list(range(1, len(whole) + 1))
