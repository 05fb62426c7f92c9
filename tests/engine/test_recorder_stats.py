"""``Engine.recorder_stats()`` counts what the recorder committed, and a caller starting runs one after another
(the stream of prompt appends during which the recorder holds the runs' own steps for the next start) loses no
step: every run completes with every event, once."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from aion import events as ev
from tests.engine import flows


@pytest.mark.timeout(120)
def test_sequential_starts_complete_every_run_and_the_counters_add_up(tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    with aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as engine:
        before = engine.recorder_stats()
        handles = [engine.start_workflow(flows.chain, log, 3, workflow_id=f"chain-{n}") for n in range(60)]
        assert [handle.result(timeout=60) for handle in handles] == [handles[0].result(timeout=1)] * 60
        after = engine.recorder_stats()
        histories = [handle.history() for handle in handles]
    for history in histories:
        kinds = [type(event) for event in history]
        assert kinds[0] is ev.WorkflowStarted and kinds[-1] is ev.WorkflowCompleted
        assert [event.seq for event in history] == list(range(1, len(history) + 1))
        assert kinds.count(ev.ActivityCompleted) == 3
    assert after.events - before.events == sum(len(history) for history in histories)
    assert after.batches - before.batches >= 60  # each start waited for a transaction holding it
    assert after.errors == before.errors


@pytest.mark.timeout(120)
def test_commit_hold_zero_never_holds(tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    with aion.Engine(
        tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, commit_hold=0
    ) as engine:
        handles = [engine.start_workflow(flows.chain, log, 2, workflow_id=f"chain-{n}") for n in range(40)]
        assert all(handle.result(timeout=60) == 2 for handle in handles)
        assert engine.recorder_stats().holds == 0
