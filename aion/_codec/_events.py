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


def _fits_anything(value: Any) -> bool:
    return True


def _checker(hint: Any) -> _Checker:
    """A predicate telling whether a decoded value fits a field's type hint (lenient where it must be)."""
    if hint is Any or hint is object:
        return _fits_anything
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
    return _fits_anything


def _sure_type(hint: Any) -> type | None:
    """A type whose exact instances fit ``hint`` (checked with ``type(value) is``, before the checker's call)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _sure_type(args[0]) if len(args) == 1 else None
    if origin is not None:
        return origin if isinstance(origin, type) else None
    return hint if isinstance(hint, type) and hint is not object and hint is not Any else None


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool
    fits: _Checker
    hint: str
    #: Values of exactly this type fit (``None``: ask ``fits``).
    sure: type | None = None


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
                sure=_sure_type(hints[field.name]),
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
        _LAYOUTS[cls] = _Layout(cls)


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


def is_plain_event_type(cls: type[Event]) -> bool:
    """Whether an instance of ``cls`` may be made by setting its ``__dict__`` to its fields in field order,
    without calling ``__init__``: no ``__post_init__``, no ``init=False`` field, no slots (the dataclass's
    ``__init__`` would only set each field). The decoder and the store's stamping both rely on it."""
    return (
        not hasattr(cls, "__post_init__")
        and "__slots__" not in cls.__dict__
        and dataclasses.is_dataclass(cls)
        and all(field.init for field in dataclasses.fields(cls))
    )


class _Layout:
    """How :func:`decode_event` builds one event type: its fields in order, the checks of their values, and
    whether an instance may be made without calling ``__init__`` (:func:`is_plain_event_type`)."""

    __slots__ = ("checks", "cls", "names", "order", "plain", "specs")

    def __init__(self, cls: type[Event]) -> None:
        self.cls = cls
        self.specs = field_specs(cls)
        self.names = frozenset(spec.name for spec in self.specs)
        #: The field names in field order.
        self.order = tuple(spec.name for spec in self.specs)
        #: The fields whose values are checked (a field of type ``Any`` takes any decoded value): name, the type
        #: that surely fits, the checker, the hint.
        self.checks = tuple(
            (spec.name, spec.sure, spec.fits, spec.hint) for spec in self.specs if spec.fits is not _fits_anything
        )
        self.plain = is_plain_event_type(cls)


_LAYOUTS: dict[type[Event], _Layout] = {}
_new_object = object.__new__
_set_attribute = object.__setattr__


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
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _Layout(cls)
    if record.keys() != layout.names:  # a field missing (an older version) or unknown
        return _decode_fields(name, version, layout, record)
    for field, sure, fits, hint in layout.checks:
        value = record[field]
        if type(value) is not sure and not fits(value):
            raise CorruptEventError(f"cannot decode {name} event: field {field!r} should be {hint}, found {value!r}")
    # The fields in field order (the stamp comes last in a stored map), as __init__ would set them.
    fields = {field: record[field] for field in layout.order}
    if layout.plain:
        event = _new_object(cls)
        _set_attribute(event, "__dict__", fields)
        return event
    return _construct(name, cls, fields)


def _decode_fields(name: str, version: int, layout: _Layout, record: dict[str, Any]) -> Event:
    """:func:`decode_event` for a map whose keys are not exactly the type's fields: each field checked in turn."""
    kwargs: dict[str, Any] = {}
    for spec in layout.specs:
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
    return _construct(name, layout.cls, kwargs)


def _construct(name: str, cls: type[Event], kwargs: dict[str, Any]) -> Event:
    try:
        return cls(**kwargs)
    except Exception as error:
        raise CorruptEventError(f"cannot decode {name} event: {error}") from error
