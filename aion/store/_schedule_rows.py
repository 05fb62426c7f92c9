"""Schedule histories in the store: planning a :class:`~aion.store._types.ScheduleAppend` and reading them back.

A schedule's history is a gapless sequence of schedule events numbered from 1, kept in the ``schedules``
database under ``schedule_id \\0 seq`` (a layout like ``history``'s). The store checks the expected head and stamps
``seq`` and ``recorded_at``; it derives nothing else from these events (the schedule service does). It never
opens a transaction itself: the stores pass it theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from aion._codec import decode_event, encode_event
from aion.errors import InvalidArgumentError, SequenceConflictError
from aion.events import Event, ScheduleEvent
from aion.store._checks import check_workflow_id
from aion.store._derive import stamp
from aion.store._lmdb_format import U64
from aion.store._types import ScheduleAppend


def plan_schedule_append(
    request: ScheduleAppend,
    now: datetime,
    load_head: Callable[[str], int],
    heads: dict[str, int],
    rows: list[tuple[str, int, bytes]],
) -> list[Event]:
    """Check and stamp one schedule append (``heads`` chains the appends of one batch, ``load_head`` reads the
    stored head); add its rows to ``rows`` and return the stamped events."""
    schedule_id = check_workflow_id(request.workflow_id)
    head = heads[schedule_id] if schedule_id in heads else load_head(schedule_id)
    if request.expected_head != head:
        raise SequenceConflictError(schedule_id, request.expected_head, head)
    stamped: list[Event] = []
    for event in request.events:
        if not isinstance(event, ScheduleEvent) or event.workflow_id != schedule_id:
            raise InvalidArgumentError(f"not an event of schedule {schedule_id!r}: {event!r}")
        head += 1
        done = stamp(event, head, now)
        rows.append((schedule_id, head, encode_event(done)))
        stamped.append(done)
    heads[schedule_id] = head
    return stamped


def schedule_key(schedule_id: str, seq: int) -> bytes:
    """The key of one event of a schedule's history."""
    return schedule_id.encode() + b"\x00" + U64.pack(seq)


def lmdb_schedule_head(txn: Any, db: Any, schedule_id: str) -> int:
    """The last seq of a schedule's history in the ``schedules`` database (0 without one)."""
    prefix = schedule_id.encode()
    with txn.cursor(db=db) as cursor:
        found = cursor.prev() if cursor.set_range(prefix + b"\x01") else cursor.last()
        key = cursor.key() if found else b""
    if len(key) != len(prefix) + 9 or not key.startswith(prefix + b"\x00"):
        return 0
    head: int = U64.unpack_from(key, len(prefix) + 1)[0]
    return head


def lmdb_schedule_history(txn: Any, db: Any, schedule_id: str) -> list[Event]:
    """Every event of a schedule's history, in order."""
    prefix = schedule_id.encode() + b"\x00"
    events: list[Event] = []
    with txn.cursor(db=db) as cursor:
        if cursor.set_range(prefix):
            for key, value in cursor.iternext():
                if not key.startswith(prefix):
                    break
                events.append(decode_event(value))
    return events


def lmdb_schedule_ids(txn: Any, db: Any) -> Iterator[str]:
    """The id of every schedule that has a history, in id order."""
    last: bytes | None = None
    with txn.cursor(db=db) as cursor:
        for key in cursor.iternext(values=False):
            schedule_id = key[:-9]
            if schedule_id != last:
                last = schedule_id
                yield schedule_id.decode()
