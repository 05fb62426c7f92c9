"""The reads of the LMDB store: heads, histories, runs, the visibility indexes and the timer rows.

:class:`LmdbReads` holds the ``EventStore`` read methods of :class:`~aion.store.LmdbEventStore`, each in one
read transaction of its :class:`~aion.store._lmdb_env.LmdbEnvironment` (``running_workflows``: one per page).
It never writes, never takes the write lock, and never trusts a run record's stored ``head_seq``: a workflow's
head is always its last history key (see ``_lmdb_format``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Final

import msgpack

from aion._codec import decode_event
from aion._gc import collector_paused
from aion.errors import CorruptEventError, WorkflowNotFoundError
from aion.events import Event, WorkflowStarted
from aion.status import WorkflowStatus
from aion.store._checks import check_aware, check_limit, check_workflow_id, parse_status
from aion.store._derive import with_head
from aion.store._lmdb_env import Databases, LmdbEnvironment
from aion.store._lmdb_format import U64, decode_run, run_first_seq_of, run_id_of, time_key, time_of
from aion.store._schedule_rows import lmdb_schedule_history, lmdb_schedule_ids
from aion.store._types import RunInfo, TimerRow

# U64's methods, bound here (CPython 3.11 builds a bound method per ``U64.pack(...)`` on an imported name).
_pack: Final = U64.pack
_unpack: Final = U64.unpack
_unpack_from: Final = U64.unpack_from
#: How many running workflows ``running_workflows`` reads per read transaction.
_PAGE: Final = 512


def history_head(txn: Any, dbs: Databases, wf: bytes) -> int:
    """The sequence number of the workflow's last history key (0 without history)."""
    with txn.cursor(db=dbs.history) as cursor:
        # The workflow's keys are wf \0 seq; the first key after all of them is at or after wf \1.
        found = cursor.prev() if cursor.set_range(wf + b"\x01") else cursor.last()
        key = cursor.key() if found else b""
    if len(key) != len(wf) + 9 or not key.startswith(wf + b"\x00"):
        return 0
    head: int = _unpack_from(key, len(wf) + 1)[0]
    return head


def run_of(txn: Any, dbs: Databases, wf: bytes, data: bytes) -> RunInfo:
    """Decode a stored run record and give it the workflow's head (see ``_lmdb_format``)."""
    return with_head(decode_run(wf.decode(), data), history_head(txn, dbs, wf))


def scan(cursor: Any, prefix: bytes, *, reverse: bool, after: bytes | None = None) -> Iterator[bytes]:
    """Keys starting with ``prefix`` in order (or reverse order); forward scans may resume after a key."""
    if reverse:
        if prefix:
            end = prefix[:-1] + bytes([prefix[-1] + 1])
            positioned = cursor.prev() if cursor.set_range(end) else cursor.last()
        else:
            positioned = cursor.last()
        if not positioned:
            return
        for key in cursor.iterprev(values=False):
            if not key.startswith(prefix):
                return
            yield key
    else:
        if not cursor.set_range(after + b"\x00" if after is not None else prefix):
            return
        for key in cursor.iternext(values=False):
            if not key.startswith(prefix):
                return
            yield key


class LmdbIndexSource:
    """The visibility index and run records of one read transaction (an ``aion.visibility.IndexSource``)."""

    def __init__(self, txn: Any, dbs: Databases) -> None:
        self._txn = txn
        self._dbs = dbs
        self.indexed = dbs.vis_attr is not None

    def index_keys(self, low: bytes, high: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        """The index keys in ``[low, high)``, in byte order (or reversed)."""
        with self._txn.cursor(db=self._dbs.vis_attr) as cursor:
            if reverse:
                found = cursor.prev() if cursor.set_range(high) else cursor.last()
                while found:
                    key = cursor.key()
                    if key < low:
                        return
                    if key < high:
                        yield key
                    found = cursor.prev()
                return
            if not cursor.set_range(low):
                return
            for key in cursor.iternext(values=False):
                if key >= high:
                    return
                yield key

    def run(self, wf: bytes) -> RunInfo | None:
        """The current run record of workflow ``wf``."""
        data = self._txn.get(wf, db=self._dbs.runs)
        return None if data is None else run_of(self._txn, self._dbs, wf, data)

    def runs(self) -> Iterator[RunInfo]:
        """Every workflow's current run record."""
        with self._txn.cursor(db=self._dbs.runs) as cursor:
            for wf, data in cursor:
                yield run_of(self._txn, self._dbs, bytes(wf), data)


def _history_from(txn: Any, db: Any, prefix: bytes, first: int) -> Iterator[tuple[bytes, bytes]]:
    """The history rows ``(key, stored bytes)`` of the workflow whose keys start with ``prefix``, from sequence
    number ``first`` on, in order."""
    with txn.cursor(db=db) as cursor:
        if cursor.set_range(prefix + _pack(first)):
            for key, value in cursor.iternext():
                if not key.startswith(prefix):
                    return
                yield key, value


def _current_run_first(txn: Any, dbs: Databases, workflow_id: str, wf: bytes) -> int:
    """The first sequence number of the workflow's current run; ``WorkflowNotFoundError`` if it has none."""
    data = txn.get(wf, db=dbs.runs)
    if data is None:
        raise WorkflowNotFoundError(workflow_id)
    return run_first_seq_of(workflow_id, data)


class LmdbReads:
    """The read methods of the LMDB store, over the environment in :attr:`environment`."""

    environment: LmdbEnvironment
    #: Decodes each stored event's bytes before the event codec reads them (``Engine(payload_codec=...)``).
    stored_decode: Callable[[bytes], bytes] | None = None

    def _decode(self, data: bytes) -> Event:
        decode = self.stored_decode
        if decode is None:
            try:
                return decode_event(data)
            except CorruptEventError as error:
                raise CorruptEventError(
                    f"{error} (if this data directory was written with a payload codec, read it with that codec: "
                    "Engine(payload_codec=...), aion --codec MODULE:OBJECT)"
                ) from error
        return decode_event(self._undo_codec(decode, data))

    def read_schedule(self, schedule_id: str) -> list[Event]:
        """A schedule's whole history (``[]`` for an unknown schedule)."""
        check_workflow_id(schedule_id)
        with self.environment.read() as txn:
            return lmdb_schedule_history(txn, self.environment.dbs.schedules, schedule_id)

    def schedule_ids(self) -> list[str]:
        """The id of every schedule with a history (deleted ones too), in id order."""
        with self.environment.read() as txn:
            return list(lmdb_schedule_ids(txn, self.environment.dbs.schedules))

    def head(self, workflow_id: str) -> int:
        """The workflow's last sequence number, 0 when unknown."""
        check_workflow_id(workflow_id)
        with self.environment.read() as txn:
            return history_head(txn, self.environment.dbs, workflow_id.encode())

    def read_history(self, workflow_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The workflow's history after ``after_seq`` (all runs), at most ``limit`` events."""
        check_workflow_id(workflow_id)
        check_limit(limit)
        prefix = workflow_id.encode() + b"\x00"
        raw: list[bytes] = []
        if limit == 0:
            return []
        with self.environment.read() as txn:
            for _, value in _history_from(txn, self.environment.dbs.history, prefix, max(after_seq, 0) + 1):
                raw.append(value)
                if limit is not None and len(raw) >= limit:
                    break
        with collector_paused():
            return [self._decode(data) for data in raw]

    def read_run(self, workflow_id: str, run_id: str | None = None) -> list[Event]:
        """One run's events (the current run by default)."""
        check_workflow_id(workflow_id)
        dbs = self.environment.dbs
        wf = workflow_id.encode()
        prefix = wf + b"\x00"
        events: list[Event] = []
        with self.environment.read() as txn, collector_paused():
            if run_id is None:
                first = _current_run_first(txn, dbs, workflow_id, wf)
            else:
                entry = txn.get(run_id.encode(), db=dbs.run_index)
                owner, first = msgpack.unpackb(entry) if entry is not None else (None, 0)
                if owner != workflow_id:
                    raise WorkflowNotFoundError(workflow_id, run_id)
            for _, value in _history_from(txn, dbs.history, prefix, first):
                event = self._decode(value)
                if events and isinstance(event, WorkflowStarted):
                    break
                events.append(event)
        return events

    def read_run_encoded(self, workflow_id: str) -> tuple[list[bytes], int]:
        """The current run's events as the event codec's bytes (a payload codec's encoding undone), not decoded,
        and the sequence number of the last: the current run is the workflow's last, so its events are the keys
        from its first seq to the end of the workflow's."""
        check_workflow_id(workflow_id)
        dbs = self.environment.dbs
        wf = workflow_id.encode()
        prefix = wf + b"\x00"
        values: list[bytes] = []
        last = b""
        with self.environment.read() as txn:
            first = _current_run_first(txn, dbs, workflow_id, wf)
            for key, value in _history_from(txn, dbs.history, prefix, first):
                values.append(value)
                last = key
        if not values:
            raise CorruptEventError(f"workflow {workflow_id!r}: its current run has no events")
        seq: int = _unpack_from(last, len(prefix))[0]
        decode = self.stored_decode
        if decode is not None:
            values = [self._undo_codec(decode, value) for value in values]
        return values, seq

    @staticmethod
    def _undo_codec(decode: Callable[[bytes], bytes], data: bytes) -> bytes:
        try:
            return decode(data)
        except Exception as error:
            raise CorruptEventError(
                f"the payload codec cannot decode a stored event ({type(error).__name__}: {error}): "
                "is it the codec this data directory was written with?"
            ) from error

    def get_run(self, workflow_id: str) -> RunInfo | None:
        """The workflow's current run record, or ``None``."""
        check_workflow_id(workflow_id)
        dbs = self.environment.dbs
        wf = workflow_id.encode()
        with self.environment.read() as txn:
            data = txn.get(wf, db=dbs.runs)
            return None if data is None else run_of(txn, dbs, wf, data)

    def current_run_id(self, workflow_id: str) -> str | None:
        """The id of the workflow's current run, or ``None``: one read of its run record, nothing else decoded
        (no ``RunInfo``, no history head)."""
        check_workflow_id(workflow_id)
        with self.environment.read() as txn:
            data = txn.get(workflow_id.encode(), db=self.environment.dbs.runs)
            return None if data is None else run_id_of(workflow_id, data)

    def list_workflows(
        self,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[RunInfo]:
        """Current runs filtered by status and/or type, by start time (then workflow id)."""
        check_limit(limit)
        dbs = self.environment.dbs
        wanted = parse_status(status)
        if workflow_type is not None:
            db, prefix = dbs.vis_type, workflow_type.encode() + b"\x00"
        elif wanted is not None:
            db, prefix = dbs.vis_status, wanted.value.encode() + b"\x00"
        else:
            db, prefix = dbs.vis_start, b""
        found: list[RunInfo] = []
        if limit == 0:
            return found
        with self.environment.read() as txn, txn.cursor(db=db) as cursor:
            for key in scan(cursor, prefix, reverse=newest_first):
                wf = key[len(prefix) + 8 :]
                run = run_of(txn, dbs, wf, txn.get(wf, db=dbs.runs))
                if wanted is not None and run.status is not wanted:
                    continue
                found.append(run)
                if limit is not None and len(found) >= limit:
                    break
        return found

    @contextlib.contextmanager
    def visibility(self) -> Iterator[LmdbIndexSource]:
        """The visibility index and run records of one read transaction, for ``aion.visibility``."""
        with self.environment.read() as txn:
            yield LmdbIndexSource(txn, self.environment.dbs)

    def running_workflows(self) -> Iterator[RunInfo]:
        """Every open workflow (running, then blocked, then paused; each oldest start first), read in pages."""
        for status in (WorkflowStatus.RUNNING, WorkflowStatus.BLOCKED, WorkflowStatus.PAUSED):
            yield from self._with_status(status)

    def _with_status(self, status: WorkflowStatus) -> Iterator[RunInfo]:
        """Every workflow whose run has ``status``, oldest start first (one read transaction per page)."""
        dbs = self.environment.dbs
        prefix = status.value.encode() + b"\x00"
        after: bytes | None = None
        while True:
            page: list[RunInfo] = []
            with self.environment.read() as txn, txn.cursor(db=dbs.vis_status) as cursor:
                for key in scan(cursor, prefix, reverse=False, after=after):
                    wf = key[len(prefix) + 8 :]
                    page.append(run_of(txn, dbs, wf, txn.get(wf, db=dbs.runs)))
                    after = key
                    if len(page) >= _PAGE:
                        break
            yield from page
            if len(page) < _PAGE:
                return

    def due_timers(self, before: datetime, limit: int | None = None) -> list[TimerRow]:
        """Timer rows due at or before ``before``, in fire order."""
        bound = time_key(check_aware(before, "before"))
        check_limit(limit)
        return self._timer_rows(bound, limit)

    def all_timers(self) -> list[TimerRow]:
        """Every timer row, in fire order."""
        return self._timer_rows(None, None)

    def _timer_rows(self, bound: bytes | None, limit: int | None) -> list[TimerRow]:
        rows: list[TimerRow] = []
        if limit == 0:
            return rows
        with self.environment.read() as txn, txn.cursor(db=self.environment.dbs.timers) as cursor:
            if cursor.first():
                for key in cursor.iternext(values=False):
                    fire = key[:8]
                    if bound is not None and fire > bound:
                        break
                    wf, kind = key[8:-8].split(b"\x00")[:2]
                    key_id = _unpack(key[-8:])[0]
                    rows.append(TimerRow(time_of(fire), wf.decode(), kind.decode(), key_id))
                    if limit is not None and len(rows) >= limit:
                        break
        return rows
