"""``LmdbEventStore``: the durable event store, one LMDB environment per data directory.

Layout (named databases; ``\\0`` separates variable-length parts, which never contain NUL; times are
microseconds since the epoch plus 2**63, big-endian, so byte order is time order):

=================  =============================================  ====================================
database           key                                            value
=================  =============================================  ====================================
``history``        workflow_id ``\\0`` seq (u64)                   ``encode_event`` bytes
``runs``           workflow_id                                    current run record (msgpack list) [1]
``run_index``      run_id                                         msgpack ``[workflow_id, first_seq]``
``vis_status``     status ``\\0`` start (u64) workflow_id           empty
``vis_type``       workflow_type ``\\0`` start (u64) workflow_id    empty
``vis_start``      start (u64) workflow_id                        empty
``timers``         fire_at (u64) workflow_id ``\\0`` kind ``\\0`` key  empty
``timers_by_wf``   workflow_id ``\\0`` kind ``\\0`` key (u64)         fire_at (u64)
``schedules``      reserved for the schedule service
``meta``           ``magic``, ``schema_version``                  ``aion-store``, ascii int
=================  =============================================  ====================================

[1] The ``head_seq`` written in a run record is not kept up to date: an append that only moves the head (the usual
one) does not rewrite the record (one put and one encoding less per event on the writer's critical path). A
workflow's head is the sequence number of its last ``history`` key, and every read of a run record takes it from
there. Schema 1 stores (which rewrote the record on every append) read the same way; opening one as writer marks
it schema 2.

Every write is one LMDB write transaction committed with ``sync`` and ``metasync`` (an fsync per commit); a
full map is grown (abort, double the map size, retry the whole transaction), so no write is ever torn. A
process holds the data directory as writer through ``flock`` on ``writer.lock``; read-only opens from other
processes do not take it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import lmdb
import msgpack

from aion._codec import decode_event, decode_payload, encode_payload, pack_plain
from aion.errors import (
    AionError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    WorkflowNotFoundError,
)
from aion.events import Event, WorkflowStarted
from aion.status import WorkflowStatus
from aion.store._derive import (
    DEFAULT_MAX_EVENT_BYTES,
    Applied,
    TimerClear,
    TimerDelete,
    TimerPut,
    check_aware,
    check_limit,
    check_workflow_id,
    parse_status,
    plan_batch,
    with_head,
)
from aion.store._types import AppendRequest, RunInfo, TimerRow

#: The value of ``meta[b"magic"]`` in every aion store.
MAGIC: Final = b"aion-store"
#: The schema version this aion writes; a store with a higher one is refused, a lower one is upgraded in place.
SCHEMA_VERSION: Final = 2
#: Initial map size; the map doubles whenever a write transaction fills it.
DEFAULT_MAP_SIZE: Final = 64 * 1024 * 1024
#: Name of the writer lock file inside the data directory.
LOCK_FILE: Final = "writer.lock"

_DB_NAMES: Final = (
    b"meta",
    b"history",
    b"runs",
    b"run_index",
    b"vis_status",
    b"vis_type",
    b"vis_start",
    b"timers",
    b"timers_by_wf",
    b"schedules",
)

_U64 = struct.Struct(">Q")
#: How many seqs :data:`_KEY_SUFFIXES` has room for: most histories stay below.
_KEY_TABLE_SIZE: Final = 0x1000
#: ``\0`` and the seq (u64), what follows the workflow id in a history key, by seq: filled as they are first
#: written (a table rather than a ``pack`` and a concatenation per event on the writer's critical path).
_KEY_SUFFIXES: Final[list[bytes | None]] = [None] * _KEY_TABLE_SIZE


def _key_suffix(seq: int) -> bytes:
    """``\\0`` and ``seq`` packed, kept in the table (``0 <= seq < _KEY_TABLE_SIZE``)."""
    suffix = _KEY_SUFFIXES[seq] = b"\x00" + _U64.pack(seq)
    return suffix


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_TIME_BIAS: Final = 2**63
_RECORD_VERSION: Final = 1
_PAGE: Final = 512
#: Run records the writer keeps decoded (it is the only writer, so they cannot go stale); cleared when full.
_RUN_CACHE_SIZE: Final = 100_000


def _time_key(value: datetime) -> bytes:
    return _U64.pack((value - _EPOCH) // _MICRO + _TIME_BIAS)


def _time_of(key: bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=_U64.unpack(key)[0] - _TIME_BIAS)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MICRO


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _encode_run(run: RunInfo) -> bytes:
    attributes = encode_payload(dict(run.search_attributes), limit=None) if run.search_attributes else None
    return pack_plain(
        [
            _RECORD_VERSION,
            run.run_id,
            run.workflow_type,
            run.status.value,
            run.head_seq,
            run.run_first_seq,
            _micros(run.start_time),
            _micros(run.close_time),
            attributes,
            run.parent_run_id,
            run.first_run_id,
            run.parent_workflow_id,
            run.parent_workflow_run_id,
            run.run_number,
        ]
    )


def _decode_run(workflow_id: str, data: bytes) -> RunInfo:
    try:
        fields = msgpack.unpackb(data, raw=False)
        (version, run_id, workflow_type, status, head, first, start, close, attributes) = fields[:9]
        if version != _RECORD_VERSION:
            raise ValueError(f"run record version {version}")
        parent_run_id, first_run_id, parent_wf, parent_wf_run, run_number = fields[9:14]
        start_time = _from_micros(start)
        assert start_time is not None
        return RunInfo(
            workflow_id=workflow_id,
            run_id=run_id,
            workflow_type=workflow_type,
            status=WorkflowStatus(status),
            head_seq=head,
            run_first_seq=first,
            start_time=start_time,
            close_time=_from_micros(close),
            search_attributes=decode_payload(attributes) if attributes is not None else {},
            parent_run_id=parent_run_id,
            first_run_id=first_run_id,
            parent_workflow_id=parent_wf,
            parent_workflow_run_id=parent_wf_run,
            run_number=run_number,
        )
    except Exception as error:
        raise StoreError(f"the run record of workflow {workflow_id!r} is unreadable: {error}") from error


def _vis_keys(run: RunInfo, wf: bytes) -> tuple[bytes, bytes, bytes]:
    start = _time_key(run.start_time) + wf
    return (
        run.status.value.encode() + b"\x00" + start,
        run.workflow_type.encode() + b"\x00" + start,
        start,
    )


class _ReadGate:
    """Many readers or one map resize: LMDB's ``set_mapsize`` needs no transaction active in the process."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def _store_error(error: lmdb.Error, doing: str) -> StoreError:
    if isinstance(error, (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.CorruptedError)):
        return StoreFormatError(f"{doing}: {error}")
    return StoreError(f"{doing}: {error}")


class LmdbEventStore:
    """An ``EventStore`` in an LMDB environment; open it with :func:`open_store`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._max_event_bytes = max_event_bytes
        self._write_lock = threading.Lock()
        self._gate = _ReadGate()
        self._closed = False
        # The writer's memory of what it has committed (it is the only writer, so it cannot go stale): run records
        # (their head_seq not current) and heads, kept apart so that the usual append changes an int, not a record.
        self._run_cache: dict[str, RunInfo] = {}
        self._head_cache: dict[str, int] = {}
        self._lock_fd: int | None = None
        if not readonly:
            self._lock_fd = self._take_writer_lock()
        try:
            self._env = self._open_env(map_size)
            try:
                self._dbs = self._open_dbs()
            except BaseException:
                self._env.close()
                raise
        except BaseException:
            self._release_writer_lock()
            raise
        (
            self._meta,
            self._history,
            self._runs,
            self._run_index,
            self._vis_status,
            self._vis_type,
            self._vis_start,
            self._timers,
            self._timers_by_wf,
            self._schedules,
        ) = (self._dbs[name] for name in _DB_NAMES)

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "writer"
        return f"LmdbEventStore({str(self.path)!r}, {mode})"

    # --- opening -------------------------------------------------------------------------------------------

    def _take_writer_lock(self) -> int:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StoreError(f"cannot open the data directory {str(self.path)!r}: {error}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreLockedError(
                    f"the data directory {str(self.path)!r} is held by another writer (engine)"
                ) from None
            raise StoreError(f"cannot lock {str(self.path)!r}: {error}") from error
        return fd

    def _release_writer_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _open_env(self, map_size: int) -> lmdb.Environment:
        if self.readonly and not (self.path / "data.mdb").is_file():
            raise StoreError(f"no aion store at {str(self.path)!r}")
        try:
            return lmdb.open(
                str(self.path),
                map_size=map_size,
                subdir=True,
                readonly=self.readonly,
                create=not self.readonly,
                lock=True,
                sync=True,
                metasync=True,
                writemap=False,
                map_async=False,
                max_dbs=len(_DB_NAMES) + 6,
                max_readers=254,
                max_spare_txns=4,
                mode=0o700,
            )
        except lmdb.Error as error:
            raise _store_error(error, f"cannot open the store at {str(self.path)!r}") from error

    def _open_dbs(self) -> dict[bytes, Any]:
        where = str(self.path)
        try:
            with self._env.begin() as txn:
                names = {bytes(key) for key, _ in txn.cursor()}
            if not names and not self.readonly:
                return self._initialise()
            if b"meta" not in names:
                raise StoreFormatError(f"{where!r} holds an LMDB environment that is not an aion store")
            meta = self._env.open_db(b"meta", create=False)
            with self._env.begin(db=meta) as txn:
                magic = txn.get(b"magic")
                version = txn.get(b"schema_version")
            if magic != MAGIC:
                raise StoreFormatError(f"{where!r} is not an aion store (bad magic {magic!r})")
            try:
                schema = int(version or b"")
            except ValueError:
                raise StoreFormatError(f"{where!r} has an unreadable schema version {version!r}") from None
            if schema > SCHEMA_VERSION:
                raise StoreFormatError(
                    f"{where!r} was written by a newer aion (store schema {schema}; "
                    f"this aion reads up to {SCHEMA_VERSION})"
                )
            if self.readonly:
                missing = [name.decode() for name in _DB_NAMES if name not in names]
                if missing:
                    raise StoreFormatError(f"{where!r} lacks the databases {missing}")
                return {name: self._env.open_db(name, create=False) for name in _DB_NAMES}
            with self._env.begin(write=True) as txn:
                dbs = {name: self._env.open_db(name, txn=txn) for name in _DB_NAMES}
                if schema < SCHEMA_VERSION:  # this writer leaves stale heads in run records (schema 2)
                    txn.put(b"schema_version", str(SCHEMA_VERSION).encode(), db=dbs[b"meta"])
                return dbs
        except lmdb.Error as error:
            raise _store_error(error, f"cannot read the store at {where!r}") from error

    def _initialise(self) -> dict[bytes, Any]:
        with self._env.begin(write=True) as txn:
            dbs = {name: self._env.open_db(name, txn=txn) for name in _DB_NAMES}
            txn.put(b"magic", MAGIC, db=dbs[b"meta"])
            txn.put(b"schema_version", str(SCHEMA_VERSION).encode(), db=dbs[b"meta"])
            txn.put(b"created_at", datetime.now(UTC).isoformat().encode(), db=dbs[b"meta"])
        return dbs

    # --- writes --------------------------------------------------------------------------------------------

    def append(self, workflow_id: str, events: Sequence[Event], expected_head: int) -> list[Event]:
        """Append ``events`` after ``expected_head``; return them stamped (see ``EventStore.append``)."""
        check_workflow_id(workflow_id)
        stamped = self.append_batch([AppendRequest(workflow_id, events, expected_head)], atomic=True)[0]
        assert not isinstance(stamped, AionError)
        return stamped

    def append_batch(
        self,
        requests: Sequence[AppendRequest],
        *,
        atomic: bool = False,
        before_commit: Callable[[], object] | None = None,
    ) -> list[list[Event] | AionError]:
        """Several appends in one write transaction and one fsync (see ``EventStore.append_batch``).

        ``before_commit`` is called once, on this thread, after the batch is written into the transaction and
        just before its commit (not at all if the batch fails first). The recorder resolves the futures of its
        previous, already durable, batch there: see ``aion.recorder``. It must not write to this store."""
        if self.readonly:
            raise StoreError(f"the store at {str(self.path)!r} is open read-only")
        with self._write_lock:
            self._check_open()
            now = datetime.now(UTC)
            while True:
                try:
                    txn = self._env.begin(write=True)
                except lmdb.Error as error:
                    raise _store_error(error, "cannot begin a write transaction") from error
                try:
                    results, runs, heads = self._write_batch(txn, requests, atomic, now)
                    if before_commit is not None:
                        hook, before_commit = before_commit, None
                        hook()
                    txn.commit()
                except lmdb.MapFullError:
                    _abort(txn)
                    self._grow()
                    continue
                except lmdb.Error as error:
                    _abort(txn)
                    raise _store_error(error, "the write transaction failed; nothing was written") from error
                except BaseException:
                    _abort(txn)
                    raise
                # Committed: only now may the run records and heads be remembered.
                if len(self._run_cache) + len(runs) > _RUN_CACHE_SIZE:
                    self._run_cache.clear()
                    self._head_cache.clear()
                self._run_cache.update(runs)
                self._head_cache.update(heads)
                return results

    def _write_batch(
        self, txn: Any, requests: Sequence[AppendRequest], atomic: bool, now: datetime
    ) -> tuple[list[list[Event] | AionError], dict[str, RunInfo], dict[str, int]]:
        runs_db = self._runs
        run_index = self._run_index

        def load_run(workflow_id: str) -> tuple[RunInfo | None, int]:
            wf = workflow_id.encode()
            data = txn.get(wf, db=runs_db)
            if data is None:
                return None, 0
            return _decode_run(workflow_id, data), self._history_head(txn, wf)

        def run_id_taken(run_id: str) -> bool:
            return txn.get(run_id.encode(), db=run_index) is not None

        plan = plan_batch(
            requests,
            atomic=atomic,
            now=now,
            load_run=load_run,
            run_id_taken=run_id_taken,
            max_event_bytes=self._max_event_bytes,
            cached_runs=self._run_cache,
            cached_heads=self._head_cache,
        )
        self._write_history(txn, plan.history, plan.derived)
        after = plan.after
        for workflow_id, before in plan.changed.items():
            self._write_run(txn, workflow_id.encode(), before, after[workflow_id])
        return plan.results, after, plan.heads

    def _write_history(self, txn: Any, history: list[tuple[str, int, bytes]], derived: list[Applied]) -> None:
        """Put every event of the batch in one call (``putmulti``), and what its appends derive."""
        pack = _U64.pack
        suffixes = _KEY_SUFFIXES
        items = [
            (
                workflow_id.encode()
                + ((suffixes[seq] or _key_suffix(seq)) if seq < _KEY_TABLE_SIZE else b"\x00" + pack(seq)),
                data,
            )
            for workflow_id, seq, data in history
        ]
        for applied in derived:
            self._write_derived(txn, applied.workflow_id.encode() + b"\x00", applied)
        with txn.cursor(db=self._history) as cursor:
            _, added = cursor.putmulti(items, dupdata=False, overwrite=False)
        if added != len(items):  # never, while run records and history agree: the batch is aborted
            taken = [key for key, data in items if txn.get(key, db=self._history) != data]
            raise StoreError(f"the history already holds the keys {taken!r}: nothing was written")

    def _write_derived(self, txn: Any, prefix: bytes, applied: Applied) -> None:
        """The run index entries and timer rows of one append."""
        pack = _U64.pack
        put = txn.put
        for run_id, first_seq in applied.new_runs:
            put(run_id.encode(), msgpack.packb([applied.workflow_id, first_seq]), db=self._run_index)
        for op in applied.timer_ops:
            if isinstance(op, TimerPut):
                by_wf = prefix + op.kind.encode() + b"\x00" + pack(op.key)
                old = txn.get(by_wf, db=self._timers_by_wf)
                if old is not None:
                    txn.delete(old + by_wf, db=self._timers)
                fire = _time_key(op.fire_at)
                put(fire + by_wf, b"", db=self._timers)
                put(by_wf, fire, db=self._timers_by_wf)
            elif isinstance(op, TimerDelete):
                by_wf = prefix + op.kind.encode() + b"\x00" + pack(op.key)
                old = txn.pop(by_wf, db=self._timers_by_wf)
                if old is not None:
                    txn.delete(old + by_wf, db=self._timers)
            elif isinstance(op, TimerClear):
                rows = []
                with txn.cursor(db=self._timers_by_wf) as cursor:
                    if cursor.set_range(prefix):
                        for key, fire in cursor.iternext():
                            if not key.startswith(prefix):
                                break
                            rows.append((key, fire))
                for key, fire in rows:
                    txn.delete(key, db=self._timers_by_wf)
                    txn.delete(fire + key, db=self._timers)

    def _write_run(self, txn: Any, wf: bytes, before: RunInfo | None, after: RunInfo) -> None:
        txn.put(wf, _encode_run(after), db=self._runs)
        if (
            before is not None
            and before.status is after.status
            and before.start_time == after.start_time
            and before.workflow_type == after.workflow_type
        ):
            return  # the usual append: only the head moved, the visibility keys stay
        new = _vis_keys(after, wf)
        old = _vis_keys(before, wf) if before is not None else (None, None, None)
        dbs = (self._vis_status, self._vis_type, self._vis_start)
        for db, old_key, new_key in zip(dbs, old, new, strict=True):
            if old_key != new_key:
                if old_key is not None:
                    txn.delete(old_key, db=db)
                txn.put(new_key, b"", db=db)

    def _grow(self) -> None:
        with self._gate.exclusive():
            size = int(self._env.info()["map_size"]) * 2
            try:
                self._env.set_mapsize(size)
            except lmdb.Error as error:
                raise StoreError(f"cannot grow the store's map to {size} bytes: {error}") from error

    # --- reads ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        """A read transaction, adopting a map grown by another process when LMDB says so."""
        self._check_open()
        while True:
            with self._gate.shared():
                try:
                    txn = self._env.begin()
                except lmdb.MapResizedError:
                    txn = None
                except lmdb.Error as error:
                    raise _store_error(error, "cannot begin a read transaction") from error
                if txn is not None:
                    try:
                        yield txn
                    except lmdb.Error as error:
                        raise _store_error(error, "read failed") from error
                    finally:
                        txn.abort()
                    return
            with self._gate.exclusive():
                self._env.set_mapsize(0)

    def head(self, workflow_id: str) -> int:
        """The workflow's last sequence number, 0 when unknown."""
        check_workflow_id(workflow_id)
        with self._read() as txn:
            return self._history_head(txn, workflow_id.encode())

    def _history_head(self, txn: Any, wf: bytes) -> int:
        """The sequence number of the workflow's last history key (0 without history)."""
        with txn.cursor(db=self._history) as cursor:
            # The workflow's keys are wf \0 seq; the first key after all of them is at or after wf \1.
            found = cursor.prev() if cursor.set_range(wf + b"\x01") else cursor.last()
            key = cursor.key() if found else b""
        if len(key) != len(wf) + 9 or not key.startswith(wf + b"\x00"):
            return 0
        head: int = _U64.unpack_from(key, len(wf) + 1)[0]
        return head

    def _run_of(self, txn: Any, wf: bytes, data: bytes) -> RunInfo:
        """Decode a stored run record and give it the workflow's head (see the module's docstring)."""
        return with_head(_decode_run(wf.decode(), data), self._history_head(txn, wf))

    def read_history(self, workflow_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The workflow's history after ``after_seq`` (all runs), at most ``limit`` events."""
        check_workflow_id(workflow_id)
        check_limit(limit)
        prefix = workflow_id.encode() + b"\x00"
        raw: list[bytes] = []
        if limit == 0:
            return []
        with self._read() as txn, txn.cursor(db=self._history) as cursor:
            if cursor.set_range(prefix + _U64.pack(max(after_seq, 0) + 1)):
                for key, value in cursor.iternext():
                    if not key.startswith(prefix):
                        break
                    raw.append(value)
                    if limit is not None and len(raw) >= limit:
                        break
        return [decode_event(data) for data in raw]

    def read_run(self, workflow_id: str, run_id: str | None = None) -> list[Event]:
        """One run's events (the current run by default)."""
        check_workflow_id(workflow_id)
        wf = workflow_id.encode()
        prefix = wf + b"\x00"
        events: list[Event] = []
        with self._read() as txn:
            if run_id is None:
                data = txn.get(wf, db=self._runs)
                if data is None:
                    raise WorkflowNotFoundError(workflow_id)
                first = _decode_run(workflow_id, data).run_first_seq
            else:
                entry = txn.get(run_id.encode(), db=self._run_index)
                owner, first = msgpack.unpackb(entry) if entry is not None else (None, 0)
                if owner != workflow_id:
                    raise WorkflowNotFoundError(workflow_id, run_id)
            with txn.cursor(db=self._history) as cursor:
                if cursor.set_range(prefix + _U64.pack(first)):
                    for key, value in cursor.iternext():
                        if not key.startswith(prefix):
                            break
                        event = decode_event(value)
                        if events and isinstance(event, WorkflowStarted):
                            break
                        events.append(event)
        return events

    def get_run(self, workflow_id: str) -> RunInfo | None:
        """The workflow's current run record, or ``None``."""
        check_workflow_id(workflow_id)
        wf = workflow_id.encode()
        with self._read() as txn:
            data = txn.get(wf, db=self._runs)
            return None if data is None else self._run_of(txn, wf, data)

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
        if workflow_type is not None:
            db, prefix = self._vis_type, workflow_type.encode() + b"\x00"
        elif wanted is not None:
            db, prefix = self._vis_status, wanted.value.encode() + b"\x00"
        else:
            db, prefix = self._vis_start, b""
        found: list[RunInfo] = []
        if limit == 0:
            return found
        with self._read() as txn, txn.cursor(db=db) as cursor:
            for key in _scan(cursor, prefix, reverse=newest_first):
                wf = key[len(prefix) + 8 :]
                run = self._run_of(txn, wf, txn.get(wf, db=self._runs))
                if wanted is not None and run.status is not wanted:
                    continue
                found.append(run)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def running_workflows(self) -> Iterator[RunInfo]:
        """Every running workflow, oldest start first, read in pages (one read transaction per page)."""
        prefix = WorkflowStatus.RUNNING.value.encode() + b"\x00"
        after: bytes | None = None
        while True:
            page: list[RunInfo] = []
            with self._read() as txn, txn.cursor(db=self._vis_status) as cursor:
                for key in _scan(cursor, prefix, reverse=False, after=after):
                    wf = key[len(prefix) + 8 :]
                    page.append(self._run_of(txn, wf, txn.get(wf, db=self._runs)))
                    after = key
                    if len(page) >= _PAGE:
                        break
            yield from page
            if len(page) < _PAGE:
                return

    def due_timers(self, before: datetime, limit: int | None = None) -> list[TimerRow]:
        """Timer rows due at or before ``before``, in fire order."""
        bound = _time_key(check_aware(before, "before"))
        check_limit(limit)
        return self._timer_rows(bound, limit)

    def all_timers(self) -> list[TimerRow]:
        """Every timer row, in fire order."""
        return self._timer_rows(None, None)

    def _timer_rows(self, bound: bytes | None, limit: int | None) -> list[TimerRow]:
        rows: list[TimerRow] = []
        if limit == 0:
            return rows
        with self._read() as txn, txn.cursor(db=self._timers) as cursor:
            if cursor.first():
                for key in cursor.iternext(values=False):
                    fire = key[:8]
                    if bound is not None and fire > bound:
                        break
                    wf, kind = key[8:-8].split(b"\x00")[:2]
                    key_id = _U64.unpack(key[-8:])[0]
                    rows.append(TimerRow(_time_of(fire), wf.decode(), kind.decode(), key_id))
                    if limit is not None and len(rows) >= limit:
                        break
        return rows

    # --- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the environment and release the writer lock; further calls raise ``StoreError``."""
        with self._write_lock, self._gate.exclusive():
            if self._closed:
                return
            self._closed = True
            self._env.close()
            self._release_writer_lock()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {str(self.path)!r} is closed")

    def __enter__(self) -> LmdbEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _abort(txn: Any) -> None:
    with contextlib.suppress(lmdb.Error):
        txn.abort()


def _scan(cursor: Any, prefix: bytes, *, reverse: bool, after: bytes | None = None) -> Iterator[bytes]:
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
