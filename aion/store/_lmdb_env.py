"""The LMDB environment of a data directory: the writer lock, opening (create, check, upgrade), the read gate,
read and write transactions, growing the map, closing.

A process holds the data directory as writer through ``flock`` on ``writer.lock``; read-only opens from other
processes do not take it. Every write transaction is committed with ``sync`` and ``metasync`` (an fsync per
commit); a full map is grown by the caller (abort, :meth:`LmdbEnvironment.grow`, retry the whole transaction),
so no write is ever torn.

It owns the environment's life and its locks, and nothing of what the databases hold beyond the ``meta`` keys:
it never reads or writes history, run records or indexes (``_lmdb_write`` and ``_lmdb_read`` do).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lmdb

from aion.clock import Clock
from aion.errors import StoreError, StoreFormatError, StoreLockedError
from aion.store._lmdb_format import DB_NAMES, MAGIC, SCHEMA_VERSION

#: Initial map size; the map doubles whenever a write transaction fills it.
DEFAULT_MAP_SIZE: Final = 64 * 1024 * 1024
#: Name of the writer lock file inside the data directory.
LOCK_FILE: Final = "writer.lock"


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


def store_error(error: lmdb.Error, doing: str) -> StoreError:
    """The aion error for an LMDB error met while ``doing`` something: a format error for a bad file."""
    if isinstance(error, (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.CorruptedError)):
        return StoreFormatError(f"{doing}: {error}")
    return StoreError(f"{doing}: {error}")


def abort(txn: Any) -> None:
    """Abort ``txn``, ignoring LMDB's complaints (it may already be dead)."""
    with contextlib.suppress(lmdb.Error):
        txn.abort()


#: Upgrades a store's contents from an older schema inside the opening write transaction: ``(txn, dbs, schema)``.
Upgrade = Callable[[Any, "Databases", int], None]
#: Databases a schema older than the current one may lack (opened read-only, they are ``None``).
_ADDED_LATER: Final = frozenset({b"vis_attr"})


class LmdbEnvironment:
    """One opened environment: takes the writer lock (unless ``readonly``), opens or creates the store, and
    checks or upgrades its schema (``upgrade`` rewrites what an older schema lacks, in the transaction that marks
    the new schema). ``clock`` stamps a new store's ``created_at``."""

    def __init__(
        self, path: Path, *, readonly: bool, map_size: int, clock: Clock, upgrade: Upgrade | None = None
    ) -> None:
        self.path = path
        self._upgrade = upgrade
        self.readonly = readonly
        self._clock = clock
        self.gate = ReadGate()
        self.closed = False
        self._lock_fd: int | None = None
        if not readonly:
            self._lock_fd = self._take_writer_lock()
        try:
            self.env = self._open_env(map_size)
            try:
                dbs = self._open_dbs()
            except BaseException:
                self.env.close()
                raise
        except BaseException:
            self._release_writer_lock()
            raise
        self.dbs = Databases(*(dbs.get(name) for name in DB_NAMES))

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
                max_dbs=len(DB_NAMES) + 6,
                max_readers=254,
                max_spare_txns=4,
                mode=0o700,
            )
        except lmdb.Error as error:
            raise store_error(error, f"cannot open the store at {str(self.path)!r}") from error

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

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """A read transaction, adopting a map grown by another process when LMDB says so."""
        self.check_open()
        while True:
            with self.gate.shared():
                try:
                    txn = self.env.begin()
                except lmdb.MapResizedError:
                    txn = None
                except lmdb.Error as error:
                    raise store_error(error, "cannot begin a read transaction") from error
                if txn is not None:
                    try:
                        yield txn
                    except lmdb.Error as error:
                        raise store_error(error, "read failed") from error
                    finally:
                        txn.abort()
                    return
            with self.gate.exclusive():
                self.env.set_mapsize(0)

    def begin_write(self) -> Any:
        """A write transaction (the caller holds the store's write lock and commits or aborts it)."""
        try:
            return self.env.begin(write=True)
        except lmdb.Error as error:
            raise store_error(error, "cannot begin a write transaction") from error

    def grow(self) -> None:
        """Double the map (no transaction of this process may be active: the caller aborted its own)."""
        with self.gate.exclusive():
            size = int(self.env.info()["map_size"]) * 2
            try:
                self.env.set_mapsize(size)
            except lmdb.Error as error:
                raise StoreError(f"cannot grow the store's map to {size} bytes: {error}") from error

    def close(self) -> None:
        """Close the environment and release the writer lock (once; the caller holds the write lock)."""
        with self.gate.exclusive():
            if self.closed:
                return
            self.closed = True
            self.env.close()
            self._release_writer_lock()
