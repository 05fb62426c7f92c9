"""The on-disk format of the LMDB store: the named databases, their keys and the run record.

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
``vis_attr``       attribute ``\\0`` tag value workflow_id [2]      empty
``schedules``      schedule_id ``\\0`` seq (u64)                    ``encode_event`` bytes
``meta``           ``magic``, ``schema_version``                  ``aion-store``, ascii int
=================  =============================================  ====================================

[1] The ``head_seq`` written in a run record is not kept up to date: an append that only moves the head (the usual
one) does not rewrite the record (one put and one encoding less per event on the writer's critical path). A
workflow's head is the sequence number of its last ``history`` key, and every read of a run record takes it from
there. Schema 1 stores (which rewrote the record on every append) read the same way; opening one as writer marks
it schema 2.

[2] One key per (run, attribute, value): the built-ins and the declared search attributes, each value encoded so
that byte order is value order (see ``aion.visibility._keys``). Schema 3 added it; opening an older store as
writer builds it from the run records, in the transaction that marks the store schema 3. The declared attribute
types are kept in ``meta`` under ``search_attributes`` (JSON).

It owns every byte layout of the store (keys, run records, the schema version) and nothing else: it never opens
an environment, never begins a transaction and never decides what an append may do.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Final

import msgpack

from aion._codec import decode_payload, encode_payload, pack_plain
from aion.errors import StoreError
from aion.status import WorkflowStatus
from aion.store._types import RunInfo

#: The value of ``meta[b"magic"]`` in every aion store.
MAGIC: Final = b"aion-store"
#: The schema version this aion writes; a store with a higher one is refused, a lower one is upgraded in place.
SCHEMA_VERSION: Final = 3

#: The named databases of the environment, in the order :class:`~aion.store._lmdb_env.Databases` holds them.
DB_NAMES: Final = (
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
    b"vis_attr",
)

U64 = struct.Struct(">Q")
#: How many seqs :data:`KEY_SUFFIXES` has room for: most histories stay below.
KEY_TABLE_SIZE: Final = 0x1000
#: ``\0`` and the seq (u64), what follows the workflow id in a history key, by seq: filled as they are first
#: written (a table rather than a ``pack`` and a concatenation per event on the writer's critical path).
KEY_SUFFIXES: Final[list[bytes | None]] = [None] * KEY_TABLE_SIZE


def key_suffix(seq: int) -> bytes:
    """``\\0`` and ``seq`` packed, kept in the table (``0 <= seq < KEY_TABLE_SIZE``)."""
    suffix = KEY_SUFFIXES[seq] = b"\x00" + U64.pack(seq)
    return suffix


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_TIME_BIAS: Final = 2**63
_RECORD_VERSION: Final = 1


def time_key(value: datetime) -> bytes:
    return U64.pack((value - _EPOCH) // _MICRO + _TIME_BIAS)


def time_of(key: bytes) -> datetime:
    return _EPOCH + timedelta(microseconds=U64.unpack(key)[0] - _TIME_BIAS)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MICRO


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def encode_run(run: RunInfo) -> bytes:
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
            run.workflow_version,
            None if run.memo is None else encode_payload(run.memo, limit=None),
        ]
    )


def run_id_of(workflow_id: str, data: bytes) -> str:
    """The run id in a stored run record (``decode_run``'s, checked the same way), without decoding the rest."""
    run_id, _ = _run_key_fields(workflow_id, data)
    return run_id


def run_first_seq_of(workflow_id: str, data: bytes) -> int:
    """The first sequence number of the run in a stored run record (``decode_run``'s ``run_first_seq``, checked
    the same way), without decoding the rest."""
    _, first = _run_key_fields(workflow_id, data)
    return first


def _run_key_fields(workflow_id: str, data: bytes) -> tuple[str, int]:
    try:
        fields = msgpack.unpackb(data, raw=False)
        version, run_id, first = fields[0], fields[1], fields[5]
        if version != _RECORD_VERSION:
            raise ValueError(f"run record version {version}")
        if not isinstance(run_id, str) or not isinstance(first, int):
            raise ValueError("run id not a string" if not isinstance(run_id, str) else "first seq not an integer")
        return run_id, first
    except Exception as error:
        raise StoreError(f"the run record of workflow {workflow_id!r} is unreadable: {error}") from error


def decode_run(workflow_id: str, data: bytes) -> RunInfo:
    try:
        fields = msgpack.unpackb(data, raw=False)
        (version, run_id, workflow_type, status, head, first, start, close, attributes) = fields[:9]
        if version != _RECORD_VERSION:
            raise ValueError(f"run record version {version}")
        parent_run_id, first_run_id, parent_wf, parent_wf_run, run_number = fields[9:14]
        # Records written before schema 3 end here: no version, no memo.
        workflow_version, memo = (*fields[14:16], None, None)[:2]
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
            workflow_version=workflow_version,
            memo=decode_payload(memo) if memo is not None else None,
        )
    except Exception as error:
        raise StoreError(f"the run record of workflow {workflow_id!r} is unreadable: {error}") from error


def vis_keys(run: RunInfo, wf: bytes) -> tuple[bytes, bytes, bytes]:
    start = time_key(run.start_time) + wf
    return (
        run.status.value.encode() + b"\x00" + start,
        run.workflow_type.encode() + b"\x00" + start,
        start,
    )
