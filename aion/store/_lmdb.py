"""``LmdbEventStore``: the durable event store, one LMDB environment per data directory.

The on-disk layout is described in ``_lmdb_format``; the environment, its writer lock and its transactions in
``_lmdb_env``; how a batch lands in the databases in ``_lmdb_write``; the reads in ``_lmdb_read``.

This module owns the store's write path (one write transaction per batch, under the write lock, retried whole
on a full map), the writer's caches of committed run records and heads, the time stamped on a batch (read
from the store's clock, once per batch) and the store's lifecycle. It never lays out bytes itself and never
decides whether an append is allowed.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import lmdb

from aion.clock import SYSTEM_CLOCK, Clock
from aion.codec import PayloadCodec
from aion.errors import AionError, StoreError
from aion.events import Event
from aion.store._checks import check_workflow_id
from aion.store._derive import DEFAULT_MAX_EVENT_BYTES
from aion.store._lmdb_env import DEFAULT_MAP_SIZE, LOCK_FILE, LmdbEnvironment, abort, store_error
from aion.store._lmdb_format import MAGIC, SCHEMA_VERSION
from aion.store._lmdb_read import LmdbReads
from aion.store._lmdb_write import build_index, write_batch
from aion.store._types import AppendRequest, RunInfo
from aion.store._verify import Report, verify
from aion.store._writer_lock import WriterLock

__all__ = ["DEFAULT_MAP_SIZE", "LOCK_FILE", "MAGIC", "SCHEMA_VERSION", "LmdbEventStore"]

#: Run records the writer keeps decoded (it is the only writer, so they cannot go stale); cleared when full.
_RUN_CACHE_SIZE: Final = 16_384


class LmdbEventStore(LmdbReads):
    """An ``EventStore`` in an LMDB environment; open it with :func:`open_store`.

    ``clock`` gives the ``recorded_at`` of every appended batch (and a new store's ``created_at``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        clock: Clock = SYSTEM_CLOCK,
        payload_codec: PayloadCodec | None = None,
        writer_lock: WriterLock | None = None,
        max_map_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._stored_encode = None if payload_codec is None else payload_codec.encode
        self.stored_decode = None if payload_codec is None else payload_codec.decode
        self.readonly = readonly
        self._max_event_bytes = max_event_bytes
        self._clock = clock
        self._write_lock = threading.Lock()
        # The writer's memory of what it has committed (it is the only writer, so it cannot go stale): run records
        # (their head_seq not current) and heads, kept apart so that the usual append changes an int, not a record.
        self._run_cache: dict[str, RunInfo] = {}
        self._head_cache: dict[str, int] = {}
        self.environment = LmdbEnvironment(
            self.path,
            readonly=readonly,
            map_size=map_size,
            clock=clock,
            writer_lock=writer_lock,
            max_map_size=max_map_size,
            upgrade=self._upgrade,
        )
        #: The attributes the visibility index leaves out: the declared ``text`` ones.
        self._unindexed = _text_attributes(self.search_attribute_schema())

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "writer"
        return f"LmdbEventStore({str(self.path)!r}, {mode})"

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
        groups: Sequence[tuple[int, int]] = (),
    ) -> list[list[Event] | AionError]:
        """Several appends in one write transaction and one fsync (see ``EventStore.append_batch``).

        ``groups`` are ``(start, end)`` spans of ``requests`` committed all-or-nothing inside a non-atomic batch:
        a refused request of a group leaves nothing of its group written and its error in every slot of the
        group, while the rest of the batch commits (the recorder puts several atomic appends, such as schedule
        fires, in one transaction this way).

        ``before_commit`` is called once, on this thread, after the batch is written into the transaction and
        just before its commit (not at all if the batch fails first). The recorder resolves the futures of its
        previous, already durable, batch there: see ``aion.recorder``. It must not write to this store."""
        if self.readonly:
            raise StoreError(f"the store at {str(self.path)!r} is open read-only")
        environment = self.environment
        with self._write_lock:
            environment.check_open()
            now = self._clock.now()
            while True:
                txn = environment.begin_write()
                try:
                    results, runs, heads = write_batch(
                        txn,
                        environment.dbs,
                        requests,
                        atomic,
                        now,
                        self._max_event_bytes,
                        self._run_cache,
                        self._head_cache,
                        self._unindexed,
                        groups,
                        self._stored_encode,
                    )
                    if before_commit is not None:
                        hook, before_commit = before_commit, None
                        hook()
                    txn.commit()
                except lmdb.MapFullError:
                    abort(txn)
                    environment.grow()
                    continue
                except lmdb.Error as error:
                    abort(txn)
                    raise store_error(error, "the write transaction failed; nothing was written", self.path) from error
                except BaseException:
                    abort(txn)
                    raise
                # Committed: only now may the run records and heads be remembered.
                if len(self._run_cache) + len(runs) > _RUN_CACHE_SIZE:
                    self._run_cache.clear()
                    self._head_cache.clear()
                self._run_cache.update(runs)
                self._head_cache.update(heads)
                return results

    # --- the declared search attributes ---------------------------------------------------------------------

    def _upgrade(self, txn: Any, dbs: Any, schema: int) -> None:
        if schema < 3:  # schema 3 added the visibility index: build it from the run records
            build_index(txn, dbs, _text_attributes(_read_schema(txn, dbs)))

    def search_attribute_schema(self) -> dict[str, str]:
        """The declared search attributes (name -> type) the store was last given (empty if never)."""
        with self.environment.read() as txn:
            return _read_schema(txn, self.environment.dbs)

    def set_search_attribute_schema(self, schema: Mapping[str, str]) -> None:
        """Keep the declared search attributes (name -> type; checked by the caller); the index is rebuilt in
        the same transaction when they changed, so it always follows the types it is read with."""
        if self.readonly:
            raise StoreError(f"the store at {str(self.path)!r} is open read-only")
        wanted = dict(sorted(schema.items()))
        environment = self.environment
        with self._write_lock:
            environment.check_open()
            while True:
                txn = environment.begin_write()
                try:
                    if _read_schema(txn, environment.dbs) == wanted:
                        abort(txn)
                        return
                    dbs = environment.dbs
                    txn.put(b"search_attributes", json.dumps(wanted).encode(), db=dbs.meta)
                    build_index(txn, dbs, _text_attributes(wanted))
                    txn.commit()
                except lmdb.MapFullError:
                    abort(txn)
                    environment.grow()
                    continue
                except lmdb.Error as error:
                    abort(txn)
                    raise store_error(error, "cannot record the search attributes; nothing was written") from error
                except BaseException:
                    abort(txn)
                    raise
                self._unindexed = _text_attributes(wanted)
                return

    # --- maintenance ---------------------------------------------------------------------------------------

    def verify(self) -> Report:
        """Check the store's invariants (``aion check``): see ``aion.store._verify``."""
        return verify(self.environment)

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the store, consistent and compacted, into ``dest`` (a new or empty directory); its path.

        Safe while an engine writes the store. Restore by putting the copy's ``data.mdb`` in an empty data
        directory (see docs/operations.md)."""
        target = Path(dest)
        try:
            target.mkdir(parents=True, exist_ok=True)
            if any(target.iterdir()):
                raise StoreError(f"the backup directory {str(target)!r} is not empty")
        except OSError as error:
            raise StoreError(f"cannot make the backup directory {str(target)!r}: {error}") from error
        self.environment.copy_to(target)
        return target

    # --- lifecycle -----------------------------------------------------------------------------------------

    def release_cached_pages(self) -> None:
        """Let the OS have back the pages of the store's map that this process holds resident: reading went
        through them, and they count in its RSS until dropped. Nothing stored changes; a later read maps a page
        again from the page cache."""
        self.environment.release_mapped_pages()

    def close(self) -> None:
        """Close the environment and release the writer lock; further calls raise ``StoreError``."""
        with self._write_lock:
            self.environment.close()

    def __enter__(self) -> LmdbEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_schema(txn: Any, dbs: Any) -> dict[str, str]:
    data = txn.get(b"search_attributes", db=dbs.meta)
    if data is None:
        return {}
    try:
        schema = json.loads(bytes(data))
    except ValueError as error:
        raise StoreError(f"the store's search attribute schema is unreadable: {error}") from error
    return {str(name): str(kind) for name, kind in schema.items()}


def _text_attributes(schema: Mapping[str, str]) -> frozenset[str]:
    return frozenset(name for name, kind in schema.items() if kind == "text")
