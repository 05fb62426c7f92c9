"""The replay runtime on its own: live runs driven by a small in-test engine, then replays of their histories."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aion import events as ev
from aion import workflow
from aion.errors import ActivityError, NonDeterminismError, QueryError
from aion.workflow._commands import (
    CancelTimer,
    Command,
    CompleteWorkflow,
    FailWorkflow,
    ScheduleActivity,
    StartTimer,
)
from aion.workflow._runtime import WorkflowRuntime

RUN_ID = "5f0c6f2e-8a43-4c1e-9d6f-2b9d1f3a7e10"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class MiniEngine:
    """Records commands as events and answers them: activities by calling a function, timers on request."""

    def __init__(self, function: Callable[..., Any], arg: Any, activities: dict[str, Callable[..., Any]]) -> None:
        self.history: list[ev.Event] = []
        self.activities = activities
        self.clock = T0
        started = self.record(ev.WorkflowStarted(workflow_id="wf", workflow_type="t", input=[arg], run_id=RUN_ID))
        assert isinstance(started, ev.WorkflowStarted)
        self.runtime = WorkflowRuntime(function, started)
        self.pending: list[ev.Event] = []
        self.timers: dict[int, float] = {}
        self.handle(self.runtime.replay(self.history))

    def record(self, event: ev.Event) -> ev.Event:
        self.clock += timedelta(milliseconds=1)
        stamped = dataclasses.replace(event, seq=len(self.history) + 1, recorded_at=self.clock)
        self.history.append(stamped)
        return stamped

    def handle(self, commands: list[Command]) -> None:
        for command in commands:
            match command:
                case ScheduleActivity(activity_id=aid, activity_type=name, args=args):
                    self.record(ev.ActivityScheduled(workflow_id="wf", activity_id=aid, activity_type=name, input=args))
                    try:
                        result = self.activities[name](*args)
                        self.pending.append(
                            ev.ActivityCompleted(workflow_id="wf", activity_id=aid, result=result, attempt=1)
                        )
                    except Exception as error:
                        failure = ev.Failure(type(error).__name__, str(error))
                        self.pending.append(
                            ev.ActivityFailed(
                                workflow_id="wf", activity_id=aid, failure=failure, attempt=1, retryable=False
                            )
                        )
                case StartTimer(timer_id=tid, seconds=seconds):
                    self.record(ev.TimerStarted(workflow_id="wf", timer_id=tid, fire_at=self.clock))
                    self.timers[tid] = seconds
                case CancelTimer(timer_id=tid):
                    if self.timers.pop(tid, None) is not None:
                        self.record(ev.TimerCancelled(workflow_id="wf", timer_id=tid))
                case CompleteWorkflow(result=result):
                    self.record(ev.WorkflowCompleted(workflow_id="wf", result=result))
                case FailWorkflow(failure=failure):
                    self.record(ev.WorkflowFailed(workflow_id="wf", failure=failure))

    def deliver(self, event: ev.Event) -> None:
        self.handle(self.runtime.apply(self.record(event)))

    def run(self, signals: list[tuple[str, Any]] = ()) -> None:  # type: ignore[assignment]
        """Deliver activity results first, then signals, then fire timers, until nothing is left."""
        signals = list(signals)
        while not self.runtime.closed:
            if self.pending:
                self.deliver(self.pending.pop(0))
            elif signals:
                name, payload = signals.pop(0)
                self.deliver(ev.SignalReceived(workflow_id="wf", name=name, payload=payload))
            elif self.timers:
                tid = min(self.timers)
                del self.timers[tid]
                self.deliver(ev.TimerFired(workflow_id="wf", timer_id=tid))
            else:
                raise AssertionError("workflow is stuck")

    @property
    def result(self) -> Any:
        last = self.history[-1]
        assert isinstance(last, ev.WorkflowCompleted), last
        return last.result


def replay(function: Callable[..., Any], history: list[ev.Event]) -> tuple[WorkflowRuntime, list[Command]]:
    started = history[0]
    assert isinstance(started, ev.WorkflowStarted)
    runtime = WorkflowRuntime(function, started)
    return runtime, runtime.replay(history)


def double(x: int) -> int:
    return 2 * x


def boom(x: int) -> int:
    raise ValueError(f"bad {x}")


@workflow.defn
async def sequence_then_parallel(x: int) -> dict[str, Any]:
    stage = "start"
    workflow.set_query_handler("stage", lambda: stage)
    a = await workflow.execute_activity("double", x, start_to_close_timeout=30)
    stage = "waiting"
    approved_by = await workflow.wait_signal("approve")
    await workflow.sleep(timedelta(seconds=5))
    b, c = await workflow.gather(
        workflow.execute_activity("double", a, start_to_close_timeout=30),
        workflow.execute_activity("double", 1, start_to_close_timeout=30),
    )
    stage = "done"
    return {
        "a": a,
        "b": b,
        "c": c,
        "by": approved_by,
        "at": workflow.now().isoformat(),
        "r": workflow.random().random(),
    }


@pytest.mark.timeout(10)
def test_live_run_then_replay_reaches_the_same_result_without_new_commands() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    engine.run(signals=[("approve", "alice")])
    assert engine.result["a"] == 6 and engine.result["b"] == 12 and engine.result["c"] == 2
    assert engine.result["by"] == "alice"

    runtime, commands = replay(sequence_then_parallel, engine.history[:-1])
    assert commands == [CompleteWorkflow(engine.result)]
    assert runtime.query("stage", []) == "done"


@pytest.mark.timeout(10)
def test_replay_of_a_prefix_issues_only_the_commands_history_lacks() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    engine.run(signals=[("approve", "bob")])
    # Cut the history right after the timer fired: the two parallel activities were not recorded yet.
    fired = next(i for i, e in enumerate(engine.history) if isinstance(e, ev.TimerFired))
    runtime, commands = replay(sequence_then_parallel, engine.history[: fired + 1])
    assert [c.key for c in commands] == [("activity", 2), ("activity", 3)]
    assert runtime.query("stage", []) == "waiting"


@pytest.mark.timeout(10)
def test_activity_failure_reaches_workflow_code_as_activity_error() -> None:
    @workflow.defn
    async def catches(x: int) -> str:
        try:
            await workflow.execute_activity("boom", x, start_to_close_timeout=30)
        except ActivityError as error:
            return f"{error.type}: caught"
        return "not raised"

    engine = MiniEngine(catches, 1, {"boom": boom})
    engine.run()
    assert engine.result == "ValueError: caught"


@pytest.mark.timeout(10)
def test_an_exception_escaping_the_workflow_fails_it_with_type_message_and_traceback() -> None:
    @workflow.defn
    async def raises(x: int) -> None:
        raise KeyError(f"missing {x}")

    engine = MiniEngine(raises, 7, {})
    failed = engine.history[-1]
    assert isinstance(failed, ev.WorkflowFailed)
    assert failed.failure.type == "KeyError" and "missing 7" in failed.failure.message
    assert "raise KeyError" in (failed.failure.traceback or "")


@pytest.mark.timeout(10)
def test_wait_signal_timeout_raises_and_a_signal_in_time_cancels_the_timer() -> None:
    @workflow.defn
    async def waits(_: int) -> list[str]:
        out = []
        try:
            await workflow.wait_signal("never", timeout=1)
        except TimeoutError:
            out.append("timed out")
        out.append(await workflow.wait_signal("go", timeout=60))
        return out

    engine = MiniEngine(waits, 0, {})
    # "go" arrives before timer 1 fires: it is buffered, the wait for "never" times out, then "go" is taken.
    engine.run(signals=[("go", "yes")])
    assert engine.result == ["timed out", "yes"]
    _, commands = replay(waits, engine.history[:-1])
    assert commands == [CompleteWorkflow(["timed out", "yes"])]


@pytest.mark.timeout(10)
def test_signal_in_time_cancels_its_timeout_timer() -> None:
    @workflow.defn
    async def waits(_: int) -> Any:
        return await workflow.wait_signal("go", timeout=60)

    engine = MiniEngine(waits, 0, {})
    engine.run(signals=[("go", "yes")])
    assert engine.result == "yes"
    assert [e.type for e in engine.history if e.type.startswith("Timer")] == ["TimerStarted", "TimerCancelled"]
    _, commands = replay(waits, engine.history[:-1])
    assert commands == [CompleteWorkflow("yes")]


@pytest.mark.timeout(10)
def test_changed_activity_type_is_non_determinism_with_seq_expected_and_found() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    engine.run(signals=[("approve", "alice")])

    @workflow.defn
    async def changed(x: int) -> int:
        return await workflow.execute_activity("triple", x, start_to_close_timeout=30)

    with pytest.raises(NonDeterminismError) as caught:
        replay(changed, engine.history)
    error = caught.value
    assert error.workflow_id == "wf" and error.seq == 2
    assert "'double'" in error.expected and "'triple'" in error.found


@pytest.mark.timeout(10)
def test_removed_step_is_non_determinism_and_nothing_is_issued() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    engine.run(signals=[("approve", "alice")])

    @workflow.defn
    async def shorter(x: int) -> int:
        a = await workflow.execute_activity("double", x, start_to_close_timeout=30)
        await workflow.wait_signal("approve")
        return a

    with pytest.raises(NonDeterminismError) as caught:
        replay(shorter, engine.history)
    assert "timer 1" in caught.value.expected


@pytest.mark.timeout(10)
def test_unknown_query_names_the_known_ones() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    with pytest.raises(QueryError, match="known: stage"):
        engine.runtime.query("nope", [])


@pytest.mark.timeout(10)
def test_now_and_random_are_the_same_on_replay() -> None:
    engine = MiniEngine(sequence_then_parallel, 3, {"double": double})
    engine.run(signals=[("approve", "alice")])
    _, commands = replay(sequence_then_parallel, engine.history[:-1])
    (complete,) = commands
    assert isinstance(complete, CompleteWorkflow)
    assert complete.result["at"] == engine.result["at"] and complete.result["r"] == engine.result["r"]


@workflow.defn
async def raced(_: int) -> Any:
    try:
        return await workflow.with_timeout(5, workflow.execute_activity("double", 1, start_to_close_timeout=30))
    except TimeoutError:
        return "timeout"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("first", "winner"), [("timer", "timeout"), ("activity", 2)])
def test_a_race_recorded_1_ms_apart_has_the_same_winner_live_and_on_replay(first: str, winner: Any) -> None:
    engine = MiniEngine(raced, 0, {"double": double})
    fired = ev.TimerFired(workflow_id="wf", timer_id=1)
    completed = engine.pending.pop(0)
    arrivals = [fired, completed] if first == "timer" else [completed, fired]
    commands: list[Command] = []
    for arrival in arrivals:  # both recorded before the workflow saw either: 1 ms apart, in this order
        commands += engine.runtime.apply(engine.record(arrival))
    closing = [c for c in commands if isinstance(c, CompleteWorkflow)]
    assert closing == [CompleteWorkflow(winner)]
    for _ in range(3):
        _, replayed = replay(raced, engine.history)
        assert CompleteWorkflow(winner) in replayed


class _ProcessEnding(BaseException):
    """Stands for what a terminated process raises in whatever code runs (``supervisors``' SIGTERM handler)."""


@pytest.mark.timeout(10)
def test_a_process_ending_while_workflow_code_runs_is_no_failure_of_the_workflow() -> None:
    async def interrupted(arg: int) -> int:
        raise _ProcessEnding

    started = ev.WorkflowStarted(workflow_id="wf", workflow_type="t", input=[1], run_id=RUN_ID, seq=1)
    with pytest.raises(_ProcessEnding):
        WorkflowRuntime(interrupted, started).replay([started])
