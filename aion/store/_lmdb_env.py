"""The LMDB environment of a data directory: the writer lock, opening (create, check, upgrade), the read gate,
read and write transactions, growing the map, closing.

A process holds the data directory as writer through ``flock`` on ``data.mdb`` itself (``_writer_lock``);
read-only opens from other processes do not take it. A data file shorter than its own meta pages say (a
truncated copy) is refused before any page is read, so a damaged file raises ``StoreFormatError`` instead of
killing the process with ``SIGBUS``. A reader that may not write ``lock.mdb`` opens without LMDB's lock (see
``_open_env``). Every write transaction is committed with ``sync`` and ``metasync`` (an fsync per
commit); a full map is grown by the caller (abort, :meth:`LmdbEnvironment.grow`, retry the whole transaction),
so no write is ever torn.

It owns the environment's life and its locks, and nothing of what the databases hold beyond the ``meta`` keys:
it never reads or writes history, run records or indexes (``_lmdb_write`` and ``_lmdb_read`` do).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lmdb

from aion.clock import Clock
from aion.errors import StoreError, StoreFormatError, StoreFullError
from aion.store._lmdb_format import DB_NAMES, MAGIC, SCHEMA_VERSION
from aion.store._map_pages import release_mapped_pages
from aion.store._writer_lock import DATA_FILE, LOCK_FILE, WriterLock

#: Initial map size; the map doubles whenever a write transaction fills it.
DEFAULT_MAP_SIZE: Final = 64 * 1024 * 1024
__all__ = ["DEFAULT_MAP_SIZE", "LOCK_FILE", "Databases", "LmdbEnvironment", "ReadGate", "abort", "store_error"]


@dataclass(frozen=True, slots=True)
class Databases:
    """The handles of the environment's named databases (see ``_lmdb_format``)."""

    meta: Any
    history: Any
    runs: Any
    run_index: Any
    vis_status: Any
    vis_type: Any
    vis_start: Any
    timers: Any
    timers_by_wf: Any
    schedules: Any
    #: ``None`` in a store opened read-only before schema 3 built it (queries then scan the run records).
    vis_attr: Any


class ReadGate:
    """Many readers or one map resize: LMDB's ``set_mapsize`` needs no transaction active in the process."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._exclusive = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.leave_shared()

    def enter_shared(self) -> None:
        """Take a reader's share (waiting out a resize); :meth:`leave_shared` gives it back."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._readers += 1

    def leave_shared(self) -> None:
        """Give back a reader's share taken with :meth:`enter_shared`."""
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


def store_error(error: lmdb.Error, doing: str, path: Path | None = None) -> StoreError:
    """The aion error for an LMDB error met while ``doing`` something: a format error for a bad file, a full
    error for a full disk (LMDB reports a short write on a full disk as an I/O error: the free space of
    ``path``'s file system tells them apart)."""
    if isinstance(error, (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.CorruptedError, lmdb.PageNotFoundError)):
        return StoreFormatError(f"{doing}: the data file is damaged or not an LMDB store: {error}")
    if isinstance(error, lmdb.DiskError) or (path is not None and _disk_full(path, error)):
        return StoreFullError(
            f"{doing}: the disk is full ({error}); nothing of this write was recorded. Free space on the data "
            "directory's file system (or move it to a larger one): the engine retries and goes on by itself"
        )
    return StoreError(f"{doing}: {error}")


#: Below this many free bytes, an I/O error of a write is taken for a full disk.
_FULL_MARGIN: Final = 4 * 1024 * 1024


def _disk_full(path: Path, error: lmdb.Error) -> bool:
    """True if ``error`` is an I/O error while ``path``'s file system has (almost) no space left."""
    if "Input/output error" not in str(error) and "No space left" not in str(error):
        return False
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_MARGIN


def abort(txn: Any) -> None:
    """Abort ``txn``, ignoring LMDB's complaints (it may already be dead)."""
    with contextlib.suppress(lmdb.Error):
        txn.abort()


#: Upgrades a store's contents from an older schema inside the opening write transaction: ``(txn, dbs, schema)``.
Upgrade = Callable[[Any, "Databases", int], None]
#: Databases a schema older than the current one may lack (opened read-only, they are ``None``).
_ADDED_LATER: Final = frozenset({b"vis_attr"})


class LmdbEnvironment:
    """One opened environment: takes the writer lock (unless ``readonly``, or adopts ``writer_lock`` taken
    earlier), opens or creates the store, and checks or upgrades its schema. ``clock`` stamps a new store's
    ``created_at``."""

    def __init__(
        self,
        path: Path,
        *,
        readonly: bool,
        map_size: int,
        clock: Clock,
        writer_lock: WriterLock | None = None,
        max_map_size: int | None = None,
        upgrade: Upgrade | None = None,
    ) -> None:
        self.path = path
        self._upgrade = upgrade
        self.max_map_size = max_map_size
        """The map never grows past this many bytes (`StoreFullError` instead); None: only the disk bounds it."""
        self.readonly = readonly
        self._clock = clock
        self.gate = ReadGate()
        self.closed = False
        self.locked = True
        """False for a reader that opened without LMDB's lock (it may not write ``lock.mdb``)."""
        self._writer_lock: WriterLock | None = None
        if not readonly:
            self._writer_lock = writer_lock if writer_lock is not None else WriterLock.acquire(path)
        try:
            self.env = self._open_env(map_size if max_map_size is None else min(map_size, max_map_size))
            try:
                self._check_size()
                dbs = self._open_dbs()
            except BaseException:
                self.env.close()
                raise
        except BaseException:
            self._release_writer_lock()
            raise
        self.dbs = Databases(*(dbs.get(name) for name in DB_NAMES))

    # --- opening -------------------------------------------------------------------------------------------

    def _release_writer_lock(self) -> None:
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None

    def _open_env(self, map_size: int) -> lmdb.Environment:
        data = self.path / DATA_FILE
        if self.readonly and not data.is_file():
            raise StoreError(f"no aion store at {str(self.path)!r}")
        if self.readonly and data.stat().st_size == 0:
            raise StoreFormatError(f"{str(data)!r} is empty: it is not an aion store")
        try:
            return self._lmdb_open(map_size, lock=True)
        except lmdb.Error as error:
            if not (self.readonly and _denied(error)):
                raise store_error(error, f"cannot open the store at {str(self.path)!r}") from error
        # A reader that may not write lock.mdb (read permission only, a read-only mount): without LMDB's lock it
        # is not registered in the reader table, so a writer committing meanwhile may reuse pages a long read
        # transaction still reads. The CLI's reads are short ones; see docs/operations.md.
        self.locked = False
        try:
            return self._lmdb_open(map_size, lock=False)
        except lmdb.Error as error:
            raise store_error(error, f"cannot open the store at {str(self.path)!r}") from error

    def _lmdb_open(self, map_size: int, *, lock: bool) -> lmdb.Environment:
        try:
            return lmdb.open(
                str(self.path),
                map_size=map_size,
                subdir=True,
                readonly=self.readonly,
                create=not self.readonly,
                lock=lock,
                sync=True,
                metasync=True,
                writemap=False,
                map_async=False,
                max_dbs=len(DB_NAMES) + 6,
                max_readers=254,
                max_spare_txns=4,
                mode=0o700,
            )
        except OSError as error:
            raise StoreError(f"cannot open the store at {str(self.path)!r}: {error}") from error

    def _check_size(self) -> None:
        """Refuse a data file shorter than its meta pages say: a page past its end would be read through the map
        and kill the process with SIGBUS."""
        info = self.env.info()
        needed = (int(info["last_pgno"]) + 1) * int(self.env.stat()["psize"])
        size = os.stat(self.path / DATA_FILE).st_size
        if size < needed:
            raise StoreFormatError(
                f"{str(self.path / DATA_FILE)!r} is truncated: {size} bytes, but its pages reach {needed} bytes; "
                "restore a backup (see docs/operations.md)"
            )

    def _open_dbs(self) -> dict[bytes, Any]:
        where = str(self.path)
        try:
            with self.env.begin() as txn:
                names = {bytes(key) for key, _ in txn.cursor()}
            if not names and not self.readonly:
                return self._initialise()
            if b"meta" not in names:
                raise StoreFormatError(f"{where!r} holds an LMDB environment that is not an aion store")
            meta = self.env.open_db(b"meta", create=False)
            with self.env.begin(db=meta) as txn:
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
                missing = [name.decode() for name in DB_NAMES if name not in names and name not in _ADDED_LATER]
                if missing:
                    raise StoreFormatError(f"{where!r} lacks the databases {missing}")
                return {name: self.env.open_db(name, create=False) for name in DB_NAMES if name in names}
            while True:
                try:
                    return self._open_for_writing(schema)
                except lmdb.MapFullError:  # an upgrade wrote more than the map holds: nothing was written
                    self.env.set_mapsize(int(self.env.info()["map_size"]) * 2)
        except lmdb.Error as error:
            raise store_error(error, f"cannot read the store at {where!r}") from error

    def _open_for_writing(self, schema: int) -> dict[bytes, Any]:
        with self.env.begin(write=True) as txn:
            dbs = {name: self.env.open_db(name, txn=txn) for name in DB_NAMES}
            if schema < SCHEMA_VERSION:  # schema 2: stale heads in run records; schema 3: the vis_attr index
                if self._upgrade is not None:
                    self._upgrade(txn, Databases(*(dbs[name] for name in DB_NAMES)), schema)
                txn.put(b"schema_version", str(SCHEMA_VERSION).encode(), db=dbs[b"meta"])
            return dbs

    def _initialise(self) -> dict[bytes, Any]:
        with self.env.begin(write=True) as txn:
            dbs = {name: self.env.open_db(name, txn=txn) for name in DB_NAMES}
            txn.put(b"magic", MAGIC, db=dbs[b"meta"])
            txn.put(b"schema_version", str(SCHEMA_VERSION).encode(), db=dbs[b"meta"])
            txn.put(b"created_at", self._clock.now().isoformat().encode(), db=dbs[b"meta"])
        return dbs

    # --- transactions --------------------------------------------------------------------------------------

    def check_open(self) -> None:
        """Raise ``StoreError`` once the environment is closed."""
        if self.closed:
            raise StoreError(f"the store at {str(self.path)!r} is closed")

    def read(self) -> _ReadTransaction:
        """A read transaction (a context manager giving the LMDB transaction), adopting a map grown by another
        process when LMDB says so."""
        return _ReadTransaction(self)

    def begin_write(self) -> Any:
        """A write transaction (the caller holds the store's write lock and commits or aborts it)."""
        try:
            return self.env.begin(write=True)
        except lmdb.Error as error:
            raise store_error(error, "cannot begin a write transaction") from error

    def grow(self) -> None:
        """Double the map (no transaction of this process may be active: the caller aborted its own)."""
        with self.gate.exclusive():
            current = int(self.env.info()["map_size"])
            size = current * 2
            if self.max_map_size is not None:
                if current >= self.max_map_size:
                    raise StoreFullError(
                        f"the store at {str(self.path)!r} reached its map_size of {self.max_map_size} bytes; nothing "
                        "of this write was recorded. Restart the engine with a larger Engine(map_size=...)"
                    )
                size = min(size, self.max_map_size)
            try:
                self.env.set_mapsize(size)
            except lmdb.Error as error:
                raise store_error(error, f"cannot grow the store's map to {size} bytes", self.path) from error

    def release_mapped_pages(self) -> int:
        """Drop this process's resident pages of the map (they stay in the OS page cache); how many bytes of
        mapping were advised. Under the read gate: no remap can move the map meanwhile."""
        with self.gate.shared():
            if self.closed:
                return 0
            return release_mapped_pages(self.path / DATA_FILE)

    def copy_to(self, dest: Path) -> None:
        """A consistent, compacted copy of the store into the empty directory ``dest`` (LMDB's copy runs in one
        read transaction: a running writer goes on meanwhile)."""
        self.check_open()
        with self.gate.shared():
            try:
                self.env.copy(str(dest), compact=True)
            except lmdb.Error as error:
                raise store_error(error, f"cannot copy the store to {str(dest)!r}", dest) from error

    def close(self) -> None:
        """Close the environment and release the writer lock (once; the caller holds the write lock)."""
        with self.gate.exclusive():
            if self.closed:
                return
            self.closed = True
            self.env.close()
            self._release_writer_lock()


def _denied(error: lmdb.Error) -> bool:
    """True if LMDB failed for lack of permission on the lock file (or a read-only file system)."""
    text = str(error)
    return isinstance(error, lmdb.ReadonlyError) or "Permission denied" in text or "Read-only file system" in text


class _ReadTransaction:
    """:meth:`LmdbEnvironment.read`: a class, not a generator context manager, as every store read enters one
    (a generator's enter and exit cost more than LMDB's own ``begin`` and ``abort``)."""

    __slots__ = ("_environment", "_txn")

    def __init__(self, environment: LmdbEnvironment) -> None:
        self._environment = environment
        self._txn: Any = None

    def __enter__(self) -> Any:
        environment = self._environment
        environment.check_open()
        gate = environment.gate
        while True:
            gate.enter_shared()
            try:
                txn = environment.env.begin()
            except lmdb.MapResizedError:
                gate.leave_shared()
                with gate.exclusive():
                    environment.env.set_mapsize(0)
                continue
            except lmdb.Error as error:
                gate.leave_shared()
                raise store_error(error, "cannot begin a read transaction") from error
            except BaseException:
                gate.leave_shared()
                raise
            self._txn = txn
            return txn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            self._txn.abort()
        finally:
            self._environment.gate.leave_shared()
        if isinstance(exc, lmdb.Error):
            raise store_error(exc, "read failed") from exc
