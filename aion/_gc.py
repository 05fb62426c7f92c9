"""Pausing Python's cyclic garbage collector around bulk work that makes many young objects and drops them by
their reference counts (decoding a history, replaying it): the collector would otherwise walk them again and again
(and now and then the whole heap) as they are made, for nothing to free."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; enable it again after, unless it was off already (the
    collector is process-wide: a block nested in another, or run by another thread meanwhile, leaves it to
    whoever disabled it first)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
