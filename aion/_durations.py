"""Durations: every API takes a ``timedelta`` or a number of seconds."""

from __future__ import annotations

import math
from datetime import timedelta

from aion.errors import InvalidArgumentError

Duration = timedelta | float | int


def to_seconds(value: object, name: str, *, allow_zero: bool = True) -> float:
    """``value`` as a finite number of seconds; ``InvalidArgumentError`` naming ``name`` otherwise.

    >>> to_seconds(timedelta(minutes=1), "timeout")
    60.0
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidArgumentError(f"{name} must be a timedelta or a number of seconds, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidArgumentError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def optional_seconds(value: object, name: str) -> float | None:
    """Like :func:`to_seconds` for an optional timeout, which must be more than zero when given."""
    return None if value is None else to_seconds(value, name, allow_zero=False)
