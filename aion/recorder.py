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

Resolving after the next write
------------------------------
The recorder's thread holds the GIL for its Python work, and py-lmdb releases it around *every* call (each
``put``, the ``begin`` and the ``commit``). If the futures of a batch were resolved right after its commit, the
woken writers would be runnable while the actor writes the next batch, and each of its ``put`` calls would hand
the GIL to one of them and wait for it back: a context switch or two per put. So the futures of a committed batch
are resolved from the store's ``before_commit`` hook of the *next* batch, after its writes and just before its
commit: the writers then run while the actor waits on the fsync, and they are asleep while it writes. This only
delays the acknowledgement by the next batch's write phase, never before durability: a batch's futures are
resolved after its own commit returned. When the queue is empty they are resolved at once.

Two more costs are kept off the actor's critical path: each ``append`` encodes its events' bodies (all but
``seq`` and ``recorded_at``, see ``aion._codec.encode_event_body``) in the appending thread, and the futures are
:class:`_AppendFuture` (a flag, and a plain lock only if someone waits) instead of ``pykka.ThreadingFuture`` (a
``threading.Condition`` each).

An actor must not block on a future: it appends with ``append_to(sink, token, ...)`` instead, and the recorder
hands the sink the outcomes of that actor's appends, one call per committed batch (the engine core turns that
call into one message to itself). Sinks run on the recorder's thread, possibly inside the store's write
transaction: they must be quick and must not write to the store; one that raises is logged.

``stop()`` refuses new appends, commits everything already queued, then stops the actor."""

from __future__ import annotations

import inspect
import logging
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pykka

from aion._codec import encode_event_body
from aion.errors import AionError, RecorderStoppedError
from aion.events import Event
from aion.store import AppendRequest, EventStore
from supervisors import SimpleInbox

__all__ = ["CommitSink", "Committed", "Recorder", "RecorderHandle", "RecorderStats", "start_recorder"]

_log = logging.getLogger(__name__)
_new_object = object.__new__

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


#: Where the outcome of a queued append goes: its future, or ``(sink, token)`` for an ``append_to`` (outcomes
#: of committed batches are gathered per sink by ``_Pending``; one that fails outside a commit is delivered alone).
_Target = pykka.Future[Any] | tuple["CommitSink", Any]
#: One queued ``append``, ``append_to`` (both ``single``: one request, one outcome) or ``append_batch``:
#: ``(requests, atomic, single, target)``. A tuple rather than a class because one is built per append.
_Item = tuple[list[AppendRequest], bool, bool, _Target]


def _set_exception(target: _Target, exc_info: Any) -> None:
    """Resolve ``target`` with an error that refused its append outside a commit."""
    if isinstance(target, tuple):
        sink, token = target
        _deliver(sink, [(token, None, exc_info[1])])
    else:
        target.set_exception(exc_info)


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


class _Pending:
    """Outcomes of committed appends not yet handed to their futures (see "Resolving after the next write")."""

    __slots__ = ("deliveries", "outcomes")

    def __init__(self) -> None:
        self.outcomes: list[tuple[pykka.Future[Any], Any, Any]] = []
        #: Outcomes of ``append_to`` appends, gathered per sink.
        self.deliveries: dict[CommitSink, list[Committed]] = {}

    def add(self, target: _Target, value: Any, exc_info: Any) -> None:
        """Hold the outcome of one append: ``value`` or, when ``exc_info`` is given, that error."""
        if not isinstance(target, tuple):
            self.outcomes.append((target, value, exc_info))
            return
        sink, token = target
        committed = (token, value, None) if exc_info is None else (token, None, exc_info[1])
        batch = self.deliveries.get(sink)
        if batch is None:
            self.deliveries[sink] = [committed]
        else:
            batch.append(committed)

    def add_results(self, group: list[_Item], results: list[list[Event] | AionError]) -> tuple[int, int]:
        """Hold the outcomes of a committed group (``results`` has one slot per request, in queue order); return
        how many events it committed and how many requests were refused."""
        events = errors = offset = 0
        committed: Committed
        outcomes = self.outcomes
        deliveries = self.deliveries
        for requests, _, single, target in group:
            if not single:
                count = len(requests)
                slots = results[offset : offset + count]
                offset += count
                for slot in slots:
                    if isinstance(slot, AionError):
                        errors += 1
                    else:
                        events += len(slot)
                self.add(target, slots, None)
                continue
            slot = results[offset]
            offset += 1
            # What self.add does, inlined: this runs once per append.
            if isinstance(slot, AionError):
                errors += 1
                if not isinstance(target, tuple):
                    outcomes.append((target, None, (type(slot), slot, slot.__traceback__)))
                    continue
                committed = (target[1], None, slot)
            else:
                events += len(slot)
                if not isinstance(target, tuple):
                    outcomes.append((target, slot, None))
                    continue
                committed = (target[1], slot, None)
            batch = deliveries.get(target[0])
            if batch is None:
                deliveries[target[0]] = [committed]
            else:
                batch.append(committed)
        return events, errors

    def resolve(self) -> None:
        """Resolve every waiting future: ``(future, value, None)`` sets a value, ``(future, None, exc_info)`` an
        error; the outcomes of ``append_to`` go to each sink in one call, in queue order. A sink that raises is
        logged, not propagated (this may run inside the store's write transaction, which a sink's bug must not
        abort)."""
        outcomes = self.outcomes
        if outcomes:
            self.outcomes = []
        deliveries = self.deliveries
        if deliveries:
            self.deliveries = {}
        for future, value, exc_info in outcomes:
            try:
                if exc_info is None:
                    future.set(value)
                else:
                    future.set_exception(exc_info)
            except Exception:
                _log.exception("resolving a recorder future failed")
        for sink, batch in deliveries.items():
            _deliver(sink, batch)


class Recorder(SimpleInbox, pykka.ThreadingActor):
    """The single-writer actor. Start it with ``Recorder.start(store)`` and talk to it through a
    :class:`RecorderHandle` (or use :func:`start_recorder`)."""

    def __init__(self, store: EventStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__()
        self._store = store
        self._max_batch = max(1, max_batch)
        self._shared = _Shared()
        self._pending = _Pending()
        # Stores that can run a hook between writing a batch and committing it get the resolution of the
        # previous batch's futures there (LmdbEventStore, MemoryEventStore); any other store is just called.
        self._hook: dict[str, Any] = {}
        try:
            if "before_commit" in inspect.signature(store.append_batch).parameters:
                self._hook = {"before_commit": self._pending.resolve}
        except (TypeError, ValueError):
            pass

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
        get = self._shared.queue.get_nowait
        max_batch = self._max_batch
        try:
            while True:
                items: list[_Item] = []
                size = 0
                atomic = False
                while size < max_batch:
                    try:
                        item = get()
                    except queue.Empty:
                        break
                    items.append(item)
                    size += len(item[0])
                    atomic = atomic or item[1]
                if not items:
                    return
                if atomic:
                    self._commit(items)
                else:
                    self._commit_group(items)  # what _commit does with no atomic item, without the scan
        finally:
            self._pending.resolve()  # the queue is empty: nothing left to overlap with

    def _commit(self, items: list[_Item]) -> None:
        """Commit drained items in queue order: runs of non-atomic items share one transaction."""
        start = 0
        while start < len(items):
            if items[start][1]:  # atomic
                self._commit_atomic(items[start])
                start += 1
                continue
            end = start
            while end < len(items) and not items[end][1]:
                end += 1
            self._commit_group(items[start:end] if start or end < len(items) else items)
            start = end

    def _commit_group(self, group: list[_Item]) -> None:
        requests = [request for item in group for request in item[0]]
        pending = self._pending
        try:
            results = self._store.append_batch(requests, atomic=False, **self._hook)
        except BaseException:
            pending.resolve()
            self._fail(group, sys.exc_info())
            return
        pending.resolve()  # if the store had no hook to do it before its commit
        shared = self._shared
        shared.batches += 1
        shared.appends += len(requests)
        shared.max_batch = max(shared.max_batch, len(requests))
        events, errors = pending.add_results(group, results)
        shared.events += events
        shared.errors += errors

    def _commit_atomic(self, item: _Item) -> None:
        requests, _, _, target = item
        pending = self._pending
        shared = self._shared
        try:
            results = self._store.append_batch(requests, atomic=True, **self._hook)
        except AionError as error:
            pending.resolve()
            shared.batches += 1
            shared.appends += len(requests)
            shared.errors += len(requests)
            pending.add(target, None, (type(error), error, error.__traceback__))
            return
        except BaseException:
            pending.resolve()
            self._fail([item], sys.exc_info())
            return
        pending.resolve()
        shared.batches += 1
        shared.appends += len(requests)
        shared.max_batch = max(shared.max_batch, len(requests))
        for slot in results:
            if isinstance(slot, AionError):
                shared.errors += 1
            else:
                shared.events += len(slot)
        pending.add(target, results, None)

    def _fail(self, items: list[_Item], exc_info: Any) -> None:
        for _, _, _, target in items:
            _set_exception(target, exc_info)
        self._shared.errors += sum(len(item[0]) for item in items)
        if not isinstance(exc_info[1], Exception):  # KeyboardInterrupt, SystemExit: let the actor die
            raise exc_info[1]


#: The outcome of one ``append_to``: ``(token, stamped_events, None)`` once durable, or ``(token, None, error)``.
Committed = tuple[Any, list[Event] | None, BaseException | None]

#: Receives the outcomes of ``append_to`` appends, on the recorder's thread: every outcome of one committed
#: batch in one call, in queue order. It must be quick and must not write to the store.
CommitSink = Callable[[list[Committed]], None]


def _deliver(sink: CommitSink, batch: list[Committed]) -> None:
    try:
        sink(batch)
    except Exception:
        _log.exception("a recorder commit sink failed")


#: Guards the creation of an :class:`_AppendFuture`'s wait lock against its resolution (held for a few
#: instructions; futures whose result nobody waits for never take it to wait).
_WAIT_LOCKS = threading.Lock()


class _AppendFuture(pykka.Future[Any]):
    """A one-shot ``pykka.Future`` resolved by the recorder, as cheap as can be on both sides.

    ``pykka.ThreadingFuture`` builds a ``threading.Condition`` per future and wakes its waiter through it; here
    a plain lock is the only wait, and it is created only when ``get`` has to wait (a writer that checks a
    future only after it is resolved never creates one). With a hundred writers
    these costs sit on the recorder's critical path. Behaves like ``ThreadingFuture`` (``get`` with a timeout
    raises ``pykka.Timeout``, a second ``set`` raises ``queue.Full``, get hooks and ``await`` work)."""

    _get_hook = None  # pykka's __init__ is only run for a get hook (see set_get_hook)

    def __init__(self) -> None:  # no pykka.Future.__init__: see _get_hook
        self._ready: threading.Lock | None = None
        self._value: Any = None
        self._exc_info: Any = None
        self._done = False

    def get(self, *, timeout: float | None = None) -> Any:
        """The stamped events (or batch slots) once durable; raises the refusing error, or ``pykka.Timeout``."""
        if not self._done:
            if self._get_hook is not None:
                return super().get(timeout=timeout)
            with _WAIT_LOCKS:
                ready = self._ready
                if ready is None and not self._done:
                    ready = self._ready = threading.Lock()
                    ready.acquire()
            if ready is not None:
                if not ready.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
                    raise pykka.Timeout(f"{timeout} seconds")
                ready.release()  # let any other waiter through too
        exc_info = self._exc_info
        if exc_info is not None:
            exc_type, exc_value, exc_traceback = exc_info
            if exc_value is None:
                exc_value = exc_type()
            if exc_value.__traceback__ is not exc_traceback:
                raise exc_value.with_traceback(exc_traceback)
            raise exc_value
        return self._value

    def _resolve(self) -> None:
        with _WAIT_LOCKS:
            self._done = True
            ready = self._ready
        if ready is not None:
            ready.release()

    def set(self, value: Any = None) -> None:
        """Resolve with ``value``."""
        if self._done or self._get_hook is not None:
            raise queue.Full
        self._value = value
        self._resolve()

    def set_exception(self, exc_info: Any = None) -> None:
        """Resolve with an error: an ``exc_info`` triple (``sys.exc_info()`` when omitted)."""
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._done or self._get_hook is not None:
            raise queue.Full
        self._exc_info = exc_info
        self._resolve()

    def set_get_hook(self, func: Any) -> None:
        """See ``pykka.Future.set_get_hook``."""
        if self._done:
            raise queue.Full
        pykka.Future.__init__(self)
        super().set_get_hook(func)


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
    ) -> pykka.Future[list[Event]]:
        """Queue an append; the future gives the stamped events once they are durable, or raises the error
        that refused them (``SequenceConflictError``, ``PayloadError``, ``InvalidArgumentError``, ...)."""
        return self._submit([_new_request(workflow_id, events, expected_head)], atomic=False, single=True)

    def append_to(
        self, sink: CommitSink, token: Any, workflow_id: str, events: Sequence[Event], expected_head: int
    ) -> None:
        """Queue an append whose outcome goes to ``sink`` as ``(token, stamped_events, error)`` once durable (or
        refused): the way for an actor, which must not block, to append. Every outcome of one committed batch
        reaches a sink in one call, so an actor appending for many workflows gets one message per commit, not
        one per append. Raises ``RecorderStoppedError`` at once if the recorder has stopped::

            handle.append_to(outcomes.extend, "order-1", "order-1", [signal], expected_head=4)
        """
        self._queue(([_new_request(workflow_id, events, expected_head)], False, True, (sink, token)))

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
        future = _AppendFuture()
        self._queue((requests, atomic, single, future))
        return future

    def _queue(self, item: _Item) -> None:
        shared = self._shared
        lock = shared.lock
        lock.acquire()  # not ``with``: acquire and release cost a third less, once per append
        try:
            if shared.stopped:
                raise RecorderStoppedError("the recorder has stopped")
            shared.queue.put(item)
            if shared.flush_scheduled:
                return
            shared.flush_scheduled = True
        finally:
            lock.release()
        try:
            self.ref.tell(_Flush())
        except pykka.ActorDeadError:
            with shared.lock:
                drained = shared.stopped
            if not drained:
                # The actor died without running on_stop: nobody will drain the queue.
                _set_exception(item[3], (RecorderStoppedError, RecorderStoppedError("the recorder died"), None))
            # Otherwise it was queued before on_stop marked the recorder stopped: on_stop committed it.

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


def start_recorder(store: EventStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> RecorderHandle:
    """Start a :class:`Recorder` on ``store`` and return its handle."""
    return RecorderHandle(Recorder.start(store, max_batch=max_batch))
