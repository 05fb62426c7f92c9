"""The whole engine killed with SIGKILL mid-run; a new engine on the same data directory finishes everything."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.store import open_store
from tests.engine import flows
from tests.engine.helpers import engine_process
from tests.helpers import wait_until


def recorded_completions(data: Path) -> set[str]:
    """``workflow_id:activity_id`` of every activity whose completion is in the store."""
    store = open_store(data, readonly=True)
    try:
        done = set()
        for info in store.list_workflows():
            for event in store.read_history(info.workflow_id):
                if isinstance(event, ev.ActivityCompleted):
                    done.add(f"{event.workflow_id}:{event.activity_id}")
        return done
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_sigkill_of_the_engine_then_a_new_engine_finishes_every_workflow(tmp_path: Path) -> None:
    data, log, count = tmp_path / "data", str(tmp_path / "executions.log"), 8
    with engine_process("tests.engine.engine_proc", data, log, count) as kill:
        wait_until(lambda: len(flows.executions(log)) >= 12, timeout=30)
        kill()  # and its children die with it (parent-death signal and pipe EOF)

    completed_before = recorded_completions(data)
    assert completed_before

    with aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as engine:
        results = [engine.get_workflow(f"steps-{i}").result(timeout=60) for i in range(count)]
        signalled = engine.get_workflow("signals")
        signalled.signal("item", "c")
        assert signalled.result(timeout=30) == ["a", "b", "c"]  # the signals sent before the crash survived
        histories = {f"steps-{i}": engine.get_workflow(f"steps-{i}").history() for i in range(count)}

    assert results == [sum(range(6))] * count
    runs = Counter(flows.executions(log))
    expected = {f"steps-{i}:{a}" for i in range(count) for a in range(1, 7)}
    assert set(runs) == expected  # every activity ran
    assert all(runs[key] == 1 for key in completed_before)  # no recorded completion ran again
    for workflow_id, history in histories.items():
        assert [e.seq for e in history] == list(range(1, len(history) + 1)), workflow_id
        assert sum(e.terminal for e in history) == 1


@pytest.mark.timeout(60)
def test_changed_workflow_code_fails_the_run_with_non_determinism_in_fail_mode(tmp_path: Path) -> None:
    data, log = tmp_path / "data", str(tmp_path / "executions.log")
    with aion.Engine(data, workflows=[flows.versioned_v1], activities=[flows.double, flows.async_add]) as engine:
        handle = engine.start_workflow("versioned", log, workflow_id="v")
        wait_until(lambda: any(isinstance(e, ev.ActivityCompleted) for e in handle.history()))
    changed = aion.Engine(
        data, workflows=[flows.versioned_v2], activities=[flows.double, flows.async_add], on_code_mismatch="fail"
    )
    with changed as engine, pytest.raises(aion.WorkflowFailedError) as caught:
        engine.get_workflow("v").result(timeout=30)
    assert caught.value.type == "NonDeterminismError"
    assert "seq 2" in str(caught.value) and "'double'" in str(caught.value) and "'async_add'" in str(caught.value)
    assert flows.executions(log) == ["double:21"]  # the diverged code never ran its activity


@pytest.mark.timeout(120)
def test_requests_reach_workflows_that_recovery_has_not_resumed_yet(tmp_path: Path) -> None:
    data, log = tmp_path / "data", str(tmp_path / "executions.log")
    ids = [f"waiting-{i:03}" for i in range(150)]
    with aion.Engine(data, workflows=[flows.waits_for_signals], activity_workers=1) as engine:
        for workflow_id in ids:
            engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id=workflow_id)
    with aion.Engine(data, workflows=[flows.waits_for_signals], activity_workers=1) as engine:
        # Recovery resumes runs in batches between other messages: the last ones are still waiting for it.
        last = engine.get_workflow(ids[-1])
        last.signal("item", "early")  # accepted, not refused as "not running"
        assert last.result(timeout=60) == ["early"]
        for workflow_id in ids[:-1]:
            engine.get_workflow(workflow_id).signal("item", workflow_id)
        assert [engine.get_workflow(w).result(timeout=60) for w in ids[:-1]] == [[w] for w in ids[:-1]]
