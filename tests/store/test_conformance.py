"""The one conformance suite every EventStore implementation passes (memory and LMDB, see conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aion._codec import decode_event
from aion._ids import new_run_id
from aion.clock import ManualClock
from aion.errors import (
    AionError,
    InvalidArgumentError,
    PayloadError,
    PayloadTooLargeError,
    SequenceConflictError,
    StoreError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityFailed,
    ActivityScheduled,
    ActivityStarted,
    Event,
    Failure,
    SearchAttributesUpserted,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowContinuedAsNew,
    WorkflowFailed,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from aion.status import WorkflowStatus, status_of_run
from aion.store import (
    ACTIVITY_RETRY,
    EXECUTION_TIMEOUT,
    RUN_TIMEOUT,
    TIMER,
    AppendRequest,
    EventStore,
    RunInfo,
    TimerRow,
)
from tests.store._helpers import signal, started

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _strip(event: Event) -> tuple[str, int]:
    return (event.type, event.seq)


# --- appends and sequence numbers -----------------------------------------------------------------


def test_append_stamps_gapless_seqs_and_one_time_per_transaction(store: EventStore) -> None:
    before = datetime.now(UTC)
    first = store.append("wf-1", [started("wf-1"), signal("wf-1", 1)], 0)
    second = store.append("wf-1", [signal("wf-1", 2), signal("wf-1", 3)], 2)
    assert [e.seq for e in first + second] == [1, 2, 3, 4]
    assert first[0].recorded_at == first[1].recorded_at
    assert second[0].recorded_at == second[1].recorded_at
    assert before <= first[0].recorded_at <= second[0].recorded_at <= datetime.now(UTC)
    assert first[0].recorded_at.tzinfo is not None
    assert store.head("wf-1") == 4
    assert store.read_history("wf-1") == first + second


def test_events_and_runs_are_stamped_with_the_stores_clock(
    clocked_store: EventStore, manual_clock: ManualClock
) -> None:
    opened_at = manual_clock.now()
    first = clocked_store.append("wf-1", [started("wf-1", run_timeout=30), signal("wf-1", 1)], 0)
    assert [event.recorded_at for event in first] == [opened_at, opened_at]
    manual_clock.advance(5.5)
    later = manual_clock.now()
    second = clocked_store.append("wf-1", [WorkflowCompleted(workflow_id="wf-1", result=None)], 2)
    assert second[0].recorded_at == later
    assert [event.recorded_at for event in clocked_store.read_history("wf-1")] == [opened_at, opened_at, later]
    run = clocked_store.get_run("wf-1")
    assert run is not None
    assert (run.start_time, run.close_time) == (opened_at, later)
    clocked_store.append("wf-2", [started("wf-2", run_timeout=30)], 0)
    assert clocked_store.all_timers() == [TimerRow(later + timedelta(seconds=30), "wf-2", RUN_TIMEOUT, 0)]


def test_head_of_unknown_workflow_is_zero_and_reads_are_empty(store: EventStore) -> None:
    assert store.head("nobody") == 0
    assert store.read_history("nobody") == []
    assert store.get_run("nobody") is None
    assert store.current_run_id("nobody") is None
    with pytest.raises(WorkflowNotFoundError):
        store.read_run("nobody")


def test_wrong_expected_head_is_a_sequence_conflict_and_writes_nothing(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    for wrong in (0, 2, 7):
        with pytest.raises(SequenceConflictError) as caught:
            store.append("wf-1", [signal("wf-1")], wrong)
        assert (caught.value.workflow_id, caught.value.expected_head, caught.value.actual_head) == (
            "wf-1",
            wrong,
            1,
        )
    assert store.head("wf-1") == 1
    with pytest.raises(SequenceConflictError):
        store.append("new", [started("new")], 1)
    assert store.head("new") == 0


def test_events_of_another_workflow_are_refused(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [started("wf-2")], 0)
    store.append("wf-1", [started("wf-1")], 0)
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [signal("wf-1"), signal("wf-2")], 1)
    assert store.head("wf-1") == 1
    assert store.head("wf-2") == 0


@pytest.mark.parametrize("bad", ["", " ", "a\x00b", "tab\there", "x" * 300, 17])
def test_invalid_workflow_ids_are_refused(store: EventStore, bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        store.append(bad, [], 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        store.head(bad)  # type: ignore[arg-type]


def test_history_starts_with_workflow_started(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [signal("wf-1")], 0)
    assert store.head("wf-1") == 0


def test_invalid_run_id_or_type_is_refused(store: EventStore) -> None:
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [started("wf-1", run_id="not-a-uuid")], 0)
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [started("wf-1", workflow_type="")], 0)
    assert store.head("wf-1") == 0


def test_empty_append_is_a_no_op_but_checks_the_head(store: EventStore) -> None:
    assert store.append("wf-1", [], 0) == []
    store.append("wf-1", [started("wf-1")], 0)
    assert store.append("wf-1", [], 1) == []
    with pytest.raises(SequenceConflictError):
        store.append("wf-1", [], 0)
    assert store.head("wf-1") == 1


def test_a_running_workflow_cannot_start_again(store: EventStore) -> None:
    first = started("wf-1")
    store.append("wf-1", [first], 0)
    with pytest.raises(WorkflowAlreadyStartedError) as caught:
        store.append("wf-1", [started("wf-1")], 1)
    assert caught.value.run_id == first.run_id


def test_nothing_but_a_new_run_follows_a_terminal_event(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1"), WorkflowCompleted(workflow_id="wf-1", result=1)], 0)
    with pytest.raises(WorkflowNotRunningError):
        store.append("wf-1", [signal("wf-1")], 2)
    with pytest.raises(WorkflowNotRunningError):
        store.append("wf-1", [WorkflowFailed(workflow_id="wf-1", failure=Failure("E", "late"))], 2)
    assert store.head("wf-1") == 2
    store.append("wf-1", [started("wf-1")], 2)
    assert store.head("wf-1") == 3


def test_run_ids_are_unique_across_workflows(store: EventStore) -> None:
    run_id = new_run_id()
    store.append("wf-1", [started("wf-1", run_id=run_id)], 0)
    with pytest.raises(InvalidArgumentError):
        store.append("wf-2", [started("wf-2", run_id=run_id)], 0)


def test_unserialisable_payload_surfaces_payload_error_and_store_stays_usable(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    with pytest.raises(PayloadError):
        store.append("wf-1", [signal("wf-1", payload={"bad": object()})], 1)
    with pytest.raises(PayloadError):
        store.append("wf-2", [started("wf-2", input={1: "int key"})], 0)
    assert store.head("wf-1") == 1
    assert store.head("wf-2") == 0
    assert store.append("wf-1", [signal("wf-1", payload=[1, "two"])], 1)[0].seq == 2


def test_oversize_event_is_refused_and_store_stays_usable(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    huge = b"x" * (5 * 1024 * 1024)
    with pytest.raises(PayloadTooLargeError):
        store.append("wf-1", [signal("wf-1", 1), signal("wf-1", 2, payload=huge)], 1)
    assert store.head("wf-1") == 1
    assert store.append("wf-1", [signal("wf-1", 3, payload=b"small")], 1)[0].seq == 2


# --- runs -----------------------------------------------------------------------------------------


def test_multi_run_history_read_run_and_read_history(store: EventStore) -> None:
    first, second = started("wf-1"), started("wf-1", input={"n": 2})
    run1 = store.append("wf-1", [first, signal("wf-1", 1)], 0)
    assert store.current_run_id("wf-1") == first.run_id
    cut = WorkflowContinuedAsNew(workflow_id="wf-1", input={"n": 2}, new_run_id=second.run_id)
    run1 += store.append("wf-1", [cut, second], 2)[:1]
    run2 = store.read_history("wf-1", after_seq=3)
    run2 += store.append("wf-1", [signal("wf-1", 2)], 4)
    assert [e.seq for e in store.read_history("wf-1")] == [1, 2, 3, 4, 5]
    assert store.read_run("wf-1", first.run_id) == run1
    assert store.read_run("wf-1", second.run_id) == run2
    assert store.read_run("wf-1") == run2
    assert [e.seq for e in store.read_history("wf-1", after_seq=1, limit=2)] == [2, 3]
    assert store.read_history("wf-1", after_seq=5) == []
    assert store.read_history("wf-1", limit=0) == []
    with pytest.raises(WorkflowNotFoundError):
        store.read_run("wf-1", new_run_id())
    store.append("wf-2", [started("wf-2")], 0)
    with pytest.raises(WorkflowNotFoundError):
        store.read_run("wf-2", first.run_id)  # a run of another workflow

    encoded, last = store.read_run_encoded("wf-1")  # the current run, as the event codec's bytes
    assert [decode_event(data) for data in encoded] == run2 and last == 5
    with pytest.raises(WorkflowNotFoundError):
        store.read_run_encoded("wf-3")

    run = store.get_run("wf-1")
    assert run is not None
    assert (run.run_id, run.run_first_seq, run.head_seq, run.run_number) == (second.run_id, 4, 5, 2)
    assert run.status is WorkflowStatus.RUNNING
    assert run.first_run_id == second.run_id
    assert store.current_run_id("wf-1") == second.run_id  # the new run, once the old one continued as new


@pytest.mark.parametrize(
    "terminal",
    [
        WorkflowCompleted(workflow_id="wf-1", result={"ok": True}),
        WorkflowFailed(workflow_id="wf-1", failure=Failure("ValueError", "boom", "tb")),
        WorkflowCancelled(workflow_id="wf-1", reason="asked"),
        WorkflowTerminated(workflow_id="wf-1", reason="admin"),
        WorkflowTimedOut(workflow_id="wf-1", kind="run"),
        WorkflowContinuedAsNew(workflow_id="wf-1", input=None, new_run_id=new_run_id()),
    ],
    ids=lambda event: event.type,
)
def test_run_record_status_is_derived_from_history(store: EventStore, terminal: Event) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    running = store.get_run("wf-1")
    assert running is not None and running.is_running and running.close_time is None
    closed = store.append("wf-1", [terminal], 1)[0]
    run = store.get_run("wf-1")
    assert run is not None
    assert run.status is status_of_run(store.read_run("wf-1"))
    assert run.status is not WorkflowStatus.RUNNING
    assert run.close_time == closed.recorded_at
    assert run.start_time == running.start_time
    assert run.head_seq == 2


def test_run_record_fields_search_attributes_and_parents(store: EventStore) -> None:
    first = started(
        "child",
        "Child",
        search_attributes={"region": "eu", "tier": 1},
        parent_workflow_id="parent",
        parent_workflow_run_id=new_run_id(),
        parent_run_id=new_run_id(),
        first_run_id=new_run_id(),
    )
    stamped = store.append("child", [first], 0)
    store.append(
        "child",
        [
            SearchAttributesUpserted(workflow_id="child", attributes={"tier": 2, "when": T0}),
            SearchAttributesUpserted(workflow_id="child", attributes={"region": None}),
        ],
        1,
    )
    run = store.get_run("child")
    assert run == RunInfo(
        workflow_id="child",
        run_id=first.run_id,
        workflow_type="Child",
        status=WorkflowStatus.RUNNING,
        head_seq=3,
        run_first_seq=1,
        start_time=stamped[0].recorded_at,
        search_attributes={"tier": 2, "when": T0},
        parent_run_id=first.parent_run_id,
        first_run_id=first.first_run_id,
        parent_workflow_id="parent",
        parent_workflow_run_id=first.parent_workflow_run_id,
    )


def test_list_workflows_by_status_and_type_in_start_order(store: EventStore) -> None:
    names = [("a", "Order"), ("b", "Ship"), ("c", "Order"), ("d", "Order"), ("e", "Ship")]
    for workflow_id, workflow_type in names:
        store.append(workflow_id, [started(workflow_id, workflow_type)], 0)
    store.append("c", [WorkflowCompleted(workflow_id="c")], 1)
    store.append("e", [WorkflowFailed(workflow_id="e", failure=Failure("E", "x"))], 1)

    def ids(runs: list[RunInfo]) -> list[str]:
        return [run.workflow_id for run in runs]

    assert ids(store.list_workflows()) == ["e", "d", "c", "b", "a"]
    assert ids(store.list_workflows(newest_first=False)) == ["a", "b", "c", "d", "e"]
    assert ids(store.list_workflows(limit=2)) == ["e", "d"]
    assert ids(store.list_workflows(status=WorkflowStatus.RUNNING)) == ["d", "b", "a"]
    assert ids(store.list_workflows(status="completed")) == ["c"]
    assert ids(store.list_workflows(workflow_type="Order", newest_first=False)) == ["a", "c", "d"]
    assert ids(store.list_workflows(status="running", workflow_type="Order")) == ["d", "a"]
    assert ids(store.list_workflows(status="running", workflow_type="Order", limit=1)) == ["d"]
    assert store.list_workflows(workflow_type="Nope") == []
    assert store.list_workflows(status="cancelled") == []
    assert ids(store.running_workflows()) == ["a", "b", "d"]
    with pytest.raises(InvalidArgumentError):
        store.list_workflows(status="sleeping")

    # A new run moves the workflow in the indexes: new status, new type, new start time.
    store.append("c", [started("c", "Ship")], 2)
    assert ids(store.list_workflows())[0] == "c"
    assert ids(store.list_workflows(workflow_type="Order", newest_first=False)) == ["a", "d"]
    assert ids(store.list_workflows(status="completed")) == []
    assert ids(store.running_workflows()) == ["a", "b", "d", "c"]


def test_running_workflows_pages_through_many(store: EventStore) -> None:
    requests = [AppendRequest(f"wf-{i:04d}", [started(f"wf-{i:04d}")], 0) for i in range(1200)]
    assert all(isinstance(slot, list) for slot in store.append_batch(requests))
    running = list(store.running_workflows())
    assert [run.workflow_id for run in running] == [f"wf-{i:04d}" for i in range(1200)]


# --- timer rows -----------------------------------------------------------------------------------


def test_timer_rows_follow_timer_events(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    store.append(
        "wf-1",
        [
            TimerStarted(workflow_id="wf-1", timer_id=1, fire_at=T0 + timedelta(seconds=30)),
            TimerStarted(workflow_id="wf-1", timer_id=2, fire_at=T0 + timedelta(seconds=10)),
            TimerStarted(workflow_id="wf-1", timer_id=3, fire_at=T0 + timedelta(seconds=20)),
        ],
        1,
    )
    assert store.all_timers() == [
        TimerRow(T0 + timedelta(seconds=10), "wf-1", TIMER, 2),
        TimerRow(T0 + timedelta(seconds=20), "wf-1", TIMER, 3),
        TimerRow(T0 + timedelta(seconds=30), "wf-1", TIMER, 1),
    ]
    assert [row.key for row in store.due_timers(T0 + timedelta(seconds=20))] == [2, 3]
    assert [row.key for row in store.due_timers(T0 + timedelta(seconds=60), limit=1)] == [2]
    assert store.due_timers(T0) == []
    store.append(
        "wf-1",
        [TimerFired(workflow_id="wf-1", timer_id=2), TimerCancelled(workflow_id="wf-1", timer_id=3)],
        4,
    )
    assert store.all_timers() == [TimerRow(T0 + timedelta(seconds=30), "wf-1", TIMER, 1)]


def test_timer_rows_of_activity_retries(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    retry_at = T0 + timedelta(seconds=5)
    store.append(
        "wf-1",
        [
            ActivityScheduled(workflow_id="wf-1", activity_id=1, activity_type="charge", input=None),
            ActivityStarted(workflow_id="wf-1", activity_id=1, attempt=1),
            ActivityFailed(
                workflow_id="wf-1",
                activity_id=1,
                failure=Failure("IOError", "net"),
                attempt=1,
                retryable=True,
                next_attempt_at=retry_at,
            ),
        ],
        1,
    )
    assert store.all_timers() == [TimerRow(retry_at, "wf-1", ACTIVITY_RETRY, 1)]
    store.append("wf-1", [ActivityStarted(workflow_id="wf-1", activity_id=1, attempt=2)], 4)
    assert store.all_timers() == []
    store.append(
        "wf-1",
        [
            ActivityFailed(
                workflow_id="wf-1",
                activity_id=1,
                failure=Failure("IOError", "net"),
                attempt=2,
                retryable=True,
                next_attempt_at=retry_at + timedelta(seconds=10),
            ),
            ActivityStarted(workflow_id="wf-1", activity_id=1, attempt=3),
            ActivityCompleted(workflow_id="wf-1", activity_id=1, result=1, attempt=3),
        ],
        5,
    )
    assert store.all_timers() == []


@pytest.mark.parametrize("ending", ["cancelled", "deadline"])
def test_a_retry_row_goes_when_the_wait_for_the_retry_ends_without_a_start(store: EventStore, ending: str) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    retry_at = T0 + timedelta(seconds=5)
    failure = Failure("IOError", "net")
    store.append(
        "wf-1",
        [
            ActivityScheduled(workflow_id="wf-1", activity_id=1, activity_type="charge", input=None),
            ActivityStarted(workflow_id="wf-1", activity_id=1, attempt=1),
            ActivityFailed(
                workflow_id="wf-1", activity_id=1, failure=failure, attempt=1, retryable=True, next_attempt_at=retry_at
            ),
            ActivityScheduled(workflow_id="wf-1", activity_id=2, activity_type="charge", input=None),
            ActivityStarted(workflow_id="wf-1", activity_id=2, attempt=1),
            ActivityCompleted(workflow_id="wf-1", activity_id=2, result=2, attempt=1),
        ],
        1,
    )
    # A first attempt's start and completion (activity 2) leave activity 1's retry row alone.
    assert store.all_timers() == [TimerRow(retry_at, "wf-1", ACTIVITY_RETRY, 1)]
    ended: Event = (
        ActivityCancelled(workflow_id="wf-1", activity_id=1)
        if ending == "cancelled"
        else ActivityFailed(workflow_id="wf-1", activity_id=1, failure=failure, attempt=1, retryable=False)
    )
    store.append("wf-1", [ended], 7)
    assert store.all_timers() == []


def test_timer_rows_of_run_and_execution_timeouts_and_terminal_clears_all(store: EventStore) -> None:
    deadline = T0 + timedelta(hours=1)
    stamped = store.append("wf-1", [started("wf-1", run_timeout=60.0, execution_deadline=deadline)], 0)
    store.append("wf-1", [TimerStarted(workflow_id="wf-1", timer_id=1, fire_at=T0)], 1)
    store.append("wf-2", [started("wf-2", execution_timeout=30.0)], 0)
    now1 = stamped[0].recorded_at
    rows = store.all_timers()
    assert TimerRow(now1 + timedelta(seconds=60), "wf-1", RUN_TIMEOUT, 0) in rows
    assert TimerRow(deadline, "wf-1", EXECUTION_TIMEOUT, 0) in rows
    assert TimerRow(T0, "wf-1", TIMER, 1) in rows
    assert [row.kind for row in rows if row.workflow_id == "wf-2"] == [EXECUTION_TIMEOUT]
    assert rows == sorted(rows)
    store.append("wf-1", [WorkflowCancelled(workflow_id="wf-1")], 2)
    assert [row.workflow_id for row in store.all_timers()] == ["wf-2"]


def test_naive_timer_times_are_refused(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    with pytest.raises(InvalidArgumentError):
        store.append("wf-1", [TimerStarted(workflow_id="wf-1", timer_id=1, fire_at=datetime(2030, 1, 1))], 1)
    assert store.all_timers() == []


# --- batches --------------------------------------------------------------------------------------


def test_batch_puts_a_conflict_in_its_slot_and_commits_the_others(store: EventStore) -> None:
    store.append("b", [started("b")], 0)
    results = store.append_batch(
        [
            AppendRequest("a", [started("a")], 0),
            AppendRequest("b", [signal("b")], 5),
            AppendRequest("c", [started("c"), signal("c")], 0),
            AppendRequest("d", [signal("d", payload=object())], 0),
        ]
    )
    assert [len(slot) for slot in results if isinstance(slot, list)] == [1, 2]
    assert isinstance(results[1], SequenceConflictError) and results[1].actual_head == 1
    assert isinstance(results[3], AionError)
    assert (store.head("a"), store.head("b"), store.head("c"), store.head("d")) == (1, 1, 2, 0)
    assert store.append_batch([]) == []


def test_batch_chains_two_requests_of_one_workflow(store: EventStore) -> None:
    results = store.append_batch(
        [
            AppendRequest("a", [started("a")], 0),
            AppendRequest("a", [signal("a", 1), signal("a", 2)], 1),
            AppendRequest("a", [signal("a", 3)], 1),  # stale head: conflicts
            AppendRequest("a", [WorkflowCompleted(workflow_id="a")], 3),
        ]
    )
    assert [[e.seq for e in slot] if isinstance(slot, list) else type(slot) for slot in results] == [
        [1],
        [2, 3],
        SequenceConflictError,
        [4],
    ]
    run = store.get_run("a")
    assert run is not None and run.status is WorkflowStatus.COMPLETED and run.head_seq == 4
    assert [e.seq for e in store.read_history("a")] == [1, 2, 3, 4]


def test_atomic_batch_aborts_everything_on_one_refusal(store: EventStore) -> None:
    store.append("old", [started("old")], 0)
    new_run = new_run_id()
    cut = WorkflowContinuedAsNew(workflow_id="old", input=1, new_run_id=new_run)
    with pytest.raises(SequenceConflictError):
        store.append_batch(
            [
                AppendRequest("old", [cut], 1),
                AppendRequest("other", [started("other")], 3),
            ],
            atomic=True,
        )
    assert store.head("old") == 1 and store.head("other") == 0
    results = store.append_batch(
        [
            AppendRequest("old", [WorkflowContinuedAsNew(workflow_id="old", input=1, new_run_id=new_run)], 1),
            AppendRequest("old", [started("old", run_id=new_run)], 2),
        ],
        atomic=True,
    )
    assert [[e.seq for e in slot] for slot in results if isinstance(slot, list)] == [[2], [3]]
    run = store.get_run("old")
    assert run is not None and run.run_id == new_run and run.run_first_seq == 3


# --- lifecycle ------------------------------------------------------------------------------------


def test_a_closed_store_refuses_calls(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1")], 0)
    store.close()
    with pytest.raises(StoreError):
        store.head("wf-1")
    with pytest.raises(StoreError):
        store.append("wf-1", [signal("wf-1")], 1)
    store.close()


def test_returned_run_records_are_snapshots(store: EventStore) -> None:
    store.append("wf-1", [started("wf-1", search_attributes={"a": 1})], 0)
    run = store.get_run("wf-1")
    assert run is not None
    run.search_attributes["a"] = 2  # type: ignore[index]
    again = store.get_run("wf-1")
    assert again is not None and again.search_attributes == {"a": 1}
    assert _strip(store.read_run("wf-1")[0]) == ("WorkflowStarted", 1)
