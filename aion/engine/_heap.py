"""Giving freed heap memory back to the operating system.

A burst of work (100,000 starts, say) leaves the engine process's C heap full of freed chunks between the
objects that stay (the runs that wait): glibc's allocator keeps them, so the process's RSS stays at the burst's
peak long after. ``malloc_trim`` returns the free pages inside that heap to the system (58 MiB of 265 MiB anonymous
memory in the engine with 100,000 runs waiting, see docs/benchmarks.md). It walks the heap (~20 ms for 900 MiB,
without the GIL), so :class:`HeapTrimmer` does it at most once per ``interval``: the engine calls it after idle
runs were evicted, the moment a quiet engine has memory to give back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from typing import Final

#: The shortest time (seconds) between two trims of one trimmer.
TRIM_INTERVAL: Final = 30.0


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM: Final = _find_malloc_trim()


class HeapTrimmer:
    """Returns the process's free heap pages to the system, at most once per ``interval`` seconds."""

    def __init__(self, interval: float = TRIM_INTERVAL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._last: float | None = None
        #: How many trims were done.
        self.trims = 0

    @staticmethod
    def available() -> bool:
        """Whether the C library can trim its heap here."""
        return _MALLOC_TRIM is not None

    def trim(self) -> bool:
        """Trim now unless the last trim was less than ``interval`` ago; whether it trimmed."""
        now = self._monotonic()
        if _MALLOC_TRIM is None or (self._last is not None and now - self._last < self._interval):
            return False
        self._last = now
        _MALLOC_TRIM(0)
        self.trims += 1
        return True
