"""Giving memory the engine no longer uses back to the operating system.

A burst of work (100,000 starts, say) leaves the engine process holding memory at the burst's peak long after:

- its C heap is full of freed chunks between the objects that stay (the runs that wait), which glibc's allocator
  keeps. ``malloc_trim`` returns the free pages inside that heap to the system (58 MiB of 265 MiB anonymous memory
  in the engine with 100,000 runs waiting, see docs/benchmarks.md);
- every page of the store's LMDB map that a read touched stays mapped into the process (~80 MiB after 100,000
  starts). The store drops them (``EventStore.release_cached_pages``): they stay in the OS page cache.

The heap walk takes ~20 ms for 900 MiB (without the GIL), so :class:`MemoryReturner` does both at most once per
``interval``: the engine asks for it after idle runs were evicted, the moment a quiet engine has memory to give
back, and asks again when told to wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from aion._libc import libc_function

#: The shortest time (seconds) between two returns of one returner.
RETURN_INTERVAL: Final = 30.0

#: glibc's ``malloc_trim``, or None where the C library has none (musl, macOS).
_MALLOC_TRIM: Final[Callable[[int], int] | None] = libc_function("malloc_trim")


def trim_heap() -> bool:
    """Return the C heap's free pages to the system; whether the C library could."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class MemoryReturner:
    """Trims the heap and calls ``release_cached`` (the store's ``release_cached_pages``), at most once per
    ``interval`` seconds of ``now``."""

    def __init__(
        self,
        release_cached: Callable[[], object] | None = None,
        interval: float = RETURN_INTERVAL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._release_cached = release_cached
        self._interval = interval
        self._now = now
        self._last: float | None = None
        #: How many returns were done.
        self.returns = 0

    def give_back(self) -> float | None:
        """Give the memory back now and return None, unless the last return was less than ``interval`` ago:
        then return when (in ``now``'s seconds) to ask again."""
        now = self._now()
        if self._last is not None and now - self._last < self._interval:
            return self._last + self._interval
        self._last = now
        trim_heap()
        if self._release_cached is not None:
            self._release_cached()
        self.returns += 1
        return None
