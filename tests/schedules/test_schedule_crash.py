"""Schedules across engine SIGKILLs: missed fires inside the catch-up window are taken up once each, older ones
skipped and counted, and no fire ever starts twice."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path

import pytest

from aion import events as ev
from aion.store import open_store
from tests.engine.helpers import engine_process
from tests.helpers import wait_until

MODULE = "tests.schedules.engine_proc"


def schedule_events(data: Path) -> list[ev.Event]:
    store = open_store(data, readonly=True)
    try:
        return store.read_schedule("every")
    finally:
        store.close()


def fired(data: Path) -> list[ev.ScheduleFired]:
    return [e for e in schedule_events(data) if isinstance(e, ev.ScheduleFired)]


def check_exactly_once(data: Path) -> None:
    """Every fire time is accounted for once, and each fired one started exactly one run of its id."""
    events = schedule_events(data)
    times = [e.fire_at for e in events if isinstance(e, ev.ScheduleFired | ev.ScheduleSkipped)]
    assert len(times) == len(set(times)), "a fire time was handled twice"
    store = open_store(data, readonly=True)
    try:
        for event in events:
            if isinstance(event, ev.ScheduleFired):
                starts = [e for e in store.read_history(event.started_workflow_id) if isinstance(e, ev.WorkflowStarted)]
                assert [s.run_id for s in starts] == [event.run_id]
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_fires_missed_while_killed_are_taken_up_inside_the_window_and_older_ones_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with engine_process(MODULE, data, 1.5) as kill:
        wait_until(lambda: len(fired(data)) >= 2, timeout=30)
        kill()
    killed_at = time.time()
    down_from = fired(data)[-1].fire_at
    wait_until(lambda: time.time() > killed_at + 3, timeout=10)  # down for 3 s
    with engine_process(MODULE, data, 1.5) as kill:
        wait_until(lambda: any(f.fire_at > down_from + timedelta(seconds=5) for f in fired(data)), timeout=30)
        kill()
    events = schedule_events(data)
    missed = [e for e in events if isinstance(e, ev.ScheduleMissed)]
    assert len(missed) == 1 and missed[0].count >= 1
    taken_up = [f for f in fired(data) if down_from < f.fire_at <= missed[0].up_to + timedelta(seconds=3)]
    assert all(f.fire_at > missed[0].up_to for f in taken_up)
    # The fires inside the window were taken up late (recorded after the restart), each once.
    late = [f for f in taken_up if (f.recorded_at - f.fire_at).total_seconds() > 0.3]
    assert late
    check_exactly_once(data)
    # Every fire time after the last fire before the kill is accounted for: missed or fired, no gap.
    after = sorted(f.fire_at for f in fired(data) if f.fire_at > down_from)
    expected = missed[0].count + len(after)
    span = int((after[-1] - down_from).total_seconds())
    assert expected == span


@pytest.mark.timeout(180)
def test_no_fire_is_started_twice_across_kills_at_random_instants(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(20)
    for _ in range(4):
        with engine_process(MODULE, data, 3600) as kill:
            started = time.time()
            pause = rng.uniform(0.5, 2.5)
            wait_until(lambda pause=pause, started=started: time.time() > started + pause, timeout=10)
            kill()
    check_exactly_once(data)
    times = sorted(f.fire_at for f in fired(data))
    assert times, "the schedule should have fired"
    # With a catch-up window of an hour nothing is missed: every second from the first fire on is fired once.
    assert len(times) == int((times[-1] - times[0]).total_seconds()) + 1
