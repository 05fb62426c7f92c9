"""The pieces the replay loop is made of, on their own: the deterministic loop's queued callbacks, the pending
work's cancellation watch, the tables by event type, the collector's pause, and the decoder's fast path (a plain
event built from its stored map)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import gc
import inspect
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from aion import events as ev
from aion._codec import decode_event, encode_event, encode_event_body
from aion._gc import collector_paused
from aion.events import EVENT_TYPES
from aion.workflow._activities import ActivityHandle
from aion.workflow._children import ChildHandle
from aion.workflow._commands import ARRIVALS, EventTypeTable, anchor_key, is_arrival
from aion.workflow._loop import DeterministicLoop, ReadyCallback
from aion.workflow._pending import PendingWork
from aion.workflow._runtime import WorkflowRuntime
from aion.workflow._timers import TimerHandle
from tests.event_samples import sample_event


@pytest.mark.timeout(10)
def test_a_cancelled_callback_does_not_run_and_one_that_raises_is_reported() -> None:
    loop = DeterministicLoop(lambda: 0.0)
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("boom")

    skipped = loop.call_soon(ran.append, "skipped")
    loop.call_soon(boom)
    loop.call_soon(ran.append, "after")
    skipped.cancel()
    assert skipped.cancelled()
    loop.run_until_idle()
    assert ran == ["after"]
    [report] = loop.unhandled
    assert isinstance(report["exception"], ValueError)


@pytest.mark.timeout(10)
def test_the_loop_is_the_running_one_inside_running_and_inside_each_pass() -> None:
    loop = DeterministicLoop(lambda: 0.0)
    seen: list[bool] = []
    loop.call_soon(lambda: seen.append(asyncio.get_running_loop() is loop))
    loop.run_until_idle()
    assert asyncio.events._get_running_loop() is None
    with loop.running():
        assert loop.is_running() and asyncio.get_running_loop() is loop
        loop.call_soon(lambda: seen.append(asyncio.get_running_loop() is loop))
        loop.run_until_idle()
        assert loop.is_running()
    assert not loop.is_running() and asyncio.events._get_running_loop() is None
    assert seen == [True, True]


class _CountingLoop(DeterministicLoop):
    """The deterministic loop, keeping every callback queued on it."""

    def __init__(self) -> None:
        super().__init__(lambda: 0.0)
        self.queued: list[Callable[..., object]] = []

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: contextvars.Context | None = None
    ) -> ReadyCallback:
        self.queued.append(callback)
        return super().call_soon(callback, *args, context=context)


@pytest.mark.timeout(10)
def test_an_outcome_takes_its_cancel_watch_off_and_a_cancel_reaches_on_cancel_once() -> None:
    loop = _CountingLoop()  # type: ignore[abstract]
    told: list[Callable[[], None]] = []
    work = PendingWork(loop.create_future, told.append)

    def cancel_first() -> None: ...

    def cancel_second() -> None: ...

    first = work.pending(work.activities, 1, cancel_first)
    second = work.pending(work.activities, 2, cancel_second)
    work.settle(work.activities, 1, "result")
    assert first.result() == "result"
    assert loop.queued == []  # nothing awaited it: its outcome is not a step of the loop
    second.cancel()
    loop.run_until_idle()
    assert told == [cancel_second]
    work.resolve(work.activities, 2, error=ValueError("late"))  # an outcome after the cancel is ignored
    assert second.cancelled()
    assert told == [cancel_second]
    # Neither future is kept once its outcome is known.
    kept = [weakref.ref(first), weakref.ref(second)]
    del first, second
    gc.collect()
    assert [ref() for ref in kept] == [None, None]


@pytest.mark.timeout(10)
def test_a_type_table_answers_a_subclass_by_its_nearest_listed_base() -> None:
    class Base:
        pass

    class Child(Base):
        pass

    class Other:
        pass

    table = EventTypeTable({Base: "base"}, "none")
    assert (table[Base], table[Child], table[Other]) == ("base", "base", "none")
    assert Child in table  # kept for the next lookup


@pytest.mark.timeout(10)
def test_every_event_type_is_classified_as_before() -> None:
    arrivals = {
        "ActivityCompleted", "ActivityCancelled", "TimerFired", "SignalReceived", "ChildWorkflowCompleted",
        "ChildWorkflowFailed", "ChildWorkflowCancelled", "SignalExternalDelivered", "WorkflowCancelRequested",
        "UpdateAccepted",
    }  # fmt: skip
    for name, cls in EVENT_TYPES.items():
        event = sample_event(cls)
        if name == "ActivityFailed":
            assert not is_arrival(event)  # the sample has a retry due
            assert is_arrival(dataclasses.replace(event, next_attempt_at=None))  # type: ignore[type-var]
        else:
            assert is_arrival(event) == (name in arrivals), name
    scheduled = sample_event(ev.ActivityScheduled)
    assert isinstance(scheduled, ev.ActivityScheduled)
    assert anchor_key(scheduled) == ("activity", scheduled.activity_id)
    assert anchor_key(dataclasses.replace(sample_event(ev.SearchAttributesUpserted), upsert_id=0)) is None
    assert anchor_key(sample_event(ev.ActivityCompleted)) is None


@pytest.mark.timeout(10)
def test_the_collector_is_paused_in_the_block_and_left_as_it_was() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves it to the outer one
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_a_decoded_event_is_the_one_init_builds_and_encodes_to_the_same_bytes(name: str) -> None:
    event = sample_event(EVENT_TYPES[name])
    decoded = decode_event(encode_event(event))
    assert decoded == event
    fields: dict[str, Any] = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    assert list(vars(decoded)) == list(fields)  # field order, as __init__ sets them
    assert encode_event_body(decoded) == encode_event_body(event)


def test_every_arrival_type_has_a_handler_in_the_runtime_and_only_those() -> None:
    """``ARRIVALS`` (which events are delivered to a workflow) and the runtime's handlers list the same types."""
    types = set(EVENT_TYPES.values())  # the tables also keep what they answered for other classes: not those
    arrivals = {kind for kind, arrival in dict(ARRIVALS).items() if arrival is not False and kind in types}
    handlers = dict(WorkflowRuntime._ARRIVAL_HANDLERS)
    assert arrivals == {kind for kind, handler in handlers.items() if handler is not None and kind in types}


@pytest.mark.timeout(10)
def test_the_handles_workflow_code_awaits_are_awaitables_that_asyncio_does_not_take_for_futures() -> None:
    loop = DeterministicLoop(lambda: 0.0)
    future = loop.create_future()
    for handle in (ActivityHandle(1, future), ChildHandle(1, "child", future), TimerHandle(1, future)):
        assert inspect.isawaitable(handle)
        assert not asyncio.isfuture(handle)
