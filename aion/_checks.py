"""Checks of the numbers and paths a user hands to the Python API: each raises
:class:`~aion.errors.InvalidArgumentError` naming the option and showing the value."""

from __future__ import annotations

import os
from pathlib import Path

from aion.errors import InvalidArgumentError

#: The largest count any engine option accepts (processes, slots, restarts): beyond it is a typo, not a plan.
MAX_COUNT = 100_000


def count(value: object, name: str, *, minimum: int, maximum: int = MAX_COUNT) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) from ``minimum`` to ``maximum``.

    >>> count(3, "warm_pool", minimum=0)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if not minimum <= value <= maximum:
        raise InvalidArgumentError(f"{name} must be from {minimum} to {maximum}, got {value!r}")
    return value


def data_dir_path(value: object) -> Path:
    """``value`` as the path of a data directory: a non-empty ``str`` or path, not an existing non-directory."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidArgumentError(f"data_dir must be a str or a path, got {type(value).__name__}: {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"data_dir must name a directory, got {value!r}")
    if "\0" in text:
        raise InvalidArgumentError(f"data_dir must not hold a NUL character, got {value!r}")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"data_dir {text!r} exists and is not a directory")
    return path
