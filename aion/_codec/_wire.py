"""The msgpack wire layer of the codec: the extension types, the shared idle packers and the unpacker.

It owns the stored byte format of every value (the extension codes below are part of the format) and the pool
of packers. It never checks a value: :func:`packb` must only see values that the payload checks
(:mod:`aion._codec._payload`) accepted, or plain msgpack values; and it knows nothing of events.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import msgpack

from aion.events import Failure

# Extension type codes. They are part of the stored format: never reuse or renumber one.
_EXT_TUPLE: Final = 1
_EXT_DATETIME: Final = 2
_EXT_DATE: Final = 3
_EXT_DECIMAL: Final = 4
_EXT_UUID: Final = 5
_EXT_DATACLASS: Final = 6
_EXT_BIGINT: Final = 7
_EXT_FAILURE: Final = 8
_EXT_ENUM: Final = 9
_EXT_TIMEDELTA: Final = 10
_EXT_MODEL: Final = 11

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

_DATACLASS_KEY: Final = "__dataclass__"
_ENUM_KEY: Final = "__enum__"
_MODEL_KEY: Final = "__model__"

FAILURE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Failure))


def _tz_offset_us(value: datetime) -> int | None:
    offset = value.utcoffset()
    if offset is None:
        return None
    return (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds


def _datetime_ext(obj: datetime) -> msgpack.ExtType:
    return msgpack.ExtType(
        _EXT_DATETIME,
        packb(
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
    """msgpack ``default`` hook: the extension types. Only sees values that :func:`is_valid` accepted."""
    kind = type(obj)
    if kind is datetime:
        return _datetime_ext(obj)
    if kind is tuple:
        return msgpack.ExtType(_EXT_TUPLE, packb(list(obj)))
    if kind is date:
        return msgpack.ExtType(_EXT_DATE, packb([obj.year, obj.month, obj.day]))
    if kind is Decimal:
        return msgpack.ExtType(_EXT_DECIMAL, str(obj).encode())
    if kind is uuid.UUID:
        return msgpack.ExtType(_EXT_UUID, obj.bytes)
    if kind is int:  # only called for ints outside msgpack's native range
        length = (obj.bit_length() + 8) // 8
        return msgpack.ExtType(_EXT_BIGINT, obj.to_bytes(length, "big", signed=True))
    if kind is Failure:
        return msgpack.ExtType(_EXT_FAILURE, packb({name: getattr(obj, name) for name in FAILURE_FIELDS}))
    if kind is timedelta:
        return msgpack.ExtType(_EXT_TIMEDELTA, packb([obj.days, obj.seconds, obj.microseconds]))
    if isinstance(obj, enum.Enum):
        return msgpack.ExtType(_EXT_ENUM, packb([f"{kind.__module__}:{kind.__qualname__}", obj.value]))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = f"{kind.__module__}:{kind.__qualname__}"
        fields = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
        return msgpack.ExtType(_EXT_DATACLASS, packb([name, fields]))
    if is_model(kind):
        name = f"{kind.__module__}:{kind.__qualname__}"
        return msgpack.ExtType(_EXT_MODEL, packb([name, model_fields(obj)]))
    raise TypeError(f"cannot serialise {kind}")  # unreachable after is_valid


#: Idle packers, shared by all threads. ``msgpack.packb`` builds (and mallocs a buffer for) a new ``Packer`` per
#: call, which costs more than packing a small value. A packer is taken with ``pop`` and given back with
#: ``append`` (each atomic), so one packer is never used by two threads, and a nested pack (an extension's
#: content, from :func:`_default`) takes another one, so a packer is never re-entered.
IDLE_PACKERS: Final[list[msgpack.Packer]] = []
#: A packer whose output was bigger than this is dropped rather than kept idle with its grown buffer.
KEEP_PACKER_BYTES: Final = 64 * 1024
#: What ``Packer.pack`` raises for a value it cannot write (a str over 4 GiB, ...).
PACK_ERRORS: Final = (ValueError, OverflowError, TypeError, RecursionError)


def new_packer() -> msgpack.Packer:
    return msgpack.Packer(default=_default, use_bin_type=True, strict_types=True, datetime=False, autoreset=True)


def packb(value: Any) -> bytes:
    try:
        packer = IDLE_PACKERS.pop()
    except IndexError:
        packer = new_packer()
    data: bytes = packer.pack(value)  # on an error the packer is dropped (its buffer may hold a partial value)
    if len(data) <= KEEP_PACKER_BYTES:
        IDLE_PACKERS.append(packer)
    return data


def describe_error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else f"{type(error).__name__} (not valid msgpack)"


def unpackb(data: bytes) -> Any:
    # strict_map_key (the default) keeps maps to str/bytes keys, which is all we ever write.
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, timestamp=0, strict_map_key=True)


def _tz_from_us(offset_us: int) -> timezone:
    if offset_us == 0:
        return UTC
    return timezone(timedelta(microseconds=offset_us))


def is_model(kind: type) -> bool:
    """Whether ``kind`` is a pydantic model class (found by its bases: pydantic need not be installed)."""
    return any(base.__name__ == "BaseModel" and base.__module__.startswith("pydantic") for base in kind.__mro__[1:])


def model_fields(obj: Any) -> dict[str, Any]:
    """A pydantic model's fields, as they are set on it (nested models stay models: the codec encodes them)."""
    return {name: getattr(obj, name) for name in type(obj).model_fields}


def _resolve(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj


def _resolve_dataclass(name: str) -> type | None:
    obj = _resolve(name)
    if isinstance(obj, type) and dataclasses.is_dataclass(obj):
        return obj
    return None


def _rebuild_enum(name: str, value: Any) -> Any:
    cls = _resolve(name)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        try:
            return cls(value)
        except Exception:
            pass
    return {_ENUM_KEY: name, "value": value}


def _rebuild_model(name: str, fields: dict[str, Any]) -> Any:
    cls = _resolve(name)
    if isinstance(cls, type) and is_model(cls):
        try:
            return cls.model_validate(fields)  # type: ignore[attr-defined]
        except Exception:
            pass
    return {_MODEL_KEY: name, **fields}


def _rebuild_dataclass(name: str, fields: dict[str, Any]) -> Any:
    cls = _resolve_dataclass(name)
    if cls is not None:
        declared = {field.name: field for field in dataclasses.fields(cls)}
        # Fields added to the class since the value was stored take their defaults; a field stored but no longer
        # declared, or added without a default, leaves the value a map (nothing stored is dropped or invented).
        if fields.keys() <= declared.keys() and all(_has_default(declared[k]) for k in declared.keys() - fields):
            try:
                instance = cls(**{k: v for k, v in fields.items() if declared[k].init})
                for key, value in fields.items():
                    if not declared[key].init:
                        object.__setattr__(instance, key, value)
            except Exception:
                pass
            else:
                return instance
    return {_DATACLASS_KEY: name, **fields}


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


#: Datetimes decoded lately, by their extension's bytes: every event has one, and the events of one commit share
#: it. A datetime is immutable, so one object may serve them all. Cleared when full.
_DATETIMES: dict[bytes, datetime] = {}
_DATETIMES_KEPT: Final = 4096


def _datetime(data: bytes) -> datetime:
    value = _DATETIMES.get(data)
    if value is None:
        # Plain msgpack inside: an extension there decodes to an ExtType, which datetime() refuses.
        year, month, day, hour, minute, second, micro, fold, offset = msgpack.unpackb(data)
        tz = None if offset is None else _tz_from_us(offset)
        value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz, fold=fold)
        if len(_DATETIMES) >= _DATETIMES_KEPT:
            _DATETIMES.clear()
        _DATETIMES[data] = value
    return value


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        return _datetime(data)
    if code == _EXT_TUPLE:
        items = unpackb(data)
        if type(items) is not list:
            raise ValueError("tuple extension does not hold an array")
        return tuple(items)
    if code == _EXT_DATE:
        year, month, day = unpackb(data)
        return date(year, month, day)
    if code == _EXT_DECIMAL:
        return Decimal(data.decode())
    if code == _EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == _EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    if code == _EXT_FAILURE:
        fields = unpackb(data)
        if type(fields) is not dict or not isinstance(fields.get("type"), str):
            raise ValueError("failure extension does not hold a failure map")
        unknown = set(fields) - set(FAILURE_FIELDS)
        if unknown:
            raise ValueError(f"failure has unknown fields {sorted(unknown)}")
        return Failure(**fields)
    if code == _EXT_DATACLASS:
        name, fields = unpackb(data)
        if type(name) is not str or type(fields) is not dict:
            raise ValueError("dataclass extension does not hold a name and a field map")
        return _rebuild_dataclass(name, fields)
    if code == _EXT_TIMEDELTA:
        days, seconds, micro = unpackb(data)
        return timedelta(days=days, seconds=seconds, microseconds=micro)
    if code == _EXT_ENUM:
        name, value = unpackb(data)
        if type(name) is not str:
            raise ValueError("enum extension does not hold a name and a value")
        return _rebuild_enum(name, value)
    if code == _EXT_MODEL:
        name, fields = unpackb(data)
        if type(name) is not str or type(fields) is not dict:
            raise ValueError("model extension does not hold a name and a field map")
        return _rebuild_model(name, fields)
    raise ValueError(f"unknown extension type {code}")
