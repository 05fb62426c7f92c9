"""``result()`` is handed the run's terminal event by the commit that made it durable (``Closures``), and still
returns values of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aion
from aion import events as ev
from aion.engine._closures import RECENT_CLOSURES, RECENT_RESULT_MAX, Closures
from tests.engine import flows
from tests.helpers import wait_until


def _completed(result: Any = 1) -> ev.WorkflowCompleted:
    return ev.WorkflowCompleted(workflow_id="w", seq=2, result=result)


@pytest.mark.timeout(10)
def test_a_waiter_on_an_open_run_is_handed_its_terminal_event() -> None:
    closures = Closures()
    closures.opened("w", "r1")
    terminal = _completed()
    with closures.watch("w", "r1") as waiter:
        assert waiter.open  # it need not look in the store first
        threading.Timer(0.05, closures.closed, ("w", "r1", terminal)).start()
        assert waiter.wait(5)
        assert waiter.terminal is terminal
    with closures.watch("w", "r1") as later:
        assert not later.open  # closed: a later waiter reads the store
        assert not later.wait(0.01)


@pytest.mark.timeout(10)
def test_closed_wakes_only_the_runs_waiters_and_forget_sends_them_to_the_store() -> None:
    closures = Closures()
    closures.opened("w", "r1")
    closures.opened("v", "r2")
    with closures.watch("w", "r1") as first, closures.watch("v", "r2") as second, closures.watch("x", "r9") as other:
        assert first.open and second.open and not other.open  # "x" was never opened: read the store
        closures.closed("w", "r1", _completed())
        assert first.wait(0) and first.terminal is not None
        assert not second.wait(0) and not other.wait(0)
        closures.forget("v", "r2")
        assert second.wait(0) and second.terminal is None  # woken to look again
    with closures.watch("v", "r2") as again:
        assert not again.open


@pytest.mark.timeout(10)
def test_a_successor_run_is_the_open_one_and_its_predecessors_close_leaves_it_open() -> None:
    # One open run per workflow id: a successor (continue-as-new) opened before its predecessor's close was
    # reported sends the predecessor's new waiters to the store (where it is closed), and stays open itself.
    closures = Closures()
    closures.opened("w", "r1")
    closures.opened("w", "r2")
    with closures.watch("w", "r1") as predecessor:
        assert not predecessor.open
    closures.closed("w", "r1", _completed())
    with closures.watch("w", "r2") as successor:
        assert successor.open


@pytest.mark.timeout(10)
def test_reset_forgets_every_open_run_and_a_wait_times_out() -> None:
    closures = Closures()
    closures.opened("w", "r1")
    closures.reset()
    with closures.watch("w", "r1") as waiter:
        assert not waiter.open
        assert not waiter.wait(0.02)
        assert waiter.terminal is None


@pytest.mark.timeout(10)
def test_recent_small_completions_are_remembered_within_the_bound() -> None:
    closures = Closures()
    big = "x" * (RECENT_RESULT_MAX + 1)
    closures.closed("w", "big", _completed(big))
    closures.closed("w", "list", _completed([1]))  # a mutable result: the store gives each caller its own
    closures.closed("w", "failed", ev.WorkflowFailed(workflow_id="w", seq=2, failure=ev.Failure("E", "boom")))
    for index in range(RECENT_CLOSURES + 1):
        closures.closed("w", f"r{index}", _completed(index))
    for run_id in ("big", "list", "failed", "r0"):  # r0 is the oldest beyond the bound
        with closures.watch("w", run_id) as waiter:
            assert waiter.terminal is None and not waiter.open
    with closures.watch("w", "r1") as kept, closures.watch("w", f"r{RECENT_CLOSURES}") as newest:
        assert isinstance(kept.terminal, ev.WorkflowCompleted) and kept.terminal.result == 1
        assert isinstance(newest.terminal, ev.WorkflowCompleted) and newest.terminal.result == RECENT_CLOSURES


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES) as running:
        yield running


@pytest.mark.timeout(60)
def test_each_result_call_gets_a_value_of_its_own(engine: aion.Engine, log: str) -> None:
    handle = engine.start_workflow(flows.waits_for_signals, log, 1)
    wait_until(lambda: engine.workflow_pid(handle.workflow_id))
    results: list[Any] = []
    waiters = [threading.Thread(target=lambda: results.append(handle.result(timeout=30))) for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    handle.signal("item", {"items": [1]})
    for waiter in waiters:
        waiter.join(30)
    assert results == [[{"items": [1]}], [{"items": [1]}]]
    results[0][0]["items"].append(2)  # handed over from the commit, yet not shared
    assert results[1] == [{"items": [1]}]
    assert handle.result(timeout=1) == [{"items": [1]}]
