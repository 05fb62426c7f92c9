"""The recorder's actor: the one writer of the event store and its group-commit loop.

It owns draining the shared queue into ``EventStore.append_batch`` calls (one transaction per drain of up to
``max_batch`` requests, atomic items in it as atomic groups; on a store without groups, one transaction per run of
non-atomic items and one per atomic item), the counters, and resolving each batch's futures after the next batch's
writes (see ``aion.recorder``). It never blocks on a caller, never encodes events (the handles do, in the
appending thread) and never lets a commit sink's failure abort a write transaction.
"""

from __future__ import annotations

import inspect
import queue
import sys
import time
from collections.abc import Callable, Collection
from typing import Any

import pykka

from aion.errors import AionError
from aion.events import Event
from aion.recorder._shared import (
    DEFAULT_HOLD,
    DEFAULT_MAX_BATCH,
    CommitSink,
    Committed,
    Flush,
    GetShared,
    Item,
    Shared,
    Target,
    deliver,
    log,
    set_exception,
)
from aion.store import EventStore
from supervisors import SimpleInbox

#: Prompt appends make a steady stream while their smoothed gap, and the time since the last one, are below this
#: many holds. A held step waits for the next prompt append, so a run's steps advance at most once per prompt
#: append while they are held: with a wider window, a caller starting a run every 4-5 ms (and a 2 ms hold) had
#: each run's latency doubled for a third fewer transactions (see "Holding deferrable appends" in the package).
STREAM_WINDOW = 1.5

#: What a recorder tells of each committed transaction: ``(monotonic clock, observe(seconds, requests))``.
CommitObserver = tuple[Callable[[], float], Callable[[float, int], None]]


class Pending:
    """Outcomes of committed appends not yet handed to their futures (see "Resolving after the next write")."""

    __slots__ = ("deliveries", "outcomes")

    def __init__(self) -> None:
        self.outcomes: list[tuple[pykka.Future[Any], Any, Any]] = []
        #: Outcomes of ``append_to`` appends, gathered per sink.
        self.deliveries: dict[CommitSink, list[Committed]] = {}

    def add(self, target: Target, value: Any, exc_info: Any) -> None:
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

    def add_results(self, group: list[Item], results: list[list[Event] | AionError]) -> tuple[int, int]:
        """Hold the outcomes of a committed group (``results`` has one slot per request, in queue order); return
        how many events it committed and how many requests were refused."""
        events = errors = offset = 0
        committed: Committed
        outcomes = self.outcomes
        deliveries = self.deliveries
        for requests, atomic, single, target in group:
            if atomic:  # an atomic group: all its slots succeeded, or all hold the error that refused it
                count = len(requests)
                slots = results[offset : offset + count]
                offset += count
                refusal = next((slot for slot in slots if isinstance(slot, AionError)), None)
                if refusal is not None:
                    errors += count
                    self.add(target, None, (type(refusal), refusal, refusal.__traceback__))
                    continue
                for slot in slots:
                    events += len(slot)  # type: ignore[arg-type]
                # A single append with a companion (``append_to(..., companion=...)``) reports the append's outcome.
                self.add(target, slots[0] if single else slots, None)
                continue
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
                log.exception("resolving a recorder future failed")
        for sink, batch in deliveries.items():
            deliver(sink, batch)


class Recorder(SimpleInbox, pykka.ThreadingActor):
    """The single-writer actor. Start it with ``Recorder.start(store)`` and talk to it through a
    :class:`RecorderHandle` (or use :func:`start_recorder`)."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        on_commit: CommitObserver | None = None,
        hold: float = DEFAULT_HOLD,
    ) -> None:
        super().__init__()
        self._store = store
        #: The longest deferrable appends wait for a prompt one (seconds; 0: never).
        self._hold = max(0.0, hold)
        #: Told each committed transaction's duration (seconds) and size (requests), with its clock.
        self._on_commit = on_commit
        self._max_batch = max(1, max_batch)
        self._shared = Shared()
        self._pending = Pending()
        # Stores that can run a hook between writing a batch and committing it get the resolution of the
        # previous batch's futures there (LmdbEventStore, MemoryEventStore); any other store is just called.
        self._hook: dict[str, Any] = {}
        # Stores that take atomic groups inside a batch get atomic items in the shared transaction.
        parameters: Collection[str]
        try:
            parameters = inspect.signature(store.append_batch).parameters
        except (TypeError, ValueError):
            parameters = ()
        if "before_commit" in parameters:
            self._hook = {"before_commit": self._pending.resolve}
        self._groups = "groups" in parameters

    def on_receive(self, message: Any) -> Any:
        """Handle a flush (commit whatever is queued) or a handle's request for the shared state."""
        if isinstance(message, Flush):
            with self._shared.lock:
                self._shared.flush_scheduled = False
            self._drain()
            return None
        if isinstance(message, GetShared):
            return self._shared
        return super().on_receive(message)

    def on_stop(self) -> None:
        """Refuse new appends and commit what is queued."""
        with self._shared.lock:
            self._shared.stopped = True
        self._drain()

    def _drain(self) -> None:
        shared = self._shared
        get = shared.queue.get_nowait
        max_batch = self._max_batch
        prompt = shared.prompt
        try:
            while True:
                if self._hold and self._may_hold():
                    self._pending.resolve()  # the last batch's callers go on meanwhile
                    shared.holds += 1
                    prompt.wait(self._hold)
                if prompt.is_set():
                    prompt.clear()  # before draining: a prompt append queued after it sets it again
                items: list[Item] = []
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
                if atomic and self._groups:
                    self._commit_group(items, grouped=True)
                elif atomic:
                    self._commit(items)
                else:
                    self._commit_group(items)  # what _commit does with no atomic item, without the scan
        finally:
            self._pending.resolve()  # the queue is empty: nothing left to overlap with

    def _may_hold(self) -> bool:
        """Whether to wait (up to the hold) for a prompt append before the next transaction: none is queued,
        deferrable ones are, and prompt appends come in a steady stream (their smoothed gap, and the time since the
        last one, within ``STREAM_WINDOW`` holds). The next one then finds the recorder idle, so its caller waits
        for its own commit only, and the held ones share it."""
        shared = self._shared
        if shared.prompt.is_set() or shared.stopped:
            return False
        window = self._hold * STREAM_WINDOW
        if shared.prompt_gap >= window or time.monotonic() - shared.last_prompt >= window:
            return False
        return 0 < shared.queue.qsize() < self._max_batch

    def _commit(self, items: list[Item]) -> None:
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

    def _commit_group(self, group: list[Item], *, grouped: bool = False) -> None:
        """Commit drained items in one transaction; with ``grouped`` its atomic items are atomic groups of it."""
        requests = [request for item in group for request in item[0]]
        pending = self._pending
        observer = self._on_commit
        began = observer[0]() if observer is not None else 0.0
        options = self._hook
        if grouped:
            spans: list[tuple[int, int]] = []
            start = 0
            for item in group:
                end = start + len(item[0])
                if item[1]:
                    spans.append((start, end))
                start = end
            options = {**options, "groups": spans}
        try:
            results = self._store.append_batch(requests, atomic=False, **options)
        except BaseException:
            pending.resolve()
            self._fail(group, sys.exc_info())
            return
        if observer is not None:
            observer[1](observer[0]() - began, len(requests))
        pending.resolve()  # if the store had no hook to do it before its commit
        shared = self._shared
        shared.batches += 1
        shared.appends += len(requests)
        shared.max_batch = max(shared.max_batch, len(requests))
        events, errors = pending.add_results(group, results)
        shared.events += events
        shared.errors += errors

    def _commit_atomic(self, item: Item) -> None:
        requests, _, single, target = item
        pending = self._pending
        shared = self._shared
        observer = self._on_commit
        began = observer[0]() if observer is not None else 0.0
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
        if observer is not None:
            observer[1](observer[0]() - began, len(requests))
        pending.resolve()
        shared.batches += 1
        shared.appends += len(requests)
        shared.max_batch = max(shared.max_batch, len(requests))
        for slot in results:
            if isinstance(slot, AionError):
                shared.errors += 1
            else:
                shared.events += len(slot)
        # A single append with a companion (``append_to(..., companion=...)``) reports the append's outcome.
        pending.add(target, results[0] if single else results, None)

    def _fail(self, items: list[Item], exc_info: Any) -> None:
        for _, _, _, target in items:
            set_exception(target, exc_info)
        self._shared.errors += sum(len(item[0]) for item in items)
        if not isinstance(exc_info[1], Exception):  # KeyboardInterrupt, SystemExit: let the actor die
            raise exc_info[1]
