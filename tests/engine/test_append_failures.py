"""A group commit that fails (an injected ``StoreError``, as a failing disk would raise) loses nothing already
recorded and strands no run: each run it touched is rebuilt from the store, given a new process and finishes;
a start it held is reported to its caller and leaves no trace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import aion
from aion import events as ev
from aion.errors import StoreError
from tests.engine import flows

ACTIVITY_EVENTS = (ev.ActivityScheduled, ev.ActivityStarted, ev.ActivityCompleted)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as running:
        yield running


def fail_one_group(engine: aion.Engine, monkeypatch: pytest.MonkeyPatch, *, skip: int) -> list[list[str]]:
    """Make the store fail, once, the ``skip + 1``-th group commit holding an activity event; returns the
    workflow ids of the failed group (filled when it fails)."""
    store = engine.store
    real_append_batch = store.append_batch
    lock = threading.Lock()
    seen = [0]
    failed: list[list[str]] = []

    def append_batch(requests: list[Any], **options: Any) -> list[Any]:
        with lock:
            holds_activity = any(isinstance(e, ACTIVITY_EVENTS) for request in requests for e in request.events)
            if not failed and not options.get("atomic") and holds_activity:
                seen[0] += 1
                if seen[0] > skip:
                    failed.append([request.workflow_id for request in requests])
                    raise StoreError("injected: the disk failed")
        return real_append_batch(requests, **options)

    monkeypatch.setattr(store, "append_batch", append_batch)
    return failed


def assert_gapless_with_one_outcome_per_activity(history: list[ev.Event]) -> None:
    assert [event.seq for event in history] == list(range(history[0].seq, history[0].seq + len(history)))
    completed = [event.activity_id for event in history if isinstance(event, ev.ActivityCompleted)]
    assert len(completed) == len(set(completed))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("skip", [0, 2, 5])
def test_runs_touched_by_a_failed_group_commit_are_rebuilt_and_finish(
    engine: aion.Engine, log: str, monkeypatch: pytest.MonkeyPatch, skip: int
) -> None:
    failed = fail_one_group(engine, monkeypatch, skip=skip)
    refused: list[str] = []

    def start(index: int) -> aion.WorkflowHandle | None:
        try:
            return engine.start_workflow(flows.steps, log, 4, workflow_id=f"wf-{index}")
        except StoreError:
            refused.append(f"wf-{index}")  # its WorkflowStarted was in the failed group: the caller is told
            return None

    with ThreadPoolExecutor(16) as pool:
        handles = [handle for handle in pool.map(start, range(40)) if handle is not None]
    assert [handle.result(timeout=60) for handle in handles] == [0 + 1 + 2 + 3] * len(handles)
    assert failed, "the injected failure did not happen"
    for handle in handles:
        history = handle.history()
        assert_gapless_with_one_outcome_per_activity(history)
        assert isinstance(history[-1], ev.WorkflowCompleted)
    for workflow_id in refused:
        with pytest.raises(aion.WorkflowNotFoundError):
            engine.get_workflow(workflow_id).history()
        assert engine.start_workflow(flows.steps, log, 1, workflow_id=workflow_id).result(timeout=60) == 0
    # every activity whose completion is recorded ran (at least once: an attempt whose start was lost reruns)
    ran = set(flows.executions(log))
    for handle in handles:
        for event in handle.history():
            if isinstance(event, ev.ActivityCompleted):
                assert f"{handle.workflow_id}:{event.activity_id}" in ran
