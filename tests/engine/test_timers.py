"""The timer service's thread fires every armed key at its time, whatever order keys were armed in (it is woken
only when a new time becomes the earliest)."""

from __future__ import annotations

import queue
import time
from collections.abc import Hashable, Iterator

import pytest

from aion.engine._timers import COMPACT_ABOVE, TimerService

#: A running timer service, and the queue its callback puts each due key into with the time it was called.
Fired = tuple[TimerService, queue.SimpleQueue[tuple[Hashable, float]]]


@pytest.fixture
def fired() -> Iterator[Fired]:
    got: queue.SimpleQueue[tuple[Hashable, float]] = queue.SimpleQueue()
    service = TimerService(lambda key: got.put((key, time.time())))
    service.start()
    try:
        yield service, got
    finally:
        service.stop()


@pytest.mark.timeout(10)
def test_an_earlier_time_armed_after_a_later_one_fires_at_its_own_time(fired: Fired) -> None:
    service, got = fired
    now = time.time()
    service.arm(now + 30, "late")
    time.sleep(0.05)  # the thread now waits for "late"
    service.arm(now + 0.2, "early")
    key, at = got.get(timeout=5)
    assert key == "early"
    assert now + 0.2 <= at < now + 2
    assert service.pending() == 1


@pytest.mark.timeout(10)
def test_later_times_armed_behind_an_earlier_one_fire_in_order(fired: Fired) -> None:
    service, got = fired
    now = time.time()
    service.arm(now + 0.1, "a")
    service.arm(now + 0.3, "c")  # not the earliest: the thread is not woken for it
    service.arm(now + 0.2, "b")
    order = [got.get(timeout=5) for _ in range(3)]
    assert [key for key, _ in order] == ["a", "b", "c"]
    for (_, at), due in zip(order, (0.1, 0.2, 0.3), strict=True):
        assert at >= now + due
    assert service.pending() == 0


@pytest.mark.timeout(10)
def test_rearming_moves_the_time_and_disarming_drops_the_key(fired: Fired) -> None:
    service, got = fired
    now = time.time()
    service.arm(now + 0.1, "gone")
    service.arm(now + 0.15, "moved")
    service.disarm("gone")
    service.arm(now + 0.4, "moved")  # later than its first time: fires only then
    service.arm(now + 0.2, "kept")
    assert got.get(timeout=5)[0] == "kept"
    key, at = got.get(timeout=5)
    assert key == "moved"
    assert at >= now + 0.4
    time.sleep(0.1)
    assert got.empty()
    assert service.pending() == 0


@pytest.mark.timeout(10)
def test_a_past_time_fires_at_once(fired: Fired) -> None:
    service, got = fired
    service.arm(time.time() + 60, "later")
    time.sleep(0.05)
    service.arm(time.time() - 1, "overdue")
    started = time.monotonic()
    assert got.get(timeout=5)[0] == "overdue"
    assert time.monotonic() - started < 1


@pytest.mark.timeout(10)
def test_disarmed_keys_do_not_pile_up_in_the_heap(fired: Fired) -> None:
    # An activity's hour-long timeout, disarmed as it completes, ten thousand times: its entries must not stay for
    # the hour (nor the ids of the runs they name).
    service, got = fired
    now = time.time()
    service.arm(now + 3600, "still armed")
    for number in range(10_000):
        service.arm(now + 3600, ("attempt", number))
        service.disarm(("attempt", number))
        assert service.entries() <= COMPACT_ABOVE + 1
    for number in range(10_000):  # moved, again and again, as heartbeats move their deadline
        service.arm(now + 3600 + number, "heartbeat")
        assert service.entries() <= COMPACT_ABOVE + 2
    assert service.pending() == 2
    assert got.empty()


@pytest.mark.timeout(10)
def test_rebuilding_the_heap_keeps_every_armed_key_and_its_time(fired: Fired) -> None:
    service, got = fired
    now = time.time()
    live = [f"live-{number}" for number in range(3 * COMPACT_ABOVE)]
    for number, key in enumerate(live):  # live keys due in order, dead ones in between to make rebuilds happen
        service.arm(now + 0.5 + number * 1e-5, key)
        service.arm(now + 3600, ("dead", number))
        service.disarm(("dead", number))
        if number % 3 == 0:
            service.arm(now + 0.5 + number * 1e-5, key)  # re-armed at the same time: one firing all the same
    assert service.pending() == len(live)
    assert service.entries() < 2 * len(live)  # rebuilt at least once
    order = [got.get(timeout=5)[0] for _ in live]
    assert order == live
    assert service.pending() == 0
    assert service.next_due() is None
