"""The writes of the LMDB store inside one write transaction: a planned batch's history rows, run records,
visibility keys, run index entries and timer rows.

It owns how a :class:`~aion.store._plan.BatchPlan` lands in the databases. It never begins, commits or
aborts a transaction (the store does, under its write lock), never decides whether an append is allowed
(``_derive`` and ``_plan`` do) and never reads the clock (``now`` is the caller's).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgpack

from aion.errors import AionError, StoreError
from aion.events import Event
from aion.store._derive import Applied, TimerClear, TimerDelete, TimerPut
from aion.store._lmdb_env import Databases
from aion.store._lmdb_format import (
    KEY_SUFFIXES,
    KEY_TABLE_SIZE,
    U64,
    decode_run,
    encode_run,
    key_suffix,
    time_key,
    vis_keys,
)
from aion.store._lmdb_read import history_head
from aion.store._plan import plan_batch
from aion.store._schedule_rows import lmdb_schedule_head, schedule_key
from aion.store._types import AppendRequest, RunInfo
from aion.visibility._keys import index_key_changes, index_keys


def write_batch(  # noqa: PLR0917 (the writer's path: no keyword arguments)
    txn: Any,
    dbs: Databases,
    requests: Sequence[AppendRequest],
    atomic: bool,
    now: datetime,
    max_event_bytes: int,
    cached_runs: Mapping[str, RunInfo],
    cached_heads: Mapping[str, int],
    unindexed: Collection[str] = (),
    groups: Sequence[tuple[int, int]] = (),
    encode: Callable[[bytes], bytes] | None = None,
) -> tuple[list[list[Event] | AionError], dict[str, RunInfo], dict[str, int]]:
    """Plan ``requests`` against the stored (or cached) run records and write the plan into ``txn``; return
    the per-request results, and the run records and heads of the workflows the batch loaded or wrote.
    ``unindexed`` names the attributes the visibility index leaves out (``text``); ``groups`` are the batch's
    atomic groups (see :func:`~aion.store._plan.plan_batch`)."""
    runs_db = dbs.runs
    run_index = dbs.run_index

    def load_run(workflow_id: str) -> tuple[RunInfo | None, int]:
        wf = workflow_id.encode()
        data = txn.get(wf, db=runs_db)
        if data is None:
            return None, 0
        return decode_run(workflow_id, data), history_head(txn, dbs, wf)

    def run_id_taken(run_id: str) -> bool:
        return txn.get(run_id.encode(), db=run_index) is not None

    plan = plan_batch(
        requests,
        atomic=atomic,
        now=now,
        load_run=load_run,
        run_id_taken=run_id_taken,
        max_event_bytes=max_event_bytes,
        cached_runs=cached_runs,
        cached_heads=cached_heads,
        load_schedule_head=lambda schedule_id: lmdb_schedule_head(txn, dbs.schedules, schedule_id),
        groups=groups,
    )
    for schedule_id, seq, data in plan.schedules:
        if not txn.put(schedule_key(schedule_id, seq), data, db=dbs.schedules, overwrite=False):
            raise StoreError(f"schedule {schedule_id!r} already holds seq {seq}: nothing was written")
    history = plan.history
    if encode is not None:  # the payload codec: every event's bytes as stored
        history = [(workflow_id, seq, encode(data)) for workflow_id, seq, data in history]
    write_history(txn, dbs, history, plan.derived)
    after = plan.after
    for workflow_id, before in plan.changed.items():
        write_run(txn, dbs, workflow_id.encode(), before, after[workflow_id], unindexed)
    return plan.results, after, plan.heads


def write_history(txn: Any, dbs: Databases, history: list[tuple[str, int, bytes]], derived: list[Applied]) -> None:
    """Put every event of the batch in one call (``putmulti``), and what its appends derive."""
    pack = U64.pack
    suffixes = KEY_SUFFIXES
    items = [
        (
            workflow_id.encode()
            + ((suffixes[seq] or key_suffix(seq)) if seq < KEY_TABLE_SIZE else b"\x00" + pack(seq)),
            data,
        )
        for workflow_id, seq, data in history
    ]
    for applied in derived:
        write_derived(txn, dbs, applied.workflow_id.encode() + b"\x00", applied)
    with txn.cursor(db=dbs.history) as cursor:
        _, added = cursor.putmulti(items, dupdata=False, overwrite=False)
    if added != len(items):  # never, while run records and history agree: the batch is aborted
        taken = [key for key, data in items if txn.get(key, db=dbs.history) != data]
        raise StoreError(f"the history already holds the keys {taken!r}: nothing was written")


def write_derived(txn: Any, dbs: Databases, prefix: bytes, applied: Applied) -> None:
    """The run index entries and timer rows of one append."""
    pack = U64.pack
    put = txn.put
    for run_id, first_seq in applied.new_runs:
        put(run_id.encode(), msgpack.packb([applied.workflow_id, first_seq]), db=dbs.run_index)
    for op in applied.timer_ops:
        if isinstance(op, TimerPut):
            by_wf = prefix + op.kind.encode() + b"\x00" + pack(op.key)
            old = txn.get(by_wf, db=dbs.timers_by_wf)
            if old is not None:
                txn.delete(old + by_wf, db=dbs.timers)
            fire = time_key(op.fire_at)
            put(fire + by_wf, b"", db=dbs.timers)
            put(by_wf, fire, db=dbs.timers_by_wf)
        elif isinstance(op, TimerDelete):
            by_wf = prefix + op.kind.encode() + b"\x00" + pack(op.key)
            old = txn.pop(by_wf, db=dbs.timers_by_wf)
            if old is not None:
                txn.delete(old + by_wf, db=dbs.timers)
        elif isinstance(op, TimerClear):
            rows = []
            with txn.cursor(db=dbs.timers_by_wf) as cursor:
                if cursor.set_range(prefix):
                    for key, fire in cursor.iternext():
                        if not key.startswith(prefix):
                            break
                        rows.append((key, fire))
            for key, fire in rows:
                txn.delete(key, db=dbs.timers_by_wf)
                txn.delete(fire + key, db=dbs.timers)


def write_run(  # noqa: PLR0917 (the writer's path: no keyword arguments)
    txn: Any, dbs: Databases, wf: bytes, before: RunInfo | None, after: RunInfo, unindexed: Collection[str] = ()
) -> None:
    """Put the run record of a workflow and move its visibility keys when they changed."""
    txn.put(wf, encode_run(after), db=dbs.runs)
    removed, added = index_key_changes(before, after, unindexed)
    for key in removed:
        txn.delete(key, db=dbs.vis_attr)
    for key in added:
        txn.put(key, b"", db=dbs.vis_attr)
    if (
        before is not None
        and before.status is after.status
        and before.start_time == after.start_time
        and before.workflow_type == after.workflow_type
    ):
        return  # only the head or the attributes moved: the start-ordered keys stay
    new = vis_keys(after, wf)
    old = vis_keys(before, wf) if before is not None else (None, None, None)
    for db, old_key, new_key in zip((dbs.vis_status, dbs.vis_type, dbs.vis_start), old, new, strict=True):
        if old_key != new_key:
            if old_key is not None:
                txn.delete(old_key, db=db)
            txn.put(new_key, b"", db=db)


def build_index(txn: Any, dbs: Databases, unindexed: Collection[str] = ()) -> int:
    """(Re)build the ``vis_attr`` index from every run record; return how many runs it holds."""
    txn.drop(dbs.vis_attr, delete=False)
    runs = 0
    with txn.cursor(db=dbs.runs) as cursor:
        for wf, data in cursor:
            for key in index_keys(decode_run(bytes(wf).decode(), data), unindexed):
                txn.put(key, b"", db=dbs.vis_attr)
            runs += 1
    return runs
