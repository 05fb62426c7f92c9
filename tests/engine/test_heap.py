"""The engine gives freed heap memory back to the system (``aion.engine._heap``) after evicting idle runs."""

from __future__ import annotations

import psutil
import pytest

from aion.clock import ManualClock
from aion.engine._heap import HeapTrimmer
from aion.engine._residency import Residency
from aion.engine._runs import Run, RunState

pytestmark = pytest.mark.skipif(not HeapTrimmer.available(), reason="the C library has no malloc_trim")

MIB = 1024 * 1024


@pytest.mark.timeout(60)
def test_a_trim_returns_the_free_pages_between_objects_that_stay() -> None:
    # Objects that stay interleaved with garbage, as a burst of starts leaves them: freeing the garbage does
    # not shrink the process; the trim does.
    kept, garbage = [], []
    for _ in range(10_000):
        kept.append(bytearray(600))
        garbage.append(bytearray(16_000))
    del garbage
    before = psutil.Process().memory_info().rss
    assert HeapTrimmer().trim()
    after = psutil.Process().memory_info().rss
    assert before - after > 50 * MIB
    assert len(kept) == 10_000


@pytest.mark.timeout(10)
def test_trims_are_at_least_an_interval_apart() -> None:
    now = [100.0]
    trimmer = HeapTrimmer(interval=30.0, monotonic=lambda: now[0])
    assert trimmer.trim()
    now[0] += 29.0
    assert not trimmer.trim()
    now[0] += 1.0
    assert trimmer.trim()
    assert trimmer.trims == 2


def parked_run(workflow_id: str) -> Run:
    run = Run(RunState(workflow_id, f"run-{workflow_id}", "waiter", head=1))
    run.link.connected(channel=object(), seen=1)  # up ...
    run.link.acked = 1  # ... and has answered everything it was sent
    return run


@pytest.mark.timeout(10)
def test_a_sweep_that_evicted_idle_runs_asks_for_a_trim_and_one_that_did_not_does_not() -> None:
    clock = ManualClock(1000.0)
    sweeps: list[int] = []
    slots = Residency(
        8, lambda run: None, lambda run: None, lambda at: None, clock, idle_after=60.0,
        after_idle_evictions=lambda: sweeps.append(slots.evictions),
    )  # fmt: skip
    run = parked_run("idle")
    slots.want(run, started=False)
    clock.set(1030.0)
    slots.recheck()
    assert sweeps == [] and slots.is_resident(run)  # not idle long enough: nothing evicted, no trim
    clock.set(1061.0)
    slots.recheck()
    assert sweeps == [1] and not slots.is_resident(run)
    slots.recheck()
    assert sweeps == [1]  # nothing left to evict
