"""The visibility index: a run's attribute values (built-ins and declared) and their sortable index keys.

One LMDB database (``vis_attr``) holds one key per (run, attribute, value)::

    name \\0 tag value workflow_id        (tag: b bool, i int, f float, t datetime, s keyword)

with each value encoded so that byte order is value order (a keyword ends with ``\\0``, so ``'ab'`` and ``'abc'``
stay apart and a prefix scan is ``STARTS_WITH``). A keyword list has one key per element; ``text`` attributes and
null values have none. Both stores derive the same keys from a run record with :func:`index_keys`, in the
transaction that writes the record, so the index never disagrees with the histories. This module never touches a
store.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from aion.visibility._schema import MAX_KEYWORD_BYTES

if TYPE_CHECKING:  # the store writes this index with these functions: only its types are read here
    from aion.store._types import RunInfo

_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_BIAS: Final = 2**63
_SIGN: Final = 1 << 63
_MASK: Final = (1 << 64) - 1


def run_attributes(run: RunInfo) -> dict[str, Any]:
    """Every attribute of ``run`` by name: the built-ins, then its declared search attributes."""
    attributes: dict[str, Any] = dict(run.search_attributes)
    attributes["WorkflowId"] = run.workflow_id
    attributes["RunId"] = run.run_id
    attributes["WorkflowType"] = run.workflow_type
    attributes["Status"] = run.status.value
    attributes["StartTime"] = run.start_time
    attributes["CloseTime"] = run.close_time
    attributes["ExecutionDuration"] = (
        None if run.close_time is None else (run.close_time - run.start_time).total_seconds()
    )
    attributes["Version"] = run.workflow_version
    return attributes


def encode_value(value: Any) -> bytes | None:
    """``value``'s tag and sortable bytes (``None`` for a value the index does not hold)."""
    if isinstance(value, bool):
        return b"b\x01" if value else b"b\x00"
    if isinstance(value, int):
        if not -_BIAS <= value < _BIAS:
            return None
        return b"i" + _U64.pack(value + _BIAS)
    if isinstance(value, float):
        if math.isnan(value):  # NaN has no place in an order
            return None
        bits = _U64.unpack(_F64.pack(value + 0.0))[0]
        return b"f" + _U64.pack((~bits & _MASK) if bits & _SIGN else bits | _SIGN)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None
        return b"t" + _U64.pack((value - _EPOCH) // _MICRO + _BIAS)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        if b"\x00" in data or len(data) > MAX_KEYWORD_BYTES:
            return None
        return b"s" + data + b"\x00"
    return None


def attribute_prefix(name: str) -> bytes:
    """The first bytes of every index key of attribute ``name``."""
    return name.encode() + b"\x00"


def workflow_of_key(key: bytes, prefix_length: int) -> bytes:
    """The workflow id (bytes) at the end of an index key whose attribute prefix is ``prefix_length`` long."""
    tag = key[prefix_length : prefix_length + 1]
    if tag == b"s":
        return key[key.index(b"\x00", prefix_length + 1) + 1 :]
    if tag == b"b":
        return key[prefix_length + 2 :]
    return key[prefix_length + 9 :]


def index_keys(run: RunInfo | None, unindexed: Collection[str] = ()) -> set[bytes]:
    """Every index key of ``run`` (none for ``None``); attributes named in ``unindexed`` (``text``) have none."""
    if run is None:
        return set()
    wf = run.workflow_id.encode()
    keys: set[bytes] = set()
    for name, value in run_attributes(run).items():
        if value is None or name in unindexed:
            continue
        prefix = attribute_prefix(name)
        for item in value if isinstance(value, list) else (value,):
            encoded = encode_value(item)
            if encoded is not None:
                keys.add(prefix + encoded + wf)
    return keys
