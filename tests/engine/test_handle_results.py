"""``result()`` of a run that had closed before the call: read from the store (only the current run's last event
when that run is the one asked for), for every ending, for an earlier run of a reused id and along a
continue-as-new chain, also after an engine restart."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.errors import ResultTimeoutError, WorkflowTerminatedError
from tests.engine import flows
from tests.engine import lifecycle_flows as lf

WORKFLOWS = flows.ALL_WORKFLOWS + lf.WORKFLOWS


def _engine(data: Path) -> aion.Engine:
    return aion.Engine(data, workflows=WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with _engine(tmp_path / "data") as running:
        yield running


def _closed(engine: aion.Engine, handle: aion.WorkflowHandle) -> aion.WorkflowHandle:
    """A new handle on ``handle``'s run once it has closed: its ``result()`` registers after the close."""
    with contextlib.suppress(aion.AionError):  # failed, terminated, ...
        handle.result(timeout=30)
    assert handle.history()[-1].terminal
    return engine.get_workflow(handle.workflow_id, handle.run_id)


@pytest.mark.timeout(60)
def test_a_closed_runs_result_and_failure_come_from_its_last_event(engine: aion.Engine, log: str) -> None:
    done = _closed(engine, engine.start_workflow(flows.chain, log, 3))
    assert done.result(timeout=5) == 0 + 2 + 4
    failed = _closed(engine, engine.start_workflow(flows.raises, log))
    with pytest.raises(aion.WorkflowFailedError, match="workflow code raised"):
        failed.result(timeout=5)
    terminated = engine.start_workflow(lf.waits_forever, log)
    assert terminated.terminate("enough")
    with pytest.raises(WorkflowTerminatedError, match="enough"):
        _closed(engine, terminated).result(timeout=5)


@pytest.mark.timeout(60)
def test_an_earlier_run_of_a_reused_id_keeps_its_own_result(engine: aion.Engine, log: str) -> None:
    first = engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id="reused")
    first.signal("item", "one")
    assert first.result(timeout=30) == ["one"]
    second = engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id="reused")
    assert second.run_id != first.run_id
    assert engine.get_workflow("reused", first.run_id).result(timeout=5) == ["one"]  # not the current run
    with pytest.raises(ResultTimeoutError):
        engine.get_workflow("reused").result(timeout=0.2)  # the current run is still running
    second.signal("item", "two")
    assert second.result(timeout=30) == ["two"]
    assert engine.get_workflow("reused", second.run_id).result(timeout=5) == ["two"]
    assert engine.get_workflow("reused", first.run_id).result(timeout=5) == ["one"]


@pytest.mark.timeout(60)
def test_a_finished_continue_as_new_chain_is_followed_from_its_first_run(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(lf.counter, log, 0, 3, workflow_id="chained")
    assert handle.result(timeout=30) == 3
    history = engine.store.read_history("chained")
    assert sum(isinstance(e, ev.WorkflowContinuedAsNew) for e in history) == 3
    assert engine.get_workflow("chained", handle.run_id).result(timeout=5) == 3


@pytest.mark.timeout(90)
def test_results_of_runs_closed_before_an_engine_restart(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    with _engine(data) as engine:
        done = engine.start_workflow(flows.chain, log, 2, workflow_id="before")
        assert done.result(timeout=30) == 2
        chained = engine.start_workflow(lf.counter, log, 0, 2, workflow_id="chain-before")
        assert chained.result(timeout=30) == 2
    with _engine(data) as engine:
        assert engine.get_workflow("before").result(timeout=5) == 2
        assert engine.get_workflow("chain-before", chained.run_id).result(timeout=5) == 2
