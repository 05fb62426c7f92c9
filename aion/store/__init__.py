"""The event store: durable workflow histories and the indexes derived from them.

Open the durable store of a data directory with :func:`open_store`; use :class:`MemoryEventStore` in tests.
Both implement :class:`EventStore`. In the engine only the recorder (``aion.recorder``) writes to a store;
readers (the CLI, visibility) may open the same directory read-only from other processes.

Both stores share the argument checks (``_checks``), the rules of one append (``_derive``) and the planning of a
batch (``_plan``). The LMDB store is ``_lmdb`` (its write path and lifecycle) over ``_lmdb_format`` (the bytes on
disk), ``_lmdb_env`` (the environment, its lock and transactions), ``_lmdb_write`` and ``_lmdb_read``.
"""

from __future__ import annotations

import os

from aion.clock import SYSTEM_CLOCK, Clock
from aion.codec import PayloadCodec
from aion.store._derive import DEFAULT_MAX_EVENT_BYTES
from aion.store._lmdb import DEFAULT_MAP_SIZE, SCHEMA_VERSION, LmdbEventStore
from aion.store._memory import MemoryEventStore
from aion.store._protocol import EventStore, read_started
from aion.store._types import (
    ACTIVITY_RETRY,
    EXECUTION_TIMEOUT,
    RUN_TIMEOUT,
    TIMER,
    TIMER_KINDS,
    AppendRequest,
    RunInfo,
    ScheduleAppend,
    TimerRow,
)
from aion.store._writer_lock import WriterLock

__all__ = [
    "ACTIVITY_RETRY",
    "EXECUTION_TIMEOUT",
    "RUN_TIMEOUT",
    "SCHEMA_VERSION",
    "TIMER",
    "TIMER_KINDS",
    "AppendRequest",
    "EventStore",
    "LmdbEventStore",
    "MemoryEventStore",
    "RunInfo",
    "ScheduleAppend",
    "TimerRow",
    "WriterLock",
    "open_store",
    "read_started",
]


def open_store(
    path: str | os.PathLike[str],
    *,
    readonly: bool = False,
    map_size: int = DEFAULT_MAP_SIZE,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    clock: Clock = SYSTEM_CLOCK,
    payload_codec: PayloadCodec | None = None,
    writer_lock: WriterLock | None = None,
    max_map_size: int | None = None,
) -> LmdbEventStore:
    """Open the aion store in the data directory ``path`` (created unless ``readonly``).

    A writer takes an exclusive ``flock`` on the directory's ``data.mdb`` (or adopts ``writer_lock``, taken
    earlier with `WriterLock.acquire`): a second writer gets ``StoreLockedError`` naming the holder's pid;
    read-only opens from other processes are allowed beside it. An empty, truncated or damaged data file raises
    ``StoreFormatError``; a new store is created only in an empty or new directory. ``max_map_size`` bounds the
    store (``StoreFullError`` past it, as on a full disk). A directory that is not an aion store, or was written by
    a newer schema, raises ``StoreFormatError``; other I/O failures raise ``StoreError``. ``map_size`` is the
    initial LMDB map size (it doubles on demand); ``max_event_bytes`` bounds one encoded event
    (``PayloadTooLargeError`` beyond it). ``clock`` stamps the ``recorded_at`` of appended events.
    ``payload_codec`` (``aion.PayloadCodec``) encodes every event's bytes as stored and decodes them as read.
    """
    return LmdbEventStore(
        path,
        readonly=readonly,
        map_size=map_size,
        max_event_bytes=max_event_bytes,
        clock=clock,
        payload_codec=payload_codec,
        writer_lock=writer_lock,
        max_map_size=max_map_size,
    )
