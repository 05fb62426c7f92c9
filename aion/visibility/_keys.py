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
        if name not in unindexed:
            _add_keys(keys, name, value, wf)
    return keys


def index_key_changes(
    before: RunInfo | None, after: RunInfo, unindexed: Collection[str] = ()
) -> tuple[set[bytes], set[bytes]]:
    """The index keys to delete and those to put when a workflow's run record ``before`` becomes ``after``:
    ``index_keys(before) - index_keys(after)`` and the reverse, with only the attributes whose value changed
    encoded (a signal or a new head changes none; a completion three)."""
    if before is None:
        return set(), index_keys(after, unindexed)
    old_wf, new_wf = before.workflow_id.encode(), after.workflow_id.encode()
    old, new = run_attributes(before), run_attributes(after)
    removed: set[bytes] = set()
    added: set[bytes] = set()
    for name in old.keys() | new.keys():
        old_value, new_value = old.get(name), new.get(name)
        if name in unindexed or (old_wf == new_wf and _same_value(old_value, new_value)):
            continue
        old_keys: set[bytes] = set()
        new_keys: set[bytes] = set()
        _add_keys(old_keys, name, old_value, old_wf)
        _add_keys(new_keys, name, new_value, new_wf)
        removed |= old_keys - new_keys
        added |= new_keys - old_keys
    return removed, added


def _same_value(a: Any, b: Any) -> bool:
    """Whether two attribute values surely have the same keys: equal and of one type (``1 == 1.0 == True`` have
    three different keys). Lists are compared by their keys."""
    return a is b or (type(a) is type(b) and not isinstance(a, list) and a == b)


def _add_keys(keys: set[bytes], name: str, value: Any, wf: bytes) -> None:
    """Add the index keys of attribute ``name`` holding ``value`` (an element each for a list) in workflow ``wf``."""
    if value is None:
        return
    prefix = attribute_prefix(name)
    for item in value if isinstance(value, list) else (value,):
        encoded = encode_value(item)
        if encoded is not None:
            keys.add(prefix + encoded + wf)
