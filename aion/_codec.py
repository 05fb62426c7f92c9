"""The msgpack codec of aion: user payloads and history events.

Payloads
========
:func:`encode_payload` accepts, recursively:

* ``None``, ``bool``, ``float``, ``str``, ``bytes`` and ``list`` (native msgpack);
* ``int`` of any size: ints in msgpack's range (``-2**63 .. 2**64-1``) are native, larger ones are stored as
  an extension (signed big-endian bytes) and come back as the same ``int``;
* ``dict`` whose keys are all ``str`` (any other key is refused, naming the path);
* ``tuple`` (an extension, so it decodes as a ``tuple``, not a ``list``);
* ``datetime``: naive stays naive; an aware one keeps its UTC offset and ``fold`` and decodes with a
  fixed-offset ``datetime.timezone`` (UTC decodes as ``datetime.UTC``; a ``zoneinfo`` name is not kept);
* ``date``, ``Decimal`` (as its exact string) and ``UUID`` (as 16 bytes);
* dataclass instances, stored as ``"module:qualname"`` plus a map of all fields. Decoding imports ``module``
  (if it is not already imported) and rebuilds the class; if the class cannot be found, is not a dataclass, or
  refuses the stored fields, the value decodes to a plain ``dict`` of the fields plus a ``"__dataclass__"``
  key holding ``"module:qualname"``.

Only these exact types are accepted: subclasses (``IntEnum``, ``StrEnum``, ``OrderedDict``, namedtuples...),
sets and every other object are refused with :class:`~aion.errors.PayloadError` whose message names the path
of the bad value, for example ``order.items[3].price: cannot serialise <class 'object'>``. Paths start at a
root name (``value`` unless told), add ``.key`` for a dict key or dataclass field (``['key']`` when the key is
not a Python identifier) and ``[i]`` for a list or tuple index.

Events
======
:func:`encode_event` writes one msgpack map per event: ``"type"`` (the class name), ``"v"`` (the class's
``version``) and every field; field values use the payload encoding, and a nested
:class:`~aion.events.Failure` is an extension holding a map of its fields. :func:`decode_event` accepts older
versions (a field missing from the map takes its dataclass default) and refuses, with
:class:`~aion.errors.CorruptEventError`, anything it cannot decode exactly: bad bytes, an unknown type, a
newer version, an unknown field, a missing required field or a field of the wrong type.

Containers may nest at most :data:`MAX_PAYLOAD_DEPTH` levels deep. Encoding and decoding are thread-safe (a
packer is used by one thread at a time).
"""

from __future__ import annotations

import dataclasses
import importlib
import operator
import struct
import sys
import types
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import msgpack

from aion.errors import CorruptEventError, CorruptPayloadError, PayloadError, PayloadTooLargeError
from aion.events import EVENT_TYPES, Event, Failure

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "MAX_PAYLOAD_DEPTH",
    "check_payload",
    "decode_event",
    "decode_payload",
    "encode_event",
    "encode_event_body",
    "encode_payload",
    "encode_time",
    "pack_plain",
    "prepare_event_types",
    "stamp_event",
]

#: Default largest encoded payload, in bytes.
DEFAULT_PAYLOAD_LIMIT: Final = 2 * 1024 * 1024

# Extension type codes. They are part of the stored format: never reuse or renumber one.
_EXT_TUPLE: Final = 1
_EXT_DATETIME: Final = 2
_EXT_DATE: Final = 3
_EXT_DECIMAL: Final = 4
_EXT_UUID: Final = 5
_EXT_DATACLASS: Final = 6
_EXT_BIGINT: Final = 7
_EXT_FAILURE: Final = 8

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

_DATACLASS_KEY: Final = "__dataclass__"

#: Deepest nesting of containers (lists, tuples, dicts, dataclasses) a payload may have.
MAX_PAYLOAD_DEPTH: Final = 100

_FAILURE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Failure))

# --- encoding ----------------------------------------------------------------------------------------------

_SCALARS: Final[frozenset[type]] = frozenset({type(None), bool, float, str, bytes, date, Decimal, uuid.UUID})
#: Types that are leaves of a payload: never containers, always encodable (an int out of msgpack's range
#: becomes an extension).
_LEAVES: Final[frozenset[type]] = _SCALARS | {int, datetime}


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _valid(value: Any, depth: int) -> bool:
    """True when :func:`_check` would accept ``value`` (at ``depth``): the same walk without building paths.

    It is the fast path of encoding; only when it says no does :func:`_check` walk again to name the path."""
    kind = type(value)
    if kind in _LEAVES:
        return True
    if depth >= MAX_PAYLOAD_DEPTH:
        return False
    depth += 1
    leaves = _LEAVES
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 (a loop is faster than all() over a generator here)
            if type(item) not in leaves and not _valid(item, depth):
                return False
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in leaves and not _valid(item, depth):
                return False
        return True
    if kind is Failure:
        return all(_valid(getattr(value, name), depth) for name in _FAILURE_FIELDS)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_valid(getattr(value, field.name), depth) for field in dataclasses.fields(value))
    return False


def _check(value: Any, path: str, depth: int = 0) -> None:
    """Raise PayloadError naming the first value under ``value`` that the codec cannot encode."""
    kind = type(value)
    if kind in _SCALARS or kind is datetime or kind is int:
        return
    depth += 1
    if depth > MAX_PAYLOAD_DEPTH:
        raise PayloadError(f"{path}: nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            kind_item = type(item)
            if kind_item in _SCALARS or kind_item is int:
                continue
            _check(item, f"{path}[{index}]", depth)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise PayloadError(f"{path}: dict key {key!r} is a {type(key)}, only str keys are allowed")
            if type(item) in _SCALARS or type(item) is int:
                continue
            _check(item, _child(path, key), depth)
        return
    if kind is Failure:
        for name in _FAILURE_FIELDS:
            _check(getattr(value, name), f"{path}.{name}", depth)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _check(getattr(value, field.name), f"{path}.{field.name}", depth)
        return
    raise PayloadError(f"{path}: cannot serialise {kind}")


def _tz_offset_us(value: datetime) -> int | None:
    offset = value.utcoffset()
    if offset is None:
        return None
    return (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds


def _datetime_ext(obj: datetime) -> msgpack.ExtType:
    return msgpack.ExtType(
        _EXT_DATETIME,
        _packb(
            [
                obj.year,
                obj.month,
                obj.day,
                obj.hour,
                obj.minute,
                obj.second,
                obj.microsecond,
                obj.fold,
                _tz_offset_us(obj),
            ]
        ),
    )


def _default(obj: Any) -> Any:
    """msgpack ``default`` hook: the extension types. Only sees values that :func:`_valid` accepted."""
    kind = type(obj)
    if kind is datetime:
        return _datetime_ext(obj)
    if kind is tuple:
        return msgpack.ExtType(_EXT_TUPLE, _packb(list(obj)))
    if kind is date:
        return msgpack.ExtType(_EXT_DATE, _packb([obj.year, obj.month, obj.day]))
    if kind is Decimal:
        return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode())
    if kind is uuid.UUID:
        return msgpack.ExtType(_EXT_UUID, obj.bytes)
    if kind is int:  # only called for ints outside msgpack's native range
        length = (obj.bit_length() + 8) // 8
        return msgpack.ExtType(_EXT_BIGINT, obj.to_bytes(length, "big", signed=True))
    if kind is Failure:
        return msgpack.ExtType(_EXT_FAILURE, _packb({name: getattr(obj, name) for name in _FAILURE_FIELDS}))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = f"{kind.__module__}:{kind.__qualname__}"
        fields = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
        return msgpack.ExtType(_EXT_DATACLASS, _packb([name, fields]))
    raise TypeError(f"cannot serialise {kind}")  # unreachable after _valid


#: Idle packers, shared by all threads. ``msgpack.packb`` builds (and mallocs a buffer for) a new ``Packer`` per
#: call, which costs more than packing a small value. A packer is taken with ``pop`` and given back with
#: ``append`` (each atomic), so one packer is never used by two threads, and a nested pack (an extension's
#: content, from :func:`_default`) takes another one, so a packer is never re-entered.
_IDLE_PACKERS: Final[list[msgpack.Packer]] = []
#: A packer whose output was bigger than this is dropped rather than kept idle with its grown buffer.
_KEEP_PACKER_BYTES: Final = 64 * 1024
#: What ``Packer.pack`` raises for a value it cannot write (a str over 4 GiB, ...).
_PACK_ERRORS: Final = (ValueError, OverflowError, TypeError, RecursionError)


def _new_packer() -> msgpack.Packer:
    return msgpack.Packer(default=_default, use_bin_type=True, strict_types=True, datetime=False, autoreset=True)


def _packb(value: Any) -> bytes:
    try:
        packer = _IDLE_PACKERS.pop()
    except IndexError:
        packer = _new_packer()
    data: bytes = packer.pack(value)  # on an error the packer is dropped (its buffer may hold a partial value)
    if len(data) <= _KEEP_PACKER_BYTES:
        _IDLE_PACKERS.append(packer)
    return data


def pack_plain(value: Any) -> bytes:
    """msgpack bytes of a value of plain msgpack types (None, bool, int, float, str, bytes, list, dict), as
    ``msgpack.packb(value, use_bin_type=True)`` writes them, using this thread's idle packers: for internal
    records (the store's run records) that need no checking."""
    return _packb(value)


def _encode_checked(value: Any, path: str) -> bytes:
    if not _valid(value, 0):
        _check(value, path)  # raises PayloadError naming the path
    return _pack_valid(value, path)


def _pack_valid(value: Any, path: str) -> bytes:
    """Pack a value already found valid; what msgpack itself still refuses is a PayloadError too."""
    try:
        return _packb(value)
    except _PACK_ERRORS as error:
        raise PayloadError(f"{path}: cannot serialise: {error}") from error


def encode_payload(value: Any, *, path: str = "value", limit: int | None = DEFAULT_PAYLOAD_LIMIT) -> bytes:
    """Encode a user value; ``path`` names it in errors. Raises PayloadError or PayloadTooLargeError.

    ``limit=None`` disables the size check.
    """
    data = _encode_checked(value, path)
    if limit is not None and len(data) > limit:
        raise PayloadTooLargeError(len(data), limit, what=path)
    return data


def check_payload(value: Any, *, path: str = "value", limit: int | None = DEFAULT_PAYLOAD_LIMIT) -> int:
    """Check that ``value`` can be encoded within ``limit`` bytes and return its encoded size."""
    return len(encode_payload(value, path=path, limit=limit))


# --- decoding ----------------------------------------------------------------------------------------------


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else f"{type(error).__name__} (not valid msgpack)"


def _unpackb(data: bytes) -> Any:
    # strict_map_key (the default) keeps maps to str/bytes keys, which is all we ever write.
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, timestamp=0, strict_map_key=True)


def _tz_from_us(offset_us: int) -> timezone:
    if offset_us == 0:
        return UTC
    return timezone(timedelta(microseconds=offset_us))


def _resolve_dataclass(name: str) -> type | None:
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    if isinstance(obj, type) and dataclasses.is_dataclass(obj):
        return obj
    return None


def _rebuild_dataclass(name: str, fields: dict[str, Any]) -> Any:
    cls = _resolve_dataclass(name)
    if cls is not None:
        declared = {field.name: field for field in dataclasses.fields(cls)}
        if set(declared) == set(fields):
            try:
                instance = cls(**{k: v for k, v in fields.items() if declared[k].init})
                for key, field in declared.items():
                    if not field.init:
                        object.__setattr__(instance, key, fields[key])
            except Exception:
                pass
            else:
                return instance
    return {_DATACLASS_KEY: name, **fields}


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_TUPLE:
        items = _unpackb(data)
        if type(items) is not list:
            raise ValueError("tuple extension does not hold an array")
        return tuple(items)
    if code == _EXT_DATETIME:
        year, month, day, hour, minute, second, micro, fold, offset = _unpackb(data)
        tz = None if offset is None else _tz_from_us(offset)
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz, fold=fold)
    if code == _EXT_DATE:
        year, month, day = _unpackb(data)
        return date(year, month, day)
    if code == _EXT_DECIMAL:
        return Decimal(data.decode())
    if code == _EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == _EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == _EXT_FAILURE:
        fields = _unpackb(data)
        if type(fields) is not dict or not isinstance(fields.get("type"), str):
            raise ValueError("failure extension does not hold a failure map")
        unknown = set(fields) - set(_FAILURE_FIELDS)
        if unknown:
            raise ValueError(f"failure has unknown fields {sorted(unknown)}")
        return Failure(**fields)
    if code == _EXT_DATACLASS:
        name, fields = _unpackb(data)
        if type(name) is not str or type(fields) is not dict:
            raise ValueError("dataclass extension does not hold a name and a field map")
        return _rebuild_dataclass(name, fields)
    raise ValueError(f"unknown extension type {code}")


def decode_payload(data: bytes) -> Any:
    """Decode bytes from :func:`encode_payload`. Raises CorruptPayloadError if they cannot be decoded."""
    try:
        return _unpackb(data)
    except Exception as error:
        raise CorruptPayloadError(f"cannot decode payload: {_describe(error)}") from error


# --- events ------------------------------------------------------------------------------------------------

_Checker = Callable[[Any], bool]


def _checker(hint: Any) -> _Checker:
    """A predicate telling whether a decoded value fits a field's type hint (lenient where it must be)."""
    if hint is Any or hint is object:
        return lambda value: True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(hint)
        if len(args) == 2 and type(None) in args:  # ``X | None``, most optional fields: no generator per check
            fits = _checker(args[0] if args[1] is type(None) else args[1])
            return lambda value: value is None or fits(value)
        options = [_checker(arg) for arg in args]
        return lambda value: any(option(value) for option in options)
    if hint is type(None):
        return lambda value: value is None
    if hint is float:
        return lambda value: type(value) in (float, int)
    if hint is int:
        return lambda value: type(value) is int
    if origin is not None:
        return lambda value: isinstance(value, origin)
    if isinstance(hint, type):
        return lambda value: isinstance(value, hint)
    return lambda value: True


@dataclasses.dataclass(frozen=True)
class _FieldSpec:
    name: str
    required: bool
    fits: _Checker
    hint: str


_SPECS: dict[type[Event], tuple[_FieldSpec, ...]] = {}


def _specs(cls: type[Event]) -> tuple[_FieldSpec, ...]:
    specs = _SPECS.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls)
        missing = dataclasses.MISSING
        specs = tuple(
            _FieldSpec(
                name=field.name,
                required=field.default is missing and field.default_factory is missing,
                fits=_checker(hints[field.name]),
                hint=str(field.type),
            )
            for field in dataclasses.fields(cls)
            if field.init
        )
        _SPECS[cls] = specs
    return specs


def prepare_event_types() -> None:
    """Build now the field table of every event type, which :func:`encode_event` and :func:`decode_event`
    otherwise build at a type's first use (``typing.get_type_hints``: about 0.15 ms a type). The engine calls
    it before it forks the zygote, so that no workflow process pays for it when its first signal or activity
    result arrives."""
    for cls in EVENT_TYPES.values():
        _specs(cls)


def _event_record(event: Event, *, stamp: bool) -> dict[str, Any]:
    cls = type(event)
    if EVENT_TYPES.get(cls.__name__) is not cls:
        raise PayloadError(f"{cls.__name__}: not a registered event type")
    record: dict[str, Any] = {"type": cls.__name__, "v": cls.version}
    for spec in _specs(cls):
        if stamp or spec.name not in _STAMP_FIELDS:
            record[spec.name] = getattr(event, spec.name)
    return record


# The stamp fields go last in the map of a stamped event, after the body (map order carries no meaning).
_STAMP_FIELDS: Final = frozenset({"seq", "recorded_at"})
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
    if value <= _INT_MAX:
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
    data = _packb(value)
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
        self.names = tuple(spec.name for spec in _specs(cls) if spec.name not in _STAMP_FIELDS)
        #: How many fields the body holds (the stamp's excluded).
        self.count = len(self.names)
        getter = operator.attrgetter(*self.names)
        self.values: Callable[[Event], tuple[Any, ...]] = (
            getter if len(self.names) > 1 else lambda event: (getter(event),)
        )
        # type, v, the fields, then seq and recorded_at (added by stamp_event).
        self.prefix = _map_header(len(self.names) + 4) + _packb("type") + _packb(cls.__name__)
        self.prefix += _packb("v") + _packb(cls.version)
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
    # payload) is walked here, which is what _valid(value, 1) would do, without the call.
    leaves = _LEAVES
    for value in fields.values():
        kind = type(value)
        if kind in leaves:
            continue
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str or (type(item) not in leaves and not _valid(item, 2)):
                    break
            else:
                continue
        elif _valid(value, 1):
            continue
        _check(fields, cls.__name__)  # raises PayloadError naming the path
    # What _packb does, inlined: this runs once per appended event.
    try:
        packer = _IDLE_PACKERS.pop()
    except IndexError:
        packer = _new_packer()
    try:
        data: bytes = packer.pack(fields)
    except _PACK_ERRORS as error:
        raise PayloadError(f"{cls.__name__}: cannot serialise: {error}") from error
    if len(data) <= _KEEP_PACKER_BYTES:
        _IDLE_PACKERS.append(packer)
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
    return _encode_checked(_event_record(event, stamp=True), type(event).__name__)


def decode_event(data: bytes) -> Event:
    """Decode bytes from :func:`encode_event`; raise CorruptEventError for anything not decodable exactly."""
    try:
        record = _unpackb(data)
    except Exception as error:
        raise CorruptEventError(f"cannot decode event: {_describe(error)}") from error
    if type(record) is not dict:
        raise CorruptEventError(f"cannot decode event: expected a map, found {type(record).__name__}")
    name = record.pop("type", None)
    version = record.pop("v", None)
    if type(name) is not str:
        raise CorruptEventError(f"cannot decode event: no type name (found {name!r})")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise CorruptEventError(f"cannot decode event: unknown event type {name!r}")
    if type(version) is not int or version < 1:
        raise CorruptEventError(f"cannot decode {name} event: bad format version {version!r}")
    if version > cls.version:
        raise CorruptEventError(
            f"cannot decode {name} event: format version {version} is newer than this aion's {cls.version}"
        )
    kwargs: dict[str, Any] = {}
    for spec in _specs(cls):
        if spec.name in record:
            value = record.pop(spec.name)
            if not spec.fits(value):
                raise CorruptEventError(
                    f"cannot decode {name} event: field {spec.name!r} should be {spec.hint}, found {value!r}"
                )
            kwargs[spec.name] = value
        elif spec.required:
            raise CorruptEventError(f"cannot decode {name} event: required field {spec.name!r} is missing")
    if record:
        raise CorruptEventError(f"cannot decode {name} event v{version}: unknown fields {sorted(record)}")
    try:
        return cls(**kwargs)
    except Exception as error:
        raise CorruptEventError(f"cannot decode {name} event: {error}") from error
