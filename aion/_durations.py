"""Durations: every API takes a ``timedelta`` or a number of seconds."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import cast

from aion.errors import InvalidArgumentError

Duration = timedelta | float | int

#: The longest duration any API accepts: 100 years, in seconds. Longer ones would carry a deadline past what a
#: ``datetime`` can hold (year 9999) and are refused where the user gives them, not deep in the engine.
MAX_SECONDS = 36525 * 86400.0


def to_seconds(value: object, name: str, *, allow_zero: bool = True) -> float:
    """``value`` as a finite number of seconds; ``InvalidArgumentError`` naming ``name`` otherwise.

    >>> to_seconds(timedelta(minutes=1), "timeout")
    60.0
    """
    kind = type(value)
    # The usual exact types first, before any isinstance: workflow code calls this at every activity and timer.
    if kind is float or kind is int or (kind is not bool and isinstance(value, int | float)):
        try:
            seconds = float(cast("float", value))
        except OverflowError:
            raise InvalidArgumentError(f"{name} is too large: at most {MAX_SECONDS:g} seconds (100 years)") from None
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        raise InvalidArgumentError(f"{name} must be a timedelta or a number of seconds, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidArgumentError(f"{name} must be {bound} seconds, got {value!r}")
    if seconds > MAX_SECONDS:
        raise InvalidArgumentError(f"{name} is too large: at most {MAX_SECONDS:g} seconds (100 years), got {value!r}")
    return seconds


def optional_seconds(value: object, name: str) -> float | None:
    """Like :func:`to_seconds` for an optional timeout, which must be more than zero when given."""
    return None if value is None else to_seconds(value, name, allow_zero=False)
