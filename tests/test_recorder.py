"""The recorder actor: durable acknowledgements, group commit, errors to the right future, orderly stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from aion._ids import new_run_id
from aion.errors import (
    InvalidArgumentError,
    PayloadError,
    RecorderStoppedError,
    SequenceConflictError,
)
from aion.events import Event, WorkflowCompleted, WorkflowContinuedAsNew
from aion.recorder import Recorder, RecorderHandle, start_recorder
from aion.store import AppendRequest, EventStore, MemoryEventStore, open_store
from tests.helpers import RecordingSink
from tests.store._helpers import signal, started


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    made: EventStore = open_store(tmp_path / "data") if request.param == "lmdb" else MemoryEventStore()
    yield made
    made.close()


class _Block:
    """Test message: keep the recorder busy until ``release`` is set, so appends pile up in its queue."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release


class _BlockableRecorder(Recorder):
    """The recorder plus a test hook to hold it busy."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Block):
            message.release.wait(timeout=10)
            return None
        return super().on_receive(message)


def _start(store: EventStore) -> RecorderHandle:
    return RecorderHandle(_BlockableRecorder.start(store))


@pytest.fixture
def recorder(store: EventStore) -> Iterator[RecorderHandle]:
    handle = _start(store)
    yield handle
    handle.stop(timeout=10)
    assert not pykka.ActorRegistry.get_all(), "an actor outlived the test"


def test_append_resolves_with_the_stamped_durable_events(store: EventStore, recorder: RecorderHandle) -> None:
    future = recorder.append("wf-1", [started("wf-1"), signal("wf-1")], 0)
    stamped = future.get(timeout=10)
    assert [event.seq for event in stamped] == [1, 2]
    assert store.read_history("wf-1") == stamped


def test_many_threads_appending_concurrently_all_land_gapless(store: EventStore, recorder: RecorderHandle) -> None:
    writers, appends = 20, 25
    barrier = threading.Barrier(writers)
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        workflow_id = f"wf-{index}"
        try:
            barrier.wait(timeout=10)
            head = recorder.append(workflow_id, [started(workflow_id)], 0).get(timeout=30)[-1].seq
            for n in range(appends):
                head = recorder.append(workflow_id, [signal(workflow_id, n)], head).get(timeout=30)[-1].seq
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    for index in range(writers):
        assert [event.seq for event in store.read_history(f"wf-{index}")] == list(range(1, appends + 2))
    stats = recorder.stats()
    assert stats.appends == writers * (appends + 1)
    assert stats.events == writers * (appends + 1)
    assert stats.errors == 0


def test_group_commit_puts_waiting_appends_in_one_transaction(recorder: RecorderHandle) -> None:
    # Occupy the actor so the appends below pile up in the queue while it is busy.
    release = threading.Event()
    busy = recorder.ref.ask(_Block(release), block=False)
    futures = [recorder.append(f"wf-{i}", [started(f"wf-{i}")], 0) for i in range(50)]
    before = recorder.stats()
    release.set()
    busy.get(timeout=10)
    for future in futures:
        future.get(timeout=10)
    after = recorder.stats()
    assert before.batches == 0
    assert after.appends == 50
    assert after.batches == 1, after  # fifty appends, one transaction, one fsync
    assert after.max_batch == 50


def test_errors_reach_only_their_own_future(store: EventStore, recorder: RecorderHandle) -> None:
    recorder.append("ok", [started("ok")], 0).get(timeout=10)
    release = threading.Event()
    busy = recorder.ref.ask(_Block(release), block=False)
    good = recorder.append("ok", [signal("ok")], 1)
    conflict = recorder.append("ok", [signal("ok")], 1)  # same head again: loses the race
    bad_payload = recorder.append("other", [started("other", input={"x": object()})], 0)
    bad_id = recorder.append("", [], 0)
    fine = recorder.append("third", [started("third")], 0)
    release.set()
    busy.get(timeout=10)
    assert [event.seq for event in good.get(timeout=10)] == [2]
    with pytest.raises(SequenceConflictError):
        conflict.get(timeout=10)
    with pytest.raises(PayloadError):
        bad_payload.get(timeout=10)
    with pytest.raises(InvalidArgumentError):
        bad_id.get(timeout=10)
    assert [event.seq for event in fine.get(timeout=10)] == [1]
    assert store.head("ok") == 2 and store.head("other") == 0
    stats = recorder.stats()
    assert stats.errors == 3
    assert stats.batches == 2


def test_append_batch_and_atomic_batch(store: EventStore, recorder: RecorderHandle) -> None:
    slots = recorder.append_batch([AppendRequest("a", [started("a")], 0), AppendRequest("b", [signal("b")], 4)]).get(
        timeout=10
    )
    assert isinstance(slots[0], list) and isinstance(slots[1], SequenceConflictError)
    new_run = new_run_id()
    cut = WorkflowContinuedAsNew(workflow_id="a", input=None, new_run_id=new_run)
    with pytest.raises(SequenceConflictError):
        recorder.append_batch(
            [AppendRequest("a", [cut], 1), AppendRequest("a", [started("a", run_id=new_run)], 9)], atomic=True
        ).get(timeout=10)
    assert store.head("a") == 1
    results = recorder.append_batch(
        [AppendRequest("a", [cut], 1), AppendRequest("a", [started("a", run_id=new_run)], 2)], atomic=True
    ).get(timeout=10)
    assert [[event.seq for event in slot] for slot in results if isinstance(slot, list)] == [[2], [3]]


def test_queue_order_is_kept_across_atomic_items(store: EventStore, recorder: RecorderHandle) -> None:
    release = threading.Event()
    busy = recorder.ref.ask(_Block(release), block=False)
    first = recorder.append("a", [started("a")], 0)
    atomic = recorder.append_batch([AppendRequest("a", [signal("a")], 1)], atomic=True)
    last = recorder.append("a", [WorkflowCompleted(workflow_id="a")], 2)
    release.set()
    busy.get(timeout=10)
    assert [e.seq for e in first.get(timeout=10)] == [1]
    assert [[e.seq for e in slot] for slot in atomic.get(timeout=10) if isinstance(slot, list)] == [[2]]
    assert [e.seq for e in last.get(timeout=10)] == [3]


def test_stop_commits_pending_appends_then_refuses(store: EventStore) -> None:
    handle = _start(store)
    release = threading.Event()
    busy = handle.ref.ask(_Block(release), block=False)
    futures = [handle.append(f"wf-{i}", [started(f"wf-{i}")], 0) for i in range(10)]
    stopper = threading.Thread(target=handle.stop, kwargs={"timeout": 10})
    stopper.start()
    release.set()
    busy.get(timeout=10)
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    stamped: list[Event] = [event for future in futures for event in future.get(timeout=10)]
    assert len(stamped) == 10
    assert all(store.head(f"wf-{i}") == 1 for i in range(10))
    assert not handle.is_alive
    with pytest.raises(RecorderStoppedError):
        handle.append("late", [started("late")], 0)
    handle.stop()  # twice is harmless


def test_start_recorder_convenience(store: EventStore) -> None:
    handle = start_recorder(store, max_batch=2)
    try:
        futures = [handle.append(f"wf-{i}", [started(f"wf-{i}")], 0) for i in range(7)]
        assert all(len(future.get(timeout=10)) == 1 for future in futures)
        assert handle.stats().max_batch <= 2
    finally:
        handle.stop(timeout=10)


# --- the recorder's (and the core's) future --------------------------------------------------------------


def test_one_shot_future_behaves_like_a_threading_future(recorder: RecorderHandle) -> None:
    import queue

    from aion._futures import OneShotFuture

    future = OneShotFuture()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)
    threading.Timer(0.05, future.set, args=(["done"],)).start()
    assert future.get(timeout=10) == ["done"]
    assert future.get() == ["done"]  # many gets, from any thread
    with pytest.raises(queue.Full):
        future.set(["again"])

    failed = OneShotFuture()
    failed.set_exception((PayloadError, PayloadError("bad"), None))
    for _ in range(2):
        with pytest.raises(PayloadError, match="bad"):
            failed.get(timeout=1)

    hooked = OneShotFuture()
    hooked.set_get_hook(lambda timeout: ["hooked"])
    assert hooked.get() == ["hooked"]
    with pytest.raises(queue.Full):
        hooked.set(["late"])

    mapped = recorder.append("wf-m", [started("wf-m")], 0).map(len)
    assert mapped.get(timeout=10) == 1


def test_futures_resolve_only_after_their_batch_is_readable(store: EventStore, recorder: RecorderHandle) -> None:
    # Pipelined resolution must never hand out an acknowledgement before the commit.
    def writer(index: int) -> None:
        workflow_id = f"wf-p{index}"
        head = len(recorder.append(workflow_id, [started(workflow_id)], 0).get(timeout=10))
        for _ in range(20):
            head = recorder.append(workflow_id, [signal(workflow_id)], head).get(timeout=10)[-1].seq
            assert store.head(workflow_id) >= head

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(store.head(f"wf-p{i}") == 21 for i in range(8))


def test_append_to_delivers_each_batch_in_one_call_in_queue_order(store: EventStore, recorder: RecorderHandle) -> None:
    sink = RecordingSink()
    release = threading.Event()
    recorder.ref.tell(_Block(release))  # hold the recorder so the appends pile up into one batch
    for index in range(5):
        recorder.append_to(sink, ("token", index), f"wf-s{index}", [started(f"wf-s{index}")], 0)
    recorder.append_to(sink, "conflict", "wf-s0", [signal("wf-s0")], 7)
    release.set()
    outcomes = sink.wait_for(6)
    assert len(sink.calls) == 1, "one committed batch must reach its sink in one call"
    assert [token for token, _, _ in outcomes] == [("token", index) for index in range(5)] + ["conflict"]
    for index, (_, stamped, error) in enumerate(outcomes[:5]):
        assert error is None
        assert [(event.workflow_id, event.seq) for event in stamped] == [(f"wf-s{index}", 1)]
    _, stamped, error = outcomes[5]
    assert stamped is None
    assert isinstance(error, SequenceConflictError)
    assert all(store.head(f"wf-s{index}") == 1 for index in range(5))


def test_append_to_outcomes_come_only_once_durable(store: EventStore, recorder: RecorderHandle) -> None:
    sink = RecordingSink()
    heads = dict.fromkeys(range(8), 0)
    for index in heads:
        recorder.append_to(sink, index, f"wf-d{index}", [started(f"wf-d{index}")], 0)
    delivered = 0
    for _ in range(10):
        outcomes = sink.wait_for(delivered + len(heads))[delivered:]
        delivered += len(outcomes)
        for index, stamped, error in outcomes:
            assert error is None
            heads[index] = stamped[-1].seq
            assert store.head(f"wf-d{index}") >= heads[index]  # readable, so committed
        for index, head in heads.items():
            recorder.append_to(sink, index, f"wf-d{index}", [signal(f"wf-d{index}")], head)
    sink.wait_for(delivered + len(heads))


def test_a_raising_sink_does_not_hurt_other_appends(store: EventStore, recorder: RecorderHandle) -> None:
    def broken(batch: list[Any]) -> None:
        raise RuntimeError("sink bug")

    sink = RecordingSink()
    recorder.append_to(broken, 1, "wf-b1", [started("wf-b1")], 0)
    recorder.append_to(sink, 2, "wf-b2", [started("wf-b2")], 0)
    assert sink.wait_for(1)[0][0] == 2
    assert recorder.append("wf-b1", [signal("wf-b1")], 1).get(timeout=10)[0].seq == 2


def test_append_to_a_stopped_recorder_is_refused(store: EventStore) -> None:
    handle = _start(store)
    handle.stop(timeout=10)
    with pytest.raises(RecorderStoppedError):
        handle.append_to(RecordingSink(), 1, "wf-late", [started("wf-late")], 0)
