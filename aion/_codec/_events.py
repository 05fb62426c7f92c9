"""Event decoding and the per-type field tables shared by both event encoders.

It owns how a stored event map is turned back into an :class:`~aion.events.Event`, refusing anything not
decodable exactly, and the table of each event type's fields. It never encodes bytes itself (the fast
encoder is :mod:`aion._codec._stamp`) and never accepts an unregistered event type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Final

from aion._codec._wire import describe_error, unpackb
from aion.errors import CorruptEventError, PayloadError
from aion.events import EVENT_TYPES, Event

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
class FieldSpec:
    name: str
    required: bool
    fits: _Checker
    hint: str


_SPECS: dict[type[Event], tuple[FieldSpec, ...]] = {}


def field_specs(cls: type[Event]) -> tuple[FieldSpec, ...]:
    specs = _SPECS.get(cls)
    if specs is None:
        hints = typing.get_type_hints(cls)
        missing = dataclasses.MISSING
        specs = tuple(
            FieldSpec(
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
        field_specs(cls)


def event_record(event: Event, *, stamp: bool) -> dict[str, Any]:
    cls = type(event)
    if EVENT_TYPES.get(cls.__name__) is not cls:
        raise PayloadError(f"{cls.__name__}: not a registered event type")
    record: dict[str, Any] = {"type": cls.__name__, "v": cls.version}
    for spec in field_specs(cls):
        if stamp or spec.name not in STAMP_FIELDS:
            record[spec.name] = getattr(event, spec.name)
    return record


# The stamp fields go last in the map of a stamped event, after the body (map order carries no meaning).
STAMP_FIELDS: Final = frozenset({"seq", "recorded_at"})


def decode_event(data: bytes) -> Event:
    """Decode bytes from :func:`encode_event`; raise CorruptEventError for anything not decodable exactly."""
    try:
        record = unpackb(data)
    except Exception as error:
        raise CorruptEventError(f"cannot decode event: {describe_error(error)}") from error
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
    for spec in field_specs(cls):
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
