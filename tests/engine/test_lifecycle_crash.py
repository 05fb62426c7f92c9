"""Lifecycle under crashes: half-done states repaired on engine start, and SIGKILL at the worst moments."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion._ids import new_run_id
from aion.store import open_store
from tests.engine import activity_flows as af
from tests.engine import flows
from tests.engine import lifecycle_flows as lf
from tests.engine.helpers import engine_process, recorded
from tests.helpers import wait_until

SCRIPT = "tests.engine.lifecycle_engine_proc"
WORKFLOWS = [*lf.WORKFLOWS, flows.sleeper]


def engine_on(data: Path) -> aion.Engine:
    return aion.Engine(data, workflows=WORKFLOWS, activities=af.ACTIVITIES, activity_workers=2)


def started(workflow_id: str, workflow_type: str, args: list[object], **extra: object) -> ev.WorkflowStarted:
    run_id = new_run_id()
    return ev.WorkflowStarted(
        workflow_id=workflow_id, workflow_type=workflow_type, input=args, run_id=run_id, first_run_id=run_id, **extra
    )


def assert_sane(history: list[ev.Event]) -> None:
    """Gapless from 1, and exactly one terminal event per run (the last run may still be open)."""
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    runs: list[list[ev.Event]] = []
    for event in history:
        if isinstance(event, ev.WorkflowStarted):
            runs.append([])
        runs[-1].append(event)
    for run in runs[:-1]:
        assert sum(e.terminal for e in run) == 1
    assert sum(e.terminal for e in runs[-1]) <= 1


@pytest.mark.timeout(60)
def test_child_recorded_by_its_parent_but_never_started_is_started_exactly_once(tmp_path: Path) -> None:
    data, log = tmp_path / "data", str(tmp_path / "log")
    store = open_store(data)
    parent = started("parent-1", "parent", [log, "echo"])
    child_wf = f"parent-1/{parent.run_id[:8]}/child-1"
    store.append("parent-1", [parent], 0)
    store.append(
        "parent-1",
        [
            ev.ChildWorkflowStarted(
                workflow_id="parent-1",
                child_id=1,
                child_workflow_id=child_wf,
                workflow_type="child_echo",
                input=[log, 42],
                child_run_id=new_run_id(),
            )
        ],
        1,
    )
    store.close()  # the crash came here: between the parent's record and the child's WorkflowStarted

    with engine_on(data) as engine:
        assert engine.get_workflow("parent-1").result(timeout=30) == {"echo": 42}
        child_history = engine.store.read_history(child_wf)
        parent_history = engine.store.read_history("parent-1")
    assert sum(isinstance(e, ev.WorkflowStarted) for e in child_history) == 1
    assert_sane(child_history)
    assert_sane(parent_history)


@pytest.mark.timeout(60)
def test_parent_closed_before_applying_its_policy_is_repaired_on_start(tmp_path: Path) -> None:
    data, log = tmp_path / "data", str(tmp_path / "log")
    store = open_store(data)
    parent = started("parent-2", "parent", [log, "terminate"])
    child = started(
        "kid-terminate", "child_waits", [log], parent_workflow_id="parent-2", parent_workflow_run_id=parent.run_id
    )
    store.append("parent-2", [parent], 0)
    store.append(
        "parent-2",
        [
            ev.ChildWorkflowStarted(
                workflow_id="parent-2",
                child_id=1,
                child_workflow_id="kid-terminate",
                workflow_type="child_waits",
                input=[log],
                child_run_id=child.run_id,
                parent_close_policy="terminate",
            )
        ],
        1,
    )
    store.append("kid-terminate", [child], 0)
    store.append("parent-2", [ev.WorkflowCompleted(workflow_id="parent-2", result="parent done")], 2)
    store.close()  # the crash came here: the parent closed, its child was not terminated yet

    with engine_on(data) as engine:
        kid = engine.get_workflow("kid-terminate")
        with pytest.raises(aion.errors.WorkflowTerminatedError):
            kid.result(timeout=30)
        assert_sane(kid.history())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("already_delivered", [False, True])
def test_external_signal_sent_but_not_confirmed_is_delivered_exactly_once(
    tmp_path: Path, already_delivered: bool
) -> None:
    data, log = tmp_path / "data", str(tmp_path / "log")
    store = open_store(data)
    sender = started("sender", "signals_another", [log, "receiver"])
    receiver = started("receiver", "waits_forever", [log])
    store.append("sender", [sender], 0)
    store.append(
        "sender",
        [
            ev.SignalExternalSent(
                workflow_id="sender", signal_id=1, target_workflow_id="receiver", name="finish", payload="hi"
            )
        ],
        1,
    )
    store.append("receiver", [receiver], 0)
    if already_delivered:  # the crash came after delivery, before the sender recorded it
        key = f"sender:{sender.run_id}:1"
        store.append(
            "receiver", [ev.SignalReceived(workflow_id="receiver", name="finish", payload="hi", dedup_key=key)], 1
        )
    store.close()

    with engine_on(data) as engine:
        assert engine.get_workflow("sender").result(timeout=30) == "delivered"
        assert engine.get_workflow("receiver").result(timeout=30) == "hi"
        received = [e for e in engine.store.read_history("receiver") if isinstance(e, ev.SignalReceived)]
    assert len(received) == 1


@pytest.mark.timeout(60)
def test_sigkill_during_a_timer_then_it_fires_once(tmp_path: Path) -> None:
    data, log, gates = tmp_path / "data", str(tmp_path / "log"), tmp_path
    with engine_process(SCRIPT, "timer", data, log, gates) as kill:
        wait_until(lambda: any(isinstance(e, ev.TimerStarted) for e in recorded(data, "sleepy")))
        kill()
    with engine_on(data) as engine:
        engine.get_workflow("sleepy").result(timeout=30)
        history = engine.get_workflow("sleepy").history()
    assert [e.type for e in history].count("TimerFired") == 1
    assert_sane(history)


@pytest.mark.timeout(60)
def test_sigkill_during_cancellation_clean_up_then_it_finishes(tmp_path: Path) -> None:
    data, log, gates = tmp_path / "data", str(tmp_path / "log"), tmp_path / "gates"
    gates.mkdir()
    with engine_process(SCRIPT, "cleanup", data, log, gates) as kill:
        # The clean-up activity runs. Its first attempt's start is recorded with its outcome, so the next engine
        # runs it again as attempt 1.
        wait_until((gates / "pid.1").exists)
        kill()
    assert not any(isinstance(e, ev.ActivityStarted) and e.activity_id == 2 for e in recorded(data, "cleanup"))
    (gates / "open.1").touch()
    with engine_on(data) as engine:
        handle = engine.get_workflow("cleanup")
        assert handle.result(timeout=30) == "cleaned up"
        history = handle.history()
    assert_sane(history)
    assert isinstance(history[-1], ev.WorkflowCompleted)
    assert [e.type for e in history].count("WorkflowCancelRequested") == 1


@pytest.mark.timeout(60)
def test_sigkill_during_continue_as_new_chains_keeps_every_run_whole(tmp_path: Path) -> None:
    data, log, gates = tmp_path / "data", str(tmp_path / "log"), tmp_path
    with engine_process(SCRIPT, "continue", data, log, gates) as kill:
        wait_until(lambda: sum(isinstance(e, ev.WorkflowContinuedAsNew) for e in recorded(data, "looping")) >= 3)
        kill()
    with engine_on(data) as engine:
        handle = engine.get_workflow("looping")
        before = handle.run_id
        wait_until(lambda: engine.get_workflow("looping").run_id != before)  # the chain goes on
        engine.get_workflow("looping").terminate("enough")
        history = engine.store.read_history("looping")
    assert_sane(history)
    assert isinstance(history[-1], ev.WorkflowTerminated)
