"""The append pipeline answers a caller waiting for a durable append from the commit sink, on the recorder's
thread, without waiting for the core to handle the batch's ``AppendsCommitted``; a failed append is still
answered by the core (``settle``), which also decides whether the run is rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from aion import events as ev
from aion.engine._appends import AppendPipeline, AppendToken
from aion.engine._closures import Closures
from aion.engine._messages import AppendsCommitted
from aion.engine._runs import Run, RunState
from aion.errors import SequenceConflictError
from aion.observability._observer import Observer
from aion.recorder import RecorderHandle, start_recorder
from aion.store import EventStore
from tests.helpers import wait_until
from tests.store._helpers import signal, started


@pytest.fixture
def recorder(store: EventStore) -> Iterator[RecorderHandle]:
    handle = start_recorder(store)
    yield handle
    handle.stop()


def _run(workflow_id: str, head: int = 0) -> Run:
    return Run(RunState(workflow_id, f"run-{workflow_id}", "flow", head=head))


def _pipeline(recorder: RecorderHandle, closures: Closures) -> tuple[AppendPipeline, list[AppendsCommitted]]:
    """A pipeline whose core only keeps what it is told: nothing settles an append unless the test does."""
    told: list[AppendsCommitted] = []
    return AppendPipeline(recorder, closures, told.append, Observer()), told


@pytest.mark.timeout(30)
def test_a_durable_appends_caller_is_answered_before_the_core_handles_the_commit(
    store: EventStore, recorder: RecorderHandle
) -> None:
    pipeline, told = _pipeline(recorder, Closures())
    run = _run("w")
    reply: pykka.Future[Any] = pykka.ThreadingFuture()
    pipeline.append(run, [started("w")], reply=reply)
    stamped = reply.get(timeout=10)  # the core has not settled anything
    assert [type(event) for event in stamped] == [ev.WorkflowStarted] and stamped[0].seq == 1
    assert [event.seq for event in store.read_history("w")] == [1]  # durable before the caller heard of it
    # The core was told first: whatever the caller asks it next is queued after this commit.
    assert len(told) == 1
    [(token, told_stamped, error)] = told[0].outcomes
    assert isinstance(token, AppendToken) and token.run is run and told_stamped is stamped and error is None
    # Settling in the core then runs the append's ``then`` and does not answer the caller a second time.
    seen: list[list[ev.Event]] = []
    token = AppendToken(run, seen.append, reply, False, run.generation)
    assert pipeline.settle(token, stamped, None)
    assert seen == [stamped] and reply.get(timeout=0) is stamped


@pytest.mark.timeout(30)
def test_a_failed_append_is_answered_by_the_core_not_by_the_sink(store: EventStore, recorder: RecorderHandle) -> None:
    store.append("w", [started("w")], 0)
    pipeline, told = _pipeline(recorder, Closures())
    run = _run("w", head=0)  # wrong head: the store is at 1
    reply: pykka.Future[Any] = pykka.ThreadingFuture()
    pipeline.append(run, [signal("w", 1)], reply=reply)
    wait_until(lambda: len(told) == 1, timeout=10)
    with pytest.raises(pykka.Timeout):
        reply.get(timeout=0.05)  # the sink leaves a failure to the core
    [(token, stamped, error)] = told[0].outcomes
    assert stamped is None and isinstance(error, SequenceConflictError)
    assert not pipeline.settle(token, stamped, error)
    with pytest.raises(SequenceConflictError):
        reply.get(timeout=0)
    assert [event.seq for event in store.read_history("w")] == [1]  # nothing recorded by the refused append


@pytest.mark.timeout(30)
def test_a_closing_appends_caller_is_answered_after_the_run_is_closed_for_result_waiters(
    store: EventStore, recorder: RecorderHandle
) -> None:
    # A result() right after terminate() returned must find the run closed, not wait for a hand-over.
    closures = Closures()
    pipeline, _ = _pipeline(recorder, closures)
    store.append("w", [started("w")], 0)
    run = _run("w", head=1)
    closures.opened("w", run.run_id)
    reply: pykka.Future[Any] = pykka.ThreadingFuture()
    answered_at_close: list[bool] = []

    def on_close(workflow_id: str, terminal: ev.Event) -> None:
        try:
            reply.get(timeout=0)
            answered_at_close.append(True)
        except pykka.Timeout:
            answered_at_close.append(False)

    closures.listen(on_close)
    pipeline.append(run, [ev.WorkflowCompleted(workflow_id="w", result=5)], reply=reply)
    reply.get(timeout=10)
    assert answered_at_close == [False]
    with closures.watch("w", run.run_id) as waiter:
        assert not waiter.open  # closed: the waiter is handed the result or reads the store
        assert isinstance(waiter.terminal, ev.WorkflowCompleted) and waiter.terminal.result == 5


def _held_stream(store: EventStore) -> RecorderHandle:
    """A recorder holding deferrable appends for a minute, with prompt appends already coming in a stream."""
    recorder = start_recorder(store, hold=60.0)
    for workflow_id in ("caller-1", "caller-2"):
        recorder.append(workflow_id, [started(workflow_id)], 0).get(timeout=10)
    return recorder


@pytest.mark.timeout(30)
def test_a_deferrable_closing_append_is_prompt_when_its_result_is_awaited(store: EventStore) -> None:
    recorder = _held_stream(store)
    try:
        closures = Closures()
        pipeline, told = _pipeline(recorder, closures)
        store.append("w", [started("w")], 0)
        run = _run("w", head=1)
        closures.opened("w", run.run_id)
        with closures.watch("w", run.run_id):
            pipeline.append(run, [ev.WorkflowCompleted(workflow_id="w", result=5)], deferrable=True)
            wait_until(lambda: len(told) == 1, timeout=10)  # not held a minute
        assert recorder.stats().holds == 0
    finally:
        recorder.stop(timeout=10)


@pytest.mark.timeout(30)
def test_a_result_waiter_arriving_ends_the_hold_of_a_closing_append(store: EventStore) -> None:
    recorder = _held_stream(store)
    try:
        closures = Closures()
        closures.on_wait = recorder.expedite  # as the engine core wires them
        pipeline, told = _pipeline(recorder, closures)
        store.append("w", [started("w")], 0)
        run = _run("w", head=1)
        closures.opened("w", run.run_id)
        pipeline.append(run, [ev.WorkflowCompleted(workflow_id="w", result=5)], deferrable=True)
        wait_until(lambda: recorder.stats().holds == 1, timeout=10)
        assert told == []  # held: nobody waits for it yet
        with closures.watch("w", run.run_id) as waiter:
            assert waiter.wait(timeout=10)  # handed over once durable, well before the hold's minute
            assert isinstance(waiter.terminal, ev.WorkflowCompleted) and waiter.terminal.result == 5
        assert len(told) == 1
    finally:
        recorder.stop(timeout=10)
