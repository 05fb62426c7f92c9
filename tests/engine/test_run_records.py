"""The engine's record of an open run stays small for a run that only waits (``aion.engine._runs``).

The engine keeps one ``Run`` per open run, 100,000 of them for 100,000 runs waiting on a signal: their collections
of open work are made on first use, and the waits they report are shared between runs that report the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aion import events as ev
from aion.engine._runs import ChildRef, ProcessLink, Run, RunState, shared_waits

AT = datetime(2026, 12, 3, tzinfo=UTC)
FIRE_AT = datetime(2026, 12, 4, tzinfo=UTC)


def started(workflow_id: str = "w-1") -> ev.WorkflowStarted:
    return ev.WorkflowStarted(
        workflow_id=workflow_id,
        seq=1,
        recorded_at=AT,
        workflow_type="waiter",
        input=[],
        run_id="00000000-0000-4000-8000-000000000001",
    )


@pytest.mark.timeout(10)
def test_a_waiting_run_rebuilt_from_history_has_no_collections_made() -> None:
    state = RunState.from_history([started(), ev.SignalReceived(workflow_id="w-1", seq=2, recorded_at=AT, name="x")])
    made = (
        state.issued_keys,
        state.child_refs,
        state.sent_signals,
        state.pending_activities,
        state.timer_fires,
        state.upserts,
    )
    assert made == (None,) * 6
    fires, activities = state.waiting_on()
    assert list(fires) == [] and list(activities) == []
    assert state.search_attributes({}) == {}
    assert state.issued_keys is None and state.upserts is None  # reading them made nothing either
    assert not hasattr(state, "__dict__")  # slotted


@pytest.mark.timeout(10)
def test_the_collections_made_on_first_use_keep_what_is_put_in_them() -> None:
    history = [
        started(),
        ev.TimerStarted(workflow_id="w-1", seq=2, recorded_at=AT, timer_id=1, fire_at=FIRE_AT),
        ev.SearchAttributesUpserted(workflow_id="w-1", seq=3, recorded_at=AT, attributes={"Customer": "c-1"}),
    ]
    state = RunState.from_history(history)
    assert state.timers == {1: FIRE_AT.timestamp()}
    assert state.search_attributes({"Customer": "c-0", "Region": "eu"}) == {"Customer": "c-1", "Region": "eu"}
    assert len(state.issued) == 1  # the timer's anchor key
    fires, _ = state.waiting_on()
    assert list(fires) == [FIRE_AT.timestamp()]
    state.children[7] = ChildRef(7, "child-7", "r-7", "waiter", [], "terminate")
    assert state.child_refs is not None and 7 in state.child_refs


@pytest.mark.timeout(10)
def test_a_shed_start_keeps_the_version_parent_and_start_time() -> None:
    child_start = ev.WorkflowStarted(
        workflow_id="w-1",
        seq=1,
        recorded_at=AT,
        workflow_type="waiter",
        input=[],
        run_id="00000000-0000-4000-8000-000000000001",
        workflow_version="3",
        parent_workflow_id="p-1",
        parent_workflow_run_id="00000000-0000-4000-8000-000000000002",
    )
    state = RunState.from_history([child_start])
    before = (state.version, state.parent, state.started_at)
    assert before == (3, ("p-1", "00000000-0000-4000-8000-000000000002"), AT.timestamp())
    state.shed_started()
    assert state.started is None
    assert (state.version, state.parent, state.started_at) == before
    state.shed_started()  # a second eviction sheds nothing more
    assert (state.version, state.parent, state.started_at) == before
    top = RunState.from_history([started()])
    top.shed_started()
    assert top.parent is None and top.version == RunState.from_history([started()]).version


@pytest.mark.timeout(10)
def test_queries_waiting_for_a_process_are_taken_once() -> None:
    link = ProcessLink()
    assert not link.querying and link.take_waiting_queries() == []
    assert link.queued_queries is None
    link.waiting_queries.append((1, {"t": "query"}))
    assert link.querying
    assert link.take_waiting_queries() == [(1, {"t": "query"})]
    assert not link.querying and link.take_waiting_queries() == []


@pytest.mark.timeout(10)
def test_runs_reporting_the_same_waits_share_one_tuple() -> None:
    first = Run(RunState("w-1", "r-1", "waiter", head=1))
    second = Run(RunState("w-2", "r-2", "waiter", head=1))
    first.waits = shared_waits(["signal 'go'"])
    second.waits = shared_waits(["signal 'go'"])
    assert first.waits == ("signal 'go'",)
    assert first.waits is second.waits
    assert shared_waits([]) == ()
