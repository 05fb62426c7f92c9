"""Fixtures of the store tests: each store implementation, and event builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aion.clock import ManualClock
from aion.store import EventStore, MemoryEventStore, open_store


@pytest.fixture(params=["memory", "lmdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """Each implementation of the event store, fresh (the LMDB one in a temporary data directory)."""
    made: EventStore = MemoryEventStore() if request.param == "memory" else open_store(tmp_path / "data")
    yield made
    made.close()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock()


@pytest.fixture(params=["memory", "lmdb"])
def clocked_store(request: pytest.FixtureRequest, tmp_path: Path, manual_clock: ManualClock) -> Iterator[EventStore]:
    """Each implementation of the event store, fresh, opened with ``manual_clock``."""
    made: EventStore = (
        MemoryEventStore(clock=manual_clock)
        if request.param == "memory"
        else open_store(tmp_path / "data", clock=manual_clock)
    )
    yield made
    made.close()
