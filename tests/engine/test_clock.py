"""The engine on a manual clock: timers, signal-wait timeouts, run timeouts and activity backoffs come due when
the clock is moved, not when real time passes (the injected clock of the core, the timer service, the activity
manager and residency)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.clock import ManualClock
from aion.engine._timers import TimerService
from tests.engine import clock_flows as flows
from tests.helpers import wait_until

DAY = 86_400.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture
def engine(tmp_path: Path, clock: ManualClock) -> Iterator[aion.Engine]:
    with aion.Engine(
        tmp_path / "data",
        workflows=[flows.sleeps_a_month, flows.waits_for_approval, flows.retries_after_ten_minutes, flows.runs_forever],
        activities=[flows.fails_once],
        activity_workers=1,
        clock=clock,
    ) as engine:
        yield engine


def recorded(handle: aion.WorkflowHandle, event_type: type[ev.Event]) -> list[ev.Event]:
    return [event for event in handle.history() if isinstance(event, event_type)]


def still_running(handle: aion.WorkflowHandle) -> bool:
    """The run has not closed after a short real-time wait (the manual clock did not move it on)."""
    with pytest.raises(aion.errors.ResultTimeoutError):
        handle.result(timeout=0.3)
    return True


@pytest.mark.timeout(30)
def test_a_thirty_day_sleep_ends_when_the_clock_is_moved_thirty_days(engine: aion.Engine, clock: ManualClock) -> None:
    handle = engine.start_workflow(flows.sleeps_a_month)
    wait_until(lambda: recorded(handle, ev.TimerStarted))
    clock.advance(29 * DAY)
    assert still_running(handle)
    clock.advance(DAY + 1)  # events are stamped to the microsecond: a second beyond is past the timer
    assert handle.result(timeout=10) == "woke up"
    assert len(recorded(handle, ev.TimerFired)) == 1


@pytest.mark.timeout(30)
def test_a_signal_wait_times_out_in_clock_time(engine: aion.Engine, clock: ManualClock) -> None:
    handle = engine.start_workflow(flows.waits_for_approval)
    wait_until(lambda: recorded(handle, ev.TimerStarted))
    clock.advance(3601)
    assert handle.result(timeout=10) == "nobody approved"


@pytest.mark.timeout(30)
def test_a_signal_before_the_clock_moves_wins(engine: aion.Engine, clock: ManualClock) -> None:
    handle = engine.start_workflow(flows.waits_for_approval)
    wait_until(lambda: recorded(handle, ev.TimerStarted))
    handle.signal("approve", "alice")
    assert handle.result(timeout=10) == "alice"
    clock.advance(3600)
    assert not recorded(handle, ev.TimerFired)


@pytest.mark.timeout(30)
def test_an_activity_backoff_of_ten_minutes_ends_when_the_clock_moves(
    engine: aion.Engine, clock: ManualClock, tmp_path: Path
) -> None:
    handle = engine.start_workflow(flows.retries_after_ten_minutes, str(tmp_path / "marker"))
    failed = wait_until(lambda: recorded(handle, ev.ActivityFailed))[0]
    assert isinstance(failed, ev.ActivityFailed) and failed.next_attempt_at is not None
    assert failed.next_attempt_at.timestamp() == pytest.approx(clock.time() + 600, abs=1)
    assert still_running(handle)
    clock.advance(601)
    assert handle.result(timeout=10) == "second attempt"


@pytest.mark.timeout(30)
def test_a_run_timeout_fires_in_clock_time(engine: aion.Engine, clock: ManualClock) -> None:
    handle = engine.start_workflow(flows.runs_forever, run_timeout=timedelta(hours=2))
    clock.advance(3599)
    assert still_running(handle)
    clock.advance(2 * 3600)
    with pytest.raises(aion.errors.WorkflowTimedOutError):
        handle.result(timeout=10)


@pytest.mark.timeout(10)
def test_the_timer_service_fires_due_keys_in_time_order_when_the_clock_moves(clock: ManualClock) -> None:
    fired: queue.SimpleQueue[str] = queue.SimpleQueue()
    service = TimerService(fired.put, clock)
    service.start()
    try:
        now = clock.time()
        service.arm(now + 300, "third")
        service.arm(now + 100, "first")
        service.arm(now + 200, "second")
        service.arm(now + 10_000, "later")
        clock.advance(99)
        clock.advance(301)
        assert [fired.get(timeout=5) for _ in range(3)] == ["first", "second", "third"]
        assert service.pending() == 1
    finally:
        service.stop()
