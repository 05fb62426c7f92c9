"""Atomic groups inside one batch (``append_batch(..., groups=...)``) and the recorder committing atomic items
(schedule fires with their run's start) together: each group all or nothing, one refused group takes no other
down, on both stores and through a real recorder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aion import events as ev
from aion.errors import AionError, SequenceConflictError
from aion.recorder import Committed, start_recorder
from aion.store import AppendRequest, EventStore, MemoryEventStore, ScheduleAppend, open_store
from tests.helpers import wait_until
from tests.store._helpers import signal, started


@pytest.fixture(params=["memory", "lmdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    made: Any = MemoryEventStore() if request.param == "memory" else open_store(tmp_path / "data")
    yield made
    made.close()


def fire(schedule_id: str, workflow_id: str, head: int) -> ScheduleAppend:
    event = ev.ScheduleFired(
        workflow_id=schedule_id,
        fire_at=datetime(2026, 1, 1, tzinfo=UTC),
        started_workflow_id=workflow_id,
        run_id="r-" + workflow_id,
        manual=None,
    )
    return ScheduleAppend(schedule_id, [event], head)


@pytest.mark.timeout(30)
def test_a_refused_group_writes_nothing_and_leaves_the_rest_of_the_batch(store: Any) -> None:
    requests = [
        AppendRequest("a", [started("a")], 0),
        AppendRequest("b", [started("b")], 0),  # group 1: b, then a conflicting append to b
        AppendRequest("b", [signal("b")], 7),
        AppendRequest("c", [started("c")], 0),  # group 2: commits
        fire("s", "c", 0),
        AppendRequest("d", [started("d")], 0),
    ]
    results = store.append_batch(requests, groups=[(1, 3), (3, 5)])
    assert isinstance(results[1], SequenceConflictError) and results[2] is results[1]
    assert not any(isinstance(slot, AionError) for slot in results[:1] + results[3:])
    assert store.get_run("b") is None and store.read_history("b") == []
    assert [type(e) for e in store.read_history("c")] == [ev.WorkflowStarted]
    assert [type(e) for e in store.read_schedule("s")] == [ev.ScheduleFired]
    assert store.head("a") == 1 and store.head("d") == 1
    # The refused group reserved nothing: b can start afterwards, at head 0.
    store.append_batch([AppendRequest("b", [started("b")], 0)])
    assert store.head("b") == 1


@pytest.mark.timeout(30)
def test_a_refused_group_gives_back_what_it_changed_of_a_workflow_the_batch_had_touched(store: Any) -> None:
    store.append("a", [started("a")], 0)
    requests = [
        AppendRequest("a", [signal("a", 1)], 1),  # outside the group: a at 2
        AppendRequest("a", [signal("a", 2)], 2),  # group: a at 3, then refused
        fire("s", "a", 5),
        AppendRequest("a", [signal("a", 3)], 2),  # after the group: a is at 2 again
    ]
    results = store.append_batch(requests, groups=[(1, 3)])
    assert isinstance(results[1], SequenceConflictError) and results[2] is results[1]
    assert not isinstance(results[3], AionError)
    assert [e.name for e in store.read_history("a")[1:] if isinstance(e, ev.SignalReceived)] == ["s1", "s3"]
    assert store.read_schedule("s") == []


@pytest.mark.timeout(30)
def test_the_recorder_commits_many_companion_appends_in_one_transaction(store: EventStore) -> None:
    recorder = start_recorder(store)
    outcomes: list[Committed] = []
    try:
        with recorder.together():
            for index in range(20):
                workflow_id = f"w{index}"
                # w7's fire is refused (wrong schedule head): its start must not be written either.
                head = 1 if index == 7 else 0
                recorder.append_to(
                    outcomes.extend, index, workflow_id, [started(workflow_id)], 0,
                    companion=fire(f"s{index}", workflow_id, head),
                )  # fmt: skip
        wait_until(lambda: len(outcomes) == 20, timeout=20)
        assert recorder.stats().batches == 1
    finally:
        recorder.stop()
    by_token = {token: (value, error) for token, value, error in outcomes}
    assert isinstance(by_token[7][1], SequenceConflictError) and by_token[7][0] is None
    assert store.get_run("w7") is None and store.read_schedule("s7") == []
    for index in set(range(20)) - {7}:
        value, error = by_token[index]
        assert error is None and value is not None and isinstance(value[0], ev.WorkflowStarted)
        assert [type(e) for e in store.read_schedule(f"s{index}")] == [ev.ScheduleFired]
