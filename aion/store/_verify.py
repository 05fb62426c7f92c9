"""Verifying a store (``aion check``): every history gapless from 1, exactly one terminal event per closed run,
the run records, the run index and the visibility indexes in agreement with the histories.

Everything is read in one read transaction, so a store being written by a running engine is checked at one
consistent point. It reports problems as sentences; it never changes the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from aion._codec import decode_event
from aion.events import Event, WorkflowStarted
from aion.store._lmdb_env import Databases, LmdbEnvironment
from aion.store._lmdb_format import U64, decode_run, vis_keys
from aion.visibility._keys import index_keys

#: At most this many problems are listed (a store damaged everywhere would list one per event).
MAX_PROBLEMS = 1000


@dataclass
class Report:
    """What `verify` found: counts and problems (empty when the store is sound)."""

    workflows: int = 0
    events: int = 0
    runs: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        """Note a problem (up to `MAX_PROBLEMS`)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "ok": self.ok,
            "workflows": self.workflows,
            "runs": self.runs,
            "events": self.events,
            "problems": list(self.problems),
        }


def _histories(txn: Any, dbs: Databases) -> Iterator[tuple[bytes, list[tuple[int, bytes]]]]:
    """Each workflow's history keys' seqs and values, workflow by workflow."""
    current: bytes | None = None
    rows: list[tuple[int, bytes]] = []
    with txn.cursor(db=dbs.history) as cursor:
        for key, value in cursor.iternext():
            wf, seq = bytes(key[:-9]), U64.unpack(key[-8:])[0]
            if wf != current:
                if current is not None:
                    yield current, rows
                current, rows = wf, []
            rows.append((seq, bytes(value)))
    if current is not None:
        yield current, rows


def verify(environment: LmdbEnvironment) -> Report:
    """Check the store's invariants; the report lists every problem found."""
    report = Report()
    dbs = environment.dbs
    with environment.read() as txn:
        started_runs: dict[bytes, tuple[bytes, int]] = {}
        seen: set[bytes] = set()
        for wf, rows in _histories(txn, dbs):
            seen.add(wf)
            report.workflows += 1
            report.events += len(rows)
            _check_history(txn, dbs, wf, rows, report=report, started_runs=started_runs)
        _check_orphan_records(txn, dbs, seen, report)
        _check_run_index(txn, dbs, started_runs, report)
        _check_attribute_index(txn, dbs, report)
    return report


def _check_history(
    txn: Any,
    dbs: Databases,
    wf: bytes,
    rows: list[tuple[int, bytes]],
    *,
    report: Report,
    started_runs: dict[bytes, tuple[bytes, int]],
) -> None:
    name = wf.decode(errors="replace")
    seqs = [seq for seq, _ in rows]
    if seqs != list(range(1, len(seqs) + 1)):
        missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        report.problem(f"{name}: history is not gapless from 1 (missing seqs {missing[:10]})")
    events: list[Event] = []
    for seq, value in rows:
        try:
            event = decode_event(value)
        except Exception as error:
            report.problem(f"{name}: event {seq} cannot be decoded: {error}")
            return
        if event.seq != seq or event.workflow_id != name:
            report.problem(f"{name}: event {seq} says it is {event.workflow_id!r} #{event.seq}")
        events.append(event)
    runs: list[list[Event]] = []
    for event in events:
        if isinstance(event, WorkflowStarted) or not runs:
            if not isinstance(event, WorkflowStarted):
                report.problem(f"{name}: history does not begin with WorkflowStarted")
            runs.append([])
        runs[-1].append(event)
    report.runs += len(runs)
    for index, run in enumerate(runs):
        terminals = [e for e in run if e.terminal]
        last = index == len(runs) - 1
        if not last and len(terminals) != 1:
            report.problem(f"{name}: run {index + 1} has {len(terminals)} terminal events, not exactly one")
        if last and len(terminals) > 1:
            report.problem(f"{name}: its current run has {len(terminals)} terminal events")
        if terminals and run[-1] is not terminals[0]:
            report.problem(f"{name}: run {index + 1} has events after its terminal event")
        first = run[0]
        if isinstance(first, WorkflowStarted):
            started_runs[first.run_id.encode()] = (wf, first.seq)
    _check_record(txn, dbs, wf, runs, report)


def _check_record(txn: Any, dbs: Databases, wf: bytes, runs: list[list[Event]], report: Report) -> None:
    name = wf.decode(errors="replace")
    data = txn.get(wf, db=dbs.runs)
    if data is None:
        report.problem(f"{name}: has a history but no run record")
        return
    try:
        record = decode_run(name, bytes(data))
    except Exception as error:
        report.problem(f"{name}: {error}")
        return
    current = runs[-1]
    first = current[0]
    if not isinstance(first, WorkflowStarted):
        return
    closed = bool(current) and current[-1].terminal
    if record.run_id != first.run_id or record.run_first_seq != first.seq:
        report.problem(
            f"{name}: the run record names run {record.run_id} at {record.run_first_seq}, history "
            f"{first.run_id} at {first.seq}"
        )
    if record.workflow_type != first.workflow_type:
        report.problem(f"{name}: the run record's type {record.workflow_type!r} is not {first.workflow_type!r}")
    if closed == record.status.is_open:
        report.problem(
            f"{name}: the run record says {record.status.value}, the history says {'closed' if closed else 'running'}"
        )
    for db, key, index in zip(
        (dbs.vis_status, dbs.vis_type, dbs.vis_start), vis_keys(record, wf), ("status", "type", "start"), strict=True
    ):
        if txn.get(key, db=db) is None:
            report.problem(f"{name}: missing from the {index} index")


def _check_orphan_records(txn: Any, dbs: Databases, seen: set[bytes], report: Report) -> None:
    with txn.cursor(db=dbs.runs) as cursor:
        for key in cursor.iternext(values=False):
            if bytes(key) not in seen:
                report.problem(f"{bytes(key).decode(errors='replace')}: a run record without history")
    for db, label in ((dbs.vis_status, "status"), (dbs.vis_type, "type"), (dbs.vis_start, "start")):
        count = txn.stat(db)["entries"]
        if count != len(seen):
            report.problem(f"the {label} index has {count} entries for {len(seen)} workflows")


def _check_run_index(txn: Any, dbs: Databases, started_runs: dict[bytes, tuple[bytes, int]], report: Report) -> None:
    indexed = 0
    with txn.cursor(db=dbs.run_index) as cursor:
        for key, value in cursor.iternext():
            indexed += 1
            try:
                wf, seq = msgpack.unpackb(bytes(value))
            except Exception:
                report.problem(f"run index entry {bytes(key)!r} is unreadable")
                continue
            if started_runs.get(bytes(key)) != (wf.encode() if isinstance(wf, str) else wf, seq):
                report.problem(
                    f"run index entry {bytes(key).decode(errors='replace')} points at {wf} #{seq}, "
                    "which does not start that run"
                )
    if indexed != len(started_runs):
        report.problem(f"the run index has {indexed} entries for {len(started_runs)} runs")


def _check_attribute_index(txn: Any, dbs: Databases, report: Report) -> None:
    """The search-attribute index (``vis_attr``) holds exactly the keys the run records imply."""
    if dbs.vis_attr is None:
        return  # an older store opened read-only: its index is built when a writer opens it
    schema = txn.get(b"search_attributes", db=dbs.meta)
    declared = json.loads(bytes(schema)) if schema is not None else {}
    unindexed = frozenset(name for name, kind in declared.items() if kind == "text")
    expected: set[bytes] = set()
    with txn.cursor(db=dbs.runs) as cursor:
        for wf, data in cursor:
            name = bytes(wf).decode(errors="replace")
            try:
                expected |= index_keys(decode_run(name, bytes(data)), unindexed)
            except Exception as error:
                report.problem(f"{name}: its run record cannot be indexed: {error}")
    with txn.cursor(db=dbs.vis_attr) as cursor:
        found = {bytes(key) for key in cursor.iternext(keys=True, values=False)}
    if missing := expected - found:
        report.problem(f"the search-attribute index lacks {len(missing)} entries its run records imply")
    if extra := found - expected:
        report.problem(f"the search-attribute index has {len(extra)} entries no run record implies")
