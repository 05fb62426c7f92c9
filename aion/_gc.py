"""Pausing Python's cyclic garbage collector around bulk work that makes many young objects and drops them by
their reference counts (decoding a history, replaying it): the collector would otherwise walk them again and again
(and now and then the whole heap) as they are made, for nothing to free."""

from __future__ import annotations

import gc
from types import TracebackType


class collector_paused:  # noqa: N801 - used like a function: ``with collector_paused():``
    """Disable the cyclic collector for the ``with`` block; enable it again after, unless it was off already (the
    collector is process-wide: a block nested in another, or run by another thread meanwhile, leaves it to
    whoever disabled it first).

    A class rather than a ``contextlib.contextmanager``: a workflow process enters it several times per run, and
    the generator-based manager's setup was a measurable share of a short run's work."""

    __slots__ = ("_paused",)

    def __enter__(self) -> None:
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._paused:
            gc.enable()
