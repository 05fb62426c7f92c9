"""Payload checks and the payload entry points: which user values the codec accepts, and the path naming
the first one it refuses.

It owns the rules of what a payload may hold (exact types, str dict keys, nesting depth, size limit). It never
encodes events nor defines a byte format of its own: the bytes come from :mod:`aion._codec._wire`.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from aion._codec._wire import FAILURE_FIELDS, PACK_ERRORS, describe_error, is_model, model_fields, packb, unpackb
from aion.errors import CorruptPayloadError, PayloadError, PayloadTooLargeError
from aion.events import Failure

#: Default largest encoded payload, in bytes.
DEFAULT_PAYLOAD_LIMIT: Final = 2 * 1024 * 1024

#: Deepest nesting of containers (lists, tuples, dicts, dataclasses) a payload may have.
MAX_PAYLOAD_DEPTH: Final = 100

# --- encoding ----------------------------------------------------------------------------------------------

_SCALARS: Final[frozenset[type]] = frozenset({type(None), bool, float, str, bytes, date, Decimal, uuid.UUID, timedelta})
#: Types that are leaves of a payload: never containers, always encodable (an int out of msgpack's range
#: becomes an extension).
LEAVES: Final[frozenset[type]] = _SCALARS | {int, datetime}


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def is_valid(value: Any, depth: int) -> bool:
    """True when :func:`check_value` would accept ``value`` (at ``depth``): the same walk without building paths.

    It is the fast path of encoding; only when it says no does :func:`check_value` walk again to name the path."""
    kind = type(value)
    if kind in LEAVES:
        return True
    if depth >= MAX_PAYLOAD_DEPTH:
        return False
    depth += 1
    leaves = LEAVES
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110 (a loop is faster than all() over a generator here)
            if type(item) not in leaves and not is_valid(item, depth):
                return False
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in leaves and not is_valid(item, depth):
                return False
        return True
    if kind is Failure:
        return all(is_valid(getattr(value, name), depth) for name in FAILURE_FIELDS)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(is_valid(getattr(value, field.name), depth) for field in dataclasses.fields(value))
    if isinstance(value, enum.Enum):
        return is_valid(value.value, depth)
    if is_model(kind):
        return all(is_valid(item, depth) for item in model_fields(value).values())
    return False


def check_value(value: Any, path: str, depth: int = 0) -> None:
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
            check_value(item, f"{path}[{index}]", depth)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise PayloadError(f"{path}: dict key {key!r} is a {type(key)}, only str keys are allowed")
            if type(item) in _SCALARS or type(item) is int:
                continue
            check_value(item, _child(path, key), depth)
        return
    if kind is Failure:
        for name in FAILURE_FIELDS:
            check_value(getattr(value, name), f"{path}.{name}", depth)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            check_value(getattr(value, field.name), f"{path}.{field.name}", depth)
        return
    if isinstance(value, enum.Enum):
        check_value(value.value, f"{path}.value", depth)
        return
    if is_model(kind):
        for name, item in model_fields(value).items():
            check_value(item, f"{path}.{name}", depth)
        return
    raise PayloadError(f"{path}: cannot serialise {kind}")


def pack_plain(value: Any) -> bytes:
    """msgpack bytes of a value of plain msgpack types (None, bool, int, float, str, bytes, list, dict), as
    ``msgpack.packb(value, use_bin_type=True)`` writes them, using this thread's idle packers: for internal
    records (the store's run records) that need no checking."""
    return packb(value)


def encode_checked(value: Any, path: str) -> bytes:
    if not is_valid(value, 0):
        check_value(value, path)  # raises PayloadError naming the path
    return _pack_valid(value, path)


def _pack_valid(value: Any, path: str) -> bytes:
    """Pack a value already found valid; what msgpack itself still refuses is a PayloadError too."""
    try:
        return packb(value)
    except PACK_ERRORS as error:
        raise PayloadError(f"{path}: cannot serialise: {error}") from error


def encode_payload(value: Any, *, path: str = "value", limit: int | None = DEFAULT_PAYLOAD_LIMIT) -> bytes:
    """Encode a user value; ``path`` names it in errors. Raises PayloadError or PayloadTooLargeError.

    ``limit=None`` disables the size check.
    """
    data = encode_checked(value, path)
    if limit is not None and len(data) > limit:
        raise PayloadTooLargeError(len(data), limit, what=path)
    return data


def check_payload(value: Any, *, path: str = "value", limit: int | None = DEFAULT_PAYLOAD_LIMIT) -> int:
    """Check that ``value`` can be encoded within ``limit`` bytes and return its encoded size."""
    return len(encode_payload(value, path=path, limit=limit))


def decode_payload(data: bytes) -> Any:
    """Decode bytes from :func:`encode_payload`. Raises CorruptPayloadError if they cannot be decoded."""
    try:
        return unpackb(data)
    except Exception as error:
        raise CorruptPayloadError(f"cannot decode payload: {describe_error(error)}") from error
