"""The recorder: the one writer of the event store, committing appends in groups.

Every history write of the engine goes through one :class:`Recorder` actor (invariant 1, *one writer*).
Callers use a :class:`RecorderHandle`, which is thread-safe; each ``append`` returns a ``pykka.Future``
resolved only after the write transaction holding it has committed durably (LMDB ``sync``: fsync), or resolved
with the error that refused that one append (``SequenceConflictError``, ``PayloadError``, ...)::

    handle = start_recorder(store)
    stamped = handle.append("order-1", [WorkflowStarted(...)], expected_head=0).get()
    handle.stop()

Group commit, and why it is built this way
------------------------------------------
An fsync costs far more than writing a few small events, so the recorder commits every append waiting at that
moment in one write transaction and one fsync. Using only public pykka API:

* the handle puts ``(request, future)`` into a ``queue.SimpleQueue`` shared with the actor, and ``tell``s the
  actor a small ``_Flush`` message *only if no flush is already scheduled* (a flag guarded by a lock);
* on a ``_Flush`` the actor clears the flag, then drains the whole queue without blocking into one
  ``EventStore.append_batch`` (capped at ``max_batch`` requests per transaction), commits, and resolves each
  future with its own slot of the result.

While a transaction commits, new appends pile up in the queue and the next flush takes them all: the batch
size adapts to the load with no timer and no added latency when idle. Passing the requests through pykka's
own inbox (one message per append) would also work, but pykka handles one message per ``on_receive`` and
gives an actor no way to peek at its inbox, so it could not batch; the side queue plus a coalesced wake-up
message keeps the actor the single writer and costs one queue put per append. An ``atomic`` batch (continue-
as-new, signal-with-start) is committed in a transaction of its own so that its failure aborts only itself;
order between queued items is kept.

``stop()`` refuses new appends, commits everything already queued, then stops the actor."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pykka

from aion.errors import AionError, RecorderStoppedError
from aion.events import Event
from aion.store import AppendRequest, EventStore

__all__ = ["Recorder", "RecorderHandle", "RecorderStats", "start_recorder"]

#: Most append requests committed in one write transaction.
DEFAULT_MAX_BATCH: Final = 4096

BatchResult = list[list[Event] | AionError]


@dataclass(frozen=True)
class RecorderStats:
    """Counters of a recorder: write transactions committed and what they held."""

    #: Write transactions run (each one fsync).
    batches: int
    #: Append requests handled (an ``append`` is one; an ``append_batch`` counts each of its requests).
    appends: int
    #: Events committed.
    events: int
    #: Requests refused with an error.
    errors: int
    #: The most requests committed in one transaction.
    max_batch: int


@dataclass
class _Item:
    requests: list[AppendRequest]
    atomic: bool
    single: bool
    future: pykka.Future[Any]


class _Flush:
    """Wake-up message: drain the queue."""


class _GetShared:
    """Ask message: hand the shared queue state to a new handle."""


class _Shared:
    """State shared by the actor and its handles."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.flush_scheduled = False
        self.stopped = False
        self.batches = 0
        self.appends = 0
        self.events = 0
        self.errors = 0
        self.max_batch = 0


class Recorder(pykka.ThreadingActor):
    """The single-writer actor. Start it with ``Recorder.start(store)`` and talk to it through a
    :class:`RecorderHandle` (or use :func:`start_recorder`)."""

    def __init__(self, store: EventStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__()
        self._store = store
        self._max_batch = max(1, max_batch)
        self._shared = _Shared()

    def on_receive(self, message: Any) -> Any:
        """Handle a flush (commit whatever is queued) or a handle's request for the shared state."""
        if isinstance(message, _Flush):
            with self._shared.lock:
                self._shared.flush_scheduled = False
            self._drain()
            return None
        if isinstance(message, _GetShared):
            return self._shared
        return super().on_receive(message)

    def on_stop(self) -> None:
        """Refuse new appends and commit what is queued."""
        with self._shared.lock:
            self._shared.stopped = True
        self._drain()

    def _drain(self) -> None:
        shared = self._shared
        while True:
            items: list[_Item] = []
            size = 0
            while size < self._max_batch:
                try:
                    item = shared.queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                size += len(item.requests)
            if not items:
                return
            self._commit(items)

    def _commit(self, items: list[_Item]) -> None:
        """Commit drained items in queue order: runs of non-atomic items share one transaction."""
        start = 0
        while start < len(items):
            if items[start].atomic:
                self._commit_atomic(items[start])
                start += 1
                continue
            end = start
            while end < len(items) and not items[end].atomic:
                end += 1
            self._commit_group(items[start:end])
            start = end

    def _commit_group(self, group: list[_Item]) -> None:
        requests = [request for item in group for request in item.requests]
        try:
            results = self._store.append_batch(requests, atomic=False)
        except BaseException:
            self._fail(group, sys.exc_info())
            return
        self._count(len(requests), results)
        offset = 0
        for item in group:
            count = len(item.requests)
            slots = results[offset : offset + count]
            offset += count
            if item.single:
                slot = slots[0]
                if isinstance(slot, AionError):
                    item.future.set_exception((type(slot), slot, slot.__traceback__))
                else:
                    item.future.set(slot)
            else:
                item.future.set(slots)

    def _commit_atomic(self, item: _Item) -> None:
        try:
            results = self._store.append_batch(item.requests, atomic=True)
        except AionError as error:
            self._shared.batches += 1
            self._shared.appends += len(item.requests)
            self._shared.errors += len(item.requests)
            item.future.set_exception((type(error), error, error.__traceback__))
            return
        except BaseException:
            self._fail([item], sys.exc_info())
            return
        self._count(len(item.requests), results)
        item.future.set(results)

    def _count(self, size: int, results: BatchResult) -> None:
        shared = self._shared
        shared.batches += 1
        shared.appends += size
        shared.max_batch = max(shared.max_batch, size)
        for slot in results:
            if isinstance(slot, AionError):
                shared.errors += 1
            else:
                shared.events += len(slot)

    def _fail(self, items: list[_Item], exc_info: Any) -> None:
        for item in items:
            item.future.set_exception(exc_info)
        self._shared.errors += sum(len(item.requests) for item in items)
        if not isinstance(exc_info[1], Exception):  # KeyboardInterrupt, SystemExit: let the actor die
            raise exc_info[1]


#: Called (on the recorder's thread) once an append is durable: ``(stamped_events, None)``, or ``(None, error)``.
DoneCallback = Callable[[Any, BaseException | None], None]


class _NotifyingFuture(pykka.ThreadingFuture[Any]):
    """A future that also calls back when it is resolved, so an actor can learn of a commit without blocking."""

    def __init__(self, on_done: DoneCallback) -> None:
        super().__init__()
        self._on_done = on_done

    def set(self, value: Any = None) -> None:
        super().set(value)
        self._on_done(value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        self._on_done(None, error if isinstance(error, BaseException) else RuntimeError(str(error)))


class RecorderHandle:
    """Thread-safe access to a running :class:`Recorder`: append, batch, stats, stop."""

    def __init__(self, ref: pykka.ActorRef[Recorder]) -> None:
        self.ref = ref
        shared = ref.ask(_GetShared())
        assert isinstance(shared, _Shared)
        self._shared = shared

    def append(
        self,
        workflow_id: str,
        events: Sequence[Event],
        expected_head: int,
        *,
        on_done: DoneCallback | None = None,
    ) -> pykka.Future[list[Event]]:
        """Queue an append; the future gives the stamped events once they are durable, or raises the error
        that refused them (``SequenceConflictError``, ``PayloadError``, ``InvalidArgumentError``, ...)."""
        return self._submit(
            [AppendRequest(workflow_id, tuple(events), expected_head)], atomic=False, single=True, on_done=on_done
        )

    def append_batch(
        self, requests: Sequence[AppendRequest], atomic: bool = False
    ) -> pykka.Future[list[list[Event] | AionError]]:
        """Queue several appends committed together; the future gives one slot per request (stamped events or
        the error refusing it). With ``atomic`` any refusal aborts them all and the future raises it."""
        return self._submit(list(requests), atomic=atomic, single=False)

    def _submit(
        self,
        requests: list[AppendRequest],
        *,
        atomic: bool,
        single: bool,
        on_done: DoneCallback | None = None,
    ) -> pykka.Future[Any]:
        future: pykka.Future[Any] = pykka.ThreadingFuture() if on_done is None else _NotifyingFuture(on_done)
        shared = self._shared
        with shared.lock:
            if shared.stopped:
                raise RecorderStoppedError("the recorder has stopped")
            shared.queue.put(_Item(requests, atomic, single, future))
            if shared.flush_scheduled:
                return future
            shared.flush_scheduled = True
        try:
            self.ref.tell(_Flush())
        except pykka.ActorDeadError:
            with shared.lock:
                drained = shared.stopped
            if not drained:
                # The actor died without running on_stop: nobody will drain the queue.
                future.set_exception((RecorderStoppedError, RecorderStoppedError("the recorder died"), None))
            # Otherwise it was queued before on_stop marked the recorder stopped: on_stop committed it.
        return future

    def stats(self) -> RecorderStats:
        """A snapshot of the recorder's counters."""
        shared = self._shared
        return RecorderStats(shared.batches, shared.appends, shared.events, shared.errors, shared.max_batch)

    def stop(self, timeout: float | None = None) -> None:
        """Commit every append already queued, then stop the actor. Later appends raise
        ``RecorderStoppedError``. Stopping twice is harmless."""
        self.ref.stop(block=True, timeout=timeout)

    @property
    def is_alive(self) -> bool:
        """True until the recorder has stopped."""
        return bool(self.ref.is_alive())


def start_recorder(store: EventStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> RecorderHandle:
    """Start a :class:`Recorder` on ``store`` and return its handle."""
    return RecorderHandle(Recorder.start(store, max_batch=max_batch))
