"""The recorder's handle: the thread-safe API of appends, batches, stats and stop, and the recorder's start.

It owns queueing an append (its bodies encoded here, in the appending thread) and waking the actor at most once
per flush. It never writes to the store and never resolves a future: the actor does both.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pykka

from aion._codec import encode_event_body
from aion._futures import OneShotFuture
from aion.errors import AionError, RecorderStoppedError
from aion.events import Event
from aion.recorder._actor import CommitObserver, Recorder
from aion.recorder._shared import (
    DEFAULT_HOLD,
    DEFAULT_MAX_BATCH,
    CommitSink,
    Flush,
    GetShared,
    Item,
    RecorderStats,
    Shared,
    set_exception,
)
from aion.store import AppendRequest, EventStore

_new_object = object.__new__


class RecorderHandle:
    """Thread-safe access to a running :class:`Recorder`: append, batch, stats, stop."""

    def __init__(self, ref: pykka.ActorRef[Recorder]) -> None:
        self.ref = ref
        shared = ref.ask(GetShared())
        assert isinstance(shared, Shared)
        self._shared = shared

    def append(
        self,
        workflow_id: str,
        events: Sequence[Event],
        expected_head: int,
    ) -> pykka.Future[list[Event]]:
        """Queue an append; the future gives the stamped events once they are durable, or raises the error
        that refused them (``SequenceConflictError``, ``PayloadError``, ``InvalidArgumentError``, ...)."""
        return self._submit([_new_request(workflow_id, events, expected_head)], atomic=False, single=True)

    def append_to(
        self,
        sink: CommitSink,
        token: Any,
        workflow_id: str,
        events: Sequence[Event],
        expected_head: int,
        *,
        companion: AppendRequest | None = None,
        deferrable: bool = False,
    ) -> None:
        """Queue an append whose outcome goes to ``sink`` as ``(token, stamped_events, error)`` once durable (or
        refused): the way for an actor, which must not block, to append. Every outcome of one committed batch
        reaches a sink in one call, so an actor appending for many workflows gets one message per commit, not
        one per append. Raises ``RecorderStoppedError`` at once if the recorder has stopped::

            handle.append_to(outcomes.extend, "order-1", "order-1", [signal], expected_head=4)

        A ``companion`` request (a schedule's fire, ``aion.store.ScheduleAppend``) is committed atomically with
        the append, in a transaction of their own: both or neither. The outcome reported is the append's.

        ``deferrable``: no caller waits on this append, so while prompt appends (the others) come in a steady
        stream it may wait for the next one, up to the recorder's ``hold``, to share its transaction (see
        "Holding deferrable appends" in ``aion.recorder``).
        """
        request = _new_request(workflow_id, events, expected_head)
        if companion is None:
            self._queue(([request], False, True, (sink, token)), prompt=not deferrable)
        else:
            self._queue(([request, _with_bodies(companion)], True, True, (sink, token)), prompt=not deferrable)

    def append_batch(
        self, requests: Sequence[AppendRequest], atomic: bool = False
    ) -> pykka.Future[list[list[Event] | AionError]]:
        """Queue several appends committed together; the future gives one slot per request (stamped events or
        the error refusing it). With ``atomic`` any refusal aborts them all and the future raises it."""
        return self._submit([_with_bodies(request) for request in requests], atomic=atomic, single=False)

    def _submit(
        self,
        requests: list[AppendRequest],
        *,
        atomic: bool,
        single: bool,
    ) -> pykka.Future[Any]:
        future = OneShotFuture()
        self._queue((requests, atomic, single, future))
        return future

    def _queue(self, item: Item, *, prompt: bool = True) -> None:
        shared = self._shared
        lock = shared.lock
        lock.acquire()  # not ``with``: acquire and release cost a third less, once per append
        try:
            if shared.stopped:
                raise RecorderStoppedError("the recorder has stopped")
            shared.queue.put(item)
            if prompt:
                shared.prompt_queued(time.monotonic())
            if shared.flush_scheduled:
                return
            shared.flush_scheduled = True
        finally:
            lock.release()
        try:
            self.ref.tell(Flush())
        except pykka.ActorDeadError:
            with shared.lock:
                drained = shared.stopped
            if not drained:
                # The actor died without running on_stop: nobody will drain the queue.
                set_exception(item[3], (RecorderStoppedError, RecorderStoppedError("the recorder died"), None))
            # Otherwise it was queued before on_stop marked the recorder stopped: on_stop committed it.

    @contextmanager
    def together(self) -> Iterator[None]:
        """Wake the recorder only when the block ends, so that the appends queued inside it (a burst of schedule
        fires) go into one transaction (up to ``max_batch`` requests)::

            with handle.together():
                for request in burst:
                    handle.append_to(sink, request.token, ...)

        It holds the recorder's wake-up flag for the block: appends of other threads meanwhile wait for its end
        too (they join the same transaction). If a wake-up is already on its way when the block starts, the
        recorder may take part of the block early; nothing is ever left queued."""
        shared = self._shared
        with shared.lock:
            held = not shared.flush_scheduled and not shared.stopped
            if held:
                shared.flush_scheduled = True
        try:
            yield
        finally:
            if held:
                try:
                    self.ref.tell(Flush())
                except pykka.ActorDeadError:
                    self._fail_queued()

    def _fail_queued(self) -> None:
        """The actor is gone: if it died without running on_stop, nobody will drain the queue, so fail what is
        in it (if it stopped, on_stop committed what was queued before)."""
        shared = self._shared
        with shared.lock:
            if shared.stopped:
                return
            shared.stopped = True
        died = RecorderStoppedError("the recorder died")
        while True:
            try:
                item = shared.queue.get_nowait()
            except queue.Empty:
                return
            set_exception(item[3], (RecorderStoppedError, died, None))

    def expedite(self) -> None:
        """End a hold now: the deferrable appends queued commit at once (someone started waiting for one)."""
        self._shared.prompt.set()

    def stats(self) -> RecorderStats:
        """A snapshot of the recorder's counters."""
        shared = self._shared
        return RecorderStats(
            shared.batches, shared.appends, shared.events, shared.errors, shared.max_batch, shared.holds
        )

    def stop(self, timeout: float | None = None) -> None:
        """Commit every append already queued, then stop the actor. Later appends raise
        ``RecorderStoppedError``. Stopping twice is harmless."""
        self.expedite()  # a hold ends now: the stop is behind it
        self.ref.stop(block=True, timeout=timeout)

    @property
    def is_alive(self) -> bool:
        """True until the recorder has stopped."""
        return bool(self.ref.is_alive())


def _new_request(workflow_id: str, events: Sequence[Event], expected_head: int) -> AppendRequest:
    """``AppendRequest(workflow_id, tuple(events), expected_head, bodies)``, the bodies encoded here, in the
    appending thread (see ``AppendRequest.bodies``). An event that does not encode gets ``None``: the store then
    refuses it with the same error, at the same point, as without this. Built without the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` a field): this runs once per append."""
    events = tuple(events)
    bodies: list[bytes | None] = []
    for event in events:
        try:
            bodies.append(encode_event_body(event))
        except Exception:
            bodies.append(None)
    request = _new_object(AppendRequest)
    fields = request.__dict__
    fields["workflow_id"] = workflow_id
    fields["events"] = events
    fields["expected_head"] = expected_head
    fields["bodies"] = bodies
    return request


def _with_bodies(request: AppendRequest) -> AppendRequest:
    if type(request) is not AppendRequest or request.bodies is not None or type(request.events) not in (list, tuple):
        return request  # the store validates (and refuses) anything odd itself
    return _new_request(request.workflow_id, request.events, request.expected_head)


def start_recorder(
    store: EventStore,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    on_commit: CommitObserver | None = None,
    hold: float = DEFAULT_HOLD,
) -> RecorderHandle:
    """Start a :class:`Recorder` on ``store`` and return its handle (``on_commit``: a clock and a function told
    each committed transaction's duration and size, for metrics; ``hold``: the longest a deferrable append waits
    for a prompt one, 0 for never)."""
    return RecorderHandle(Recorder.start(store, max_batch=max_batch, on_commit=on_commit, hold=hold))
