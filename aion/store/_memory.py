"""``MemoryEventStore``: the event store in memory, for tests and for the conformance suite's reference.

It follows the same rules as the LMDB store (it shares their derivation in ``_derive``) and keeps every event
as the bytes of ``encode_event``, so a round trip through it is a round trip through the codec.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

from aion._codec import decode_event
from aion.clock import SYSTEM_CLOCK, Clock
from aion.errors import AionError, StoreError, WorkflowNotFoundError
from aion.events import Event, WorkflowStarted
from aion.status import OPEN_STATUSES, WorkflowStatus
from aion.store._checks import check_aware, check_limit, check_workflow_id, parse_status
from aion.store._derive import DEFAULT_MAX_EVENT_BYTES, Applied, TimerClear, TimerDelete, TimerPut, with_head
from aion.store._plan import plan_batch
from aion.store._types import AppendRequest, RunInfo, TimerRow
from aion.visibility._keys import index_keys


class MemoryEventStore:
    """An ``EventStore`` held in memory (thread-safe; nothing survives the process).

    ``clock`` gives the ``recorded_at`` of every appended batch."""

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lock = threading.RLock()
        self._history: dict[str, list[bytes]] = {}
        self._runs: dict[str, RunInfo] = {}
        self._run_index: dict[str, tuple[str, int]] = {}
        self._timers: dict[str, dict[tuple[str, int], datetime]] = {}
        #: The visibility index: the same keys as the LMDB store's ``vis_attr``, kept sorted.
        self._index: list[bytes] = []
        self._schema: dict[str, str] = {}
        self._schedules: dict[str, list[bytes]] = {}
        self._max_event_bytes = max_event_bytes
        self._clock = clock
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryEventStore({len(self._runs)} workflows)"

    # --- writes --------------------------------------------------------------------------------------------

    def append(self, workflow_id: str, events: Sequence[Event], expected_head: int) -> list[Event]:
        """Append ``events`` after ``expected_head``; return them stamped (see ``EventStore.append``)."""
        check_workflow_id(workflow_id)
        result = self.append_batch([AppendRequest(workflow_id, events, expected_head)], atomic=True)
        stamped = result[0]
        assert not isinstance(stamped, AionError)
        return stamped

    def append_batch(
        self,
        requests: Sequence[AppendRequest],
        *,
        atomic: bool = False,
        before_commit: Callable[[], object] | None = None,
        groups: Sequence[tuple[int, int]] = (),
    ) -> list[list[Event] | AionError]:
        """Several appends at once (see ``EventStore.append_batch``); ``before_commit`` and ``groups`` as in
        ``LmdbEventStore.append_batch``."""
        with self._lock:
            self._check_open()
            plan = plan_batch(
                requests,
                atomic=atomic,
                now=self._clock.now(),
                load_run=self._load_run,
                run_id_taken=self._run_index.__contains__,
                max_event_bytes=self._max_event_bytes,
                load_schedule_head=lambda schedule_id: len(self._schedules.get(schedule_id, ())),
                groups=groups,
            )
            if before_commit is not None:
                before_commit()
            for schedule_id, _, data in plan.schedules:
                self._schedules.setdefault(schedule_id, []).append(data)
            for workflow_id, _, data in plan.history:
                self._history.setdefault(workflow_id, []).append(data)
            for applied in plan.derived:
                self._write_derived(applied)
            for workflow_id, before in plan.changed.items():
                self._move_index(
                    index_keys(before, self._unindexed()), index_keys(plan.after[workflow_id], self._unindexed())
                )
            for workflow_id, run in plan.after.items():
                self._runs[workflow_id] = with_head(run, plan.heads[workflow_id])
            return plan.results

    def _unindexed(self) -> frozenset[str]:
        return frozenset(name for name, kind in self._schema.items() if kind == "text")

    def _move_index(self, old: set[bytes], new: set[bytes]) -> None:
        index = self._index
        for key in old - new:
            position = bisect.bisect_left(index, key)
            if position < len(index) and index[position] == key:
                del index[position]
        for key in new - old:
            position = bisect.bisect_left(index, key)
            if position == len(index) or index[position] != key:
                index.insert(position, key)

    def search_attribute_schema(self) -> dict[str, str]:
        """The declared search attributes (name -> type) the store was last given (empty if never)."""
        with self._lock:
            return dict(self._schema)

    def set_search_attribute_schema(self, schema: Mapping[str, str]) -> None:
        """Keep the declared search attributes; the index is rebuilt when they changed (as the LMDB store)."""
        with self._lock:
            self._check_open()
            wanted = dict(sorted(schema.items()))
            if wanted == self._schema:
                return
            self._schema = wanted
            unindexed = self._unindexed()
            self._index = sorted(set().union(*(index_keys(run, unindexed) for run in self._runs.values())))

    @contextlib.contextmanager
    def visibility(self) -> Iterator[_MemoryIndexSource]:
        """A snapshot of the visibility index and run records, for ``aion.visibility``."""
        with self._lock:
            self._check_open()
            source = _MemoryIndexSource(list(self._index), dict(self._runs))
        yield source

    def _load_run(self, workflow_id: str) -> tuple[RunInfo | None, int]:
        run = self._runs.get(workflow_id)
        return (run, run.head_seq) if run is not None else (None, 0)

    def _write_derived(self, applied: Applied) -> None:
        workflow_id = applied.workflow_id
        for run_id, first_seq in applied.new_runs:
            self._run_index[run_id] = (workflow_id, first_seq)
        timers = self._timers.setdefault(workflow_id, {})
        for op in applied.timer_ops:
            if isinstance(op, TimerPut):
                timers[(op.kind, op.key)] = op.fire_at
            elif isinstance(op, TimerDelete):
                timers.pop((op.kind, op.key), None)
            elif isinstance(op, TimerClear):
                timers.clear()
        if not timers:
            del self._timers[workflow_id]

    # --- reads ---------------------------------------------------------------------------------------------

    def read_schedule(self, schedule_id: str) -> list[Event]:
        """A schedule's whole history (``[]`` for an unknown schedule)."""
        check_workflow_id(schedule_id)
        with self._lock:
            self._check_open()
            return [decode_event(data) for data in self._schedules.get(schedule_id, ())]

    def schedule_ids(self) -> list[str]:
        """The id of every schedule with a history, in id order."""
        with self._lock:
            self._check_open()
            return sorted(self._schedules)

    def head(self, workflow_id: str) -> int:
        """The workflow's last sequence number, 0 when unknown."""
        check_workflow_id(workflow_id)
        with self._lock:
            self._check_open()
            return len(self._history.get(workflow_id, ()))

    def read_history(self, workflow_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The workflow's history after ``after_seq`` (all runs), at most ``limit`` events."""
        check_workflow_id(workflow_id)
        check_limit(limit)
        with self._lock:
            self._check_open()
            history = self._history.get(workflow_id, [])
            end = len(history) if limit is None else max(after_seq, 0) + limit
            chunk = history[max(after_seq, 0) : end]
        return [decode_event(data) for data in chunk]

    def read_run(self, workflow_id: str, run_id: str | None = None) -> list[Event]:
        """One run's events (the current run by default)."""
        check_workflow_id(workflow_id)
        with self._lock:
            self._check_open()
            if run_id is None:
                run = self._runs.get(workflow_id)
                if run is None:
                    raise WorkflowNotFoundError(workflow_id)
                first = run.run_first_seq
            else:
                entry = self._run_index.get(run_id)
                if entry is None or entry[0] != workflow_id:
                    raise WorkflowNotFoundError(workflow_id, run_id)
                first = entry[1]
            chunk = self._history[workflow_id][first - 1 :]
        events = [decode_event(chunk[0])]
        for data in chunk[1:]:
            event = decode_event(data)
            if isinstance(event, WorkflowStarted):
                break
            events.append(event)
        return events

    def read_run_encoded(self, workflow_id: str) -> tuple[list[bytes], int]:
        """The current run's events as stored (the event codec's bytes), and the sequence number of the last."""
        check_workflow_id(workflow_id)
        with self._lock:
            self._check_open()
            run = self._runs.get(workflow_id)
            if run is None:
                raise WorkflowNotFoundError(workflow_id)
            history = self._history[workflow_id]
            return history[run.run_first_seq - 1 :], len(history)

    def get_run(self, workflow_id: str) -> RunInfo | None:
        """The workflow's current run record, or ``None``."""
        check_workflow_id(workflow_id)
        with self._lock:
            self._check_open()
            return _copy(self._runs.get(workflow_id))

    def current_run_id(self, workflow_id: str) -> str | None:
        """The id of the workflow's current run, or ``None``."""
        check_workflow_id(workflow_id)
        with self._lock:
            self._check_open()
            run = self._runs.get(workflow_id)
            return None if run is None else run.run_id

    def list_workflows(
        self,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[RunInfo]:
        """Current runs filtered by status and/or type, by start time (then workflow id)."""
        check_limit(limit)
        wanted = parse_status(status)
        with self._lock:
            self._check_open()
            runs = [
                run
                for run in self._runs.values()
                if (wanted is None or run.status is wanted)
                and (workflow_type is None or run.workflow_type == workflow_type)
            ]
        runs.sort(key=lambda run: (run.start_time, run.workflow_id), reverse=newest_first)
        return [_copy_run(run) for run in runs[:limit]]

    def running_workflows(self) -> Iterator[RunInfo]:
        """Every open workflow (running, blocked or paused), oldest start first."""
        runs = [run for status in OPEN_STATUSES for run in self.list_workflows(status, newest_first=False)]
        runs.sort(key=lambda run: (run.start_time, run.workflow_id))
        return iter(runs)

    def due_timers(self, before: datetime, limit: int | None = None) -> list[TimerRow]:
        """Timer rows due at or before ``before``, in fire order."""
        before = check_aware(before, "before")
        check_limit(limit)
        rows = [row for row in self.all_timers() if row.fire_at <= before]
        return rows[:limit]

    def all_timers(self) -> list[TimerRow]:
        """Every timer row, in fire order."""
        with self._lock:
            self._check_open()
            rows = [
                TimerRow(fire_at, workflow_id, kind, key)
                for workflow_id, timers in self._timers.items()
                for (kind, key), fire_at in timers.items()
            ]
        rows.sort()
        return rows

    def release_cached_pages(self) -> None:
        """Nothing to release: the memory store's events are the store itself."""

    def close(self) -> None:
        """Forget nothing, but refuse further calls."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the event store is closed")


class _MemoryIndexSource:
    """A snapshot of the memory store's visibility index and run records (an ``aion.visibility.IndexSource``)."""

    indexed = True

    def __init__(self, index: list[bytes], runs: dict[str, RunInfo]) -> None:
        self._index = index
        self._runs = runs

    def index_keys(self, low: bytes, high: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        """The index keys in ``[low, high)``, in byte order (or reversed)."""
        keys = self._index[bisect.bisect_left(self._index, low) : bisect.bisect_left(self._index, high)]
        return reversed(keys) if reverse else iter(keys)

    def run(self, wf: bytes) -> RunInfo | None:
        """The current run record of workflow ``wf``."""
        return _copy(self._runs.get(wf.decode()))

    def runs(self) -> Iterator[RunInfo]:
        """Every workflow's current run record."""
        return (_copy_run(run) for run in self._runs.values())


def _copy_run(run: RunInfo) -> RunInfo:
    # The run record is frozen, but its attribute map is a dict: hand out a copy so callers cannot alter ours.
    return RunInfo(**{**run.__dict__, "search_attributes": dict(run.search_attributes)})


def _copy(run: RunInfo | None) -> RunInfo | None:
    return None if run is None else _copy_run(run)
