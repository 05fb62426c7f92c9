"""The event encoder's fast paths: an event's body encoded once, ahead, then stamped with ``seq`` and
``recorded_at`` by byte concatenation.

It owns the byte layout of a stamped event map and the caches that make stamping cheap (the per-type body
layout, the seq table, the last encoded instant). It never decides what a payload may hold (it defers to
:mod:`aion._codec._payload`) and must write exactly the bytes a plain msgpack map of the same fields would.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from aion._codec._events import STAMP_FIELDS, event_record, field_specs
from aion._codec._payload import LEAVES, check_value, encode_checked, is_valid
from aion._codec._wire import IDLE_PACKERS, INT_MAX, KEEP_PACKER_BYTES, PACK_ERRORS, new_packer, packb
from aion.errors import PayloadError
from aion.events import EVENT_TYPES, Event

# The idle packers' pop and append, bound here: CPython 3.11 compiles ``IDLE_PACKERS.pop()`` on an imported name
# as an attribute load and a call (a bound method built per call), not as a method call.
_take_packer: Final = IDLE_PACKERS.pop
_keep_packer: Final = IDLE_PACKERS.append

_SEQ_KEY: Final = b"\xa3seq"
_RECORDED_AT_KEY: Final = b"\xabrecorded_at"
_FIXMAP: Final = 0x80
_MAP16: Final = 0xDE
_UINT = (struct.Struct(">BB"), struct.Struct(">BH"), struct.Struct(">BI"), struct.Struct(">BQ"))
_FIXINTS: Final = tuple(bytes((n,)) for n in range(128))
#: The last datetime :func:`encode_time` encoded, and its bytes: the recorder stamps one instant per batch.
_last_time: tuple[datetime | None, bytes] = (None, b"")


def _uint_bytes(value: Any) -> bytes | None:
    """msgpack bytes of a non-negative int below 2**64 (the shortest form, as msgpack writes it), else None."""
    if type(value) is not int or value < 0:
        return None
    if value < 128:
        return _FIXINTS[value]
    if value < 0x100:
        return _UINT[0].pack(0xCC, value)
    if value < 0x10000:
        return _UINT[1].pack(0xCD, value)
    if value < 0x100000000:
        return _UINT[2].pack(0xCE, value)
    if value <= INT_MAX:
        return _UINT[3].pack(0xCF, value)
    return None


def encode_time(value: datetime) -> bytes:
    """The encoding of one ``datetime`` (as :func:`encode_payload` writes it), remembered for the next call
    with the same object: a batch stamps one instant on all its events."""
    global _last_time
    last = _last_time
    if last[0] is value:
        return last[1]
    if type(value) is not datetime:
        raise PayloadError(f"value: cannot serialise {type(value)}")
    data = packb(value)
    _last_time = (value, data)
    return data


def _map_header(count: int) -> bytes:
    return bytes((_FIXMAP | count,)) if count < 16 else _UINT[1].pack(_MAP16, count)


class _BodyLayout:
    """How one event type's body is encoded: the bytes before its fields (the map header counting the stamp
    fields too, then ``type`` and ``v``), the field names and a getter of their values in one call."""

    __slots__ = ("count", "names", "prefix", "skip", "values")

    def __init__(self, cls: type[Event]) -> None:
        if EVENT_TYPES.get(cls.__name__) is not cls:
            raise PayloadError(f"{cls.__name__}: not a registered event type")
        self.names = tuple(spec.name for spec in field_specs(cls) if spec.name not in STAMP_FIELDS)
        #: How many fields the body holds (the stamp's excluded).
        self.count = len(self.names)
        getter = operator.attrgetter(*self.names)
        self.values: Callable[[Event], tuple[Any, ...]] = (
            getter if len(self.names) > 1 else lambda event: (getter(event),)
        )
        # type, v, the fields, then seq and recorded_at (added by stamp_event).
        self.prefix = _map_header(len(self.names) + 4) + packb("type") + packb(cls.__name__)
        self.prefix += packb("v") + packb(cls.version)
        #: The length of the map header of the fields alone, which the prefix replaces.
        self.skip = len(_map_header(len(self.names)))


_BODY_LAYOUTS: dict[type[Event], _BodyLayout] = {}


def encode_event_body(event: Event) -> bytes:
    """Encode ``event`` without its stamp (``seq`` and ``recorded_at``): :func:`stamp_event` completes it.

    This is the costly part of :func:`encode_event`, and it does not depend on the stamp, so it can be done
    before the store stamps the event (in the appending thread). Raises PayloadError like
    :func:`encode_event`."""
    cls = type(event)
    layout = _BODY_LAYOUTS.get(cls)
    if layout is None:
        layout = _BODY_LAYOUTS[cls] = _BodyLayout(cls)
    # The fields but the stamp, in field order: a copy of the instance's __dict__ less the two stamp fields when
    # that is what it holds (a frozen dataclass's __init__ sets every field, in order), else field by field.
    fields: dict[str, Any] | None
    try:
        fields = event.__dict__.copy()
        del fields["seq"], fields["recorded_at"]
    except (AttributeError, KeyError):  # no __dict__ (slots), or no stamp in it
        fields = None
    if fields is None or len(fields) != layout.count:
        fields = dict(zip(layout.names, layout.values(event)))  # noqa: B905 (equal by construction)
    # The map's own keys are the field names: only the values need the walk. A dict of leaves (the usual
    # payload) is walked here, which is what is_valid(value, 1) would do, without the call.
    leaves = LEAVES
    for value in fields.values():
        kind = type(value)
        if kind in leaves:
            continue
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str or (type(item) not in leaves and not is_valid(item, 2)):
                    break
            else:
                continue
        elif is_valid(value, 1):
            continue
        check_value(fields, cls.__name__)  # raises PayloadError naming the path
    # What packb does, inlined: this runs once per appended event.
    try:
        packer = _take_packer()
    except IndexError:
        packer = new_packer()
    try:
        data: bytes = packer.pack(fields)
    except PACK_ERRORS as error:
        raise PayloadError(f"{cls.__name__}: cannot serialise: {error}") from error
    if len(data) <= KEEP_PACKER_BYTES:
        _keep_packer(packer)
    return layout.prefix + data[layout.skip :]


#: How many sequence numbers :data:`_SEQ_ENTRIES` has room for: most histories stay below.
_SEQ_TABLE_SIZE: Final = 0x1000
#: ``"seq"`` and its value, encoded, by sequence number, filled as they are first stamped (a table rather than
#: :func:`_uint_bytes` per event: this is on the writer's critical path).
_SEQ_ENTRIES: Final[list[bytes | None]] = [None] * _SEQ_TABLE_SIZE


def _seq_entry(seq: int) -> bytes:
    """``"seq"`` and ``seq`` (``0 <= seq < _SEQ_TABLE_SIZE``, at most 2**16) encoded, kept in the table."""
    value = _FIXINTS[seq] if seq < 128 else _UINT[0].pack(0xCC, seq) if seq < 0x100 else _UINT[1].pack(0xCD, seq)
    entry = _SEQ_ENTRIES[seq] = _SEQ_KEY + value
    return entry


def stamp_event(body: bytes, seq: int, recorded_at: bytes) -> bytes:
    """The bytes of :func:`encode_event` for the event whose body is ``body`` (from :func:`encode_event_body`)
    stamped with ``seq`` (a non-negative int below 2**64) and the time encoded by :func:`encode_time`."""
    if type(seq) is int and 0 <= seq < _SEQ_TABLE_SIZE:
        return b"".join((body, _SEQ_ENTRIES[seq] or _seq_entry(seq), _RECORDED_AT_KEY, recorded_at))
    seq_bytes = _uint_bytes(seq)
    if seq_bytes is None:
        raise PayloadError(f"seq {seq!r} is not a non-negative int below 2**64")
    return b"".join((body, _SEQ_KEY, seq_bytes, _RECORDED_AT_KEY, recorded_at))


def encode_event(event: Event) -> bytes:
    """Encode one history event as a msgpack map with ``type``, ``v`` and its fields.

    Raises PayloadError (the path starts with the event's type name) if a field holds a value the payload
    codec refuses. No size limit applies here: use :func:`check_payload` before recording.
    """
    cls = type(event)
    if EVENT_TYPES.get(cls.__name__) is not cls:
        raise PayloadError(f"{cls.__name__}: not a registered event type")
    seq_bytes = _uint_bytes(event.seq)
    if seq_bytes is not None and type(event.recorded_at) is datetime:
        body = encode_event_body(event)
        return b"".join((body, _SEQ_KEY, seq_bytes, _RECORDED_AT_KEY, encode_time(event.recorded_at)))
    # An odd stamp (a seq of another type, ...): one map in field order, checked as a whole.
    return encode_checked(event_record(event, stamp=True), type(event).__name__)
