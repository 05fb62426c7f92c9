"""Residency as a pure policy (no processes): who gets a slot, who waits, who is released."""

from __future__ import annotations

import pytest

from aion.clock import ManualClock
from aion.engine._residency import Residency
from aion.engine._runs import Run, RunState


def run_of(workflow_id: str, run_id: str) -> Run:
    return Run(RunState(workflow_id, run_id, "looper", head=1))


@pytest.mark.timeout(10)
def test_a_successor_queued_behind_its_own_closing_run_gets_the_slot_that_run_frees() -> None:
    # Continue-as-new with every slot taken: the successor asks for a slot while its predecessor (same workflow
    # id) still holds one; releasing the predecessor must not drop the successor from the line.
    spawned: list[Run] = []
    slots = Residency(1, spawned.append, lambda run: None, lambda at: None, ManualClock())
    first = run_of("looper-1", "run-1")
    slots.want(first, started=False)
    successor = run_of("looper-1", "run-2")
    slots.want(successor, started=True)
    assert spawned == [first] and slots.waiting == 1
    slots.release(first)
    assert spawned == [first, successor]
    assert slots.is_resident(successor) and slots.waiting == 0


@pytest.mark.timeout(10)
def test_releasing_a_waiting_run_takes_it_out_of_the_line() -> None:
    spawned: list[Run] = []
    slots = Residency(1, spawned.append, lambda run: None, lambda at: None, ManualClock())
    holder, waiter = run_of("a", "run-a"), run_of("b", "run-b")
    slots.want(holder, started=False)
    slots.want(waiter, started=False)
    slots.release(waiter)
    assert slots.waiting == 0
    slots.release(holder)
    assert spawned == [holder]
