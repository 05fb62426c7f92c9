"""Overlap policies, pause_on_failure, jitter, update, skip, offset and start_at/end_at, on real engines with a
virtual clock (``WorkflowEnvironment``: time skips while nothing but timers and schedules are pending)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from aion import events as ev
from aion.schedules import SchedulePolicy, ScheduleSpec
from aion.status import WorkflowStatus
from aion.testing import WorkflowEnvironment
from tests.helpers import wait_until
from tests.schedules import flows

T0 = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def env() -> Iterator[WorkflowEnvironment]:
    with WorkflowEnvironment(flows.ALL, start_time=T0) as running:
        yield running


def of(env: WorkflowEnvironment, schedule_id: str, kind: type[ev.Event]) -> list[ev.Event]:
    return [event for event in env.engine.store.read_schedule(schedule_id) if isinstance(event, kind)]


def fired(env: WorkflowEnvironment, schedule_id: str) -> list[ev.ScheduleFired]:
    return [e for e in of(env, schedule_id, ev.ScheduleFired) if isinstance(e, ev.ScheduleFired)]


def status(env: WorkflowEnvironment, workflow_id: str) -> WorkflowStatus:
    run = env.engine.store.get_run(workflow_id)
    assert run is not None
    return run.status


@pytest.mark.timeout(60)
def test_buffer_all_buffers_every_overlapping_fire_and_starts_them_in_order(env: WorkflowEnvironment) -> None:
    handle = env.engine.create_schedule(
        "all", flows.blocks, spec=ScheduleSpec(interval=10), policy=SchedulePolicy(overlap="buffer_all")
    )
    env.sleep(timedelta(seconds=45))  # fires at :10 (starts), :20, :30, :40 (buffered)
    assert len(fired(env, "all")) == 1
    assert handle.describe().buffered == 3
    assert not of(env, "all", ev.ScheduleSkipped)
    handle.pause()  # only the buffered fires may start now
    buffered = [e.fire_at for e in of(env, "all", ev.ScheduleBuffered) if isinstance(e, ev.ScheduleBuffered)]
    for index in range(3):
        env.get_workflow(fired(env, "all")[index].started_workflow_id).signal("go", index)
        wait_until(lambda n=index: len(fired(env, "all")) == n + 2, timeout=30)
    assert [e.fire_at for e in fired(env, "all")[1:]] == buffered
    assert handle.describe().buffered == 0


@pytest.mark.timeout(60)
def test_terminate_other_terminates_the_running_workflow_and_starts_the_new_one(env: WorkflowEnvironment) -> None:
    env.engine.create_schedule(
        "term", flows.blocks, spec=ScheduleSpec(interval=10), policy=SchedulePolicy(overlap="terminate_other")
    )
    env.sleep(timedelta(seconds=15))  # the first fire is the first multiple of 10 s after the creation
    wait_until(lambda: len(fired(env, "term")) == 1, timeout=30)
    first = fired(env, "term")[0].started_workflow_id
    env.sleep(timedelta(seconds=10))
    wait_until(lambda: len(fired(env, "term")) == 2, timeout=30)
    wait_until(lambda: status(env, first) is WorkflowStatus.TERMINATED, timeout=30)
    assert status(env, fired(env, "term")[1].started_workflow_id) is WorkflowStatus.RUNNING
    assert not of(env, "term", ev.ScheduleSkipped) and not of(env, "term", ev.ScheduleBuffered)


@pytest.mark.timeout(60)
def test_allow_all_starts_every_fire_while_the_others_run(env: WorkflowEnvironment) -> None:
    handle = env.engine.create_schedule(
        "many", flows.blocks, spec=ScheduleSpec(interval=10), policy=SchedulePolicy(overlap="allow_all")
    )
    env.sleep(timedelta(seconds=35))
    wait_until(lambda: len(fired(env, "many")) == 3, timeout=30)
    ids = [event.started_workflow_id for event in fired(env, "many")]
    assert len(set(ids)) == 3
    assert all(status(env, workflow_id) is WorkflowStatus.RUNNING for workflow_id in ids)
    assert handle.describe().skipped == 0 and handle.describe().buffered == 0


@pytest.mark.timeout(60)
def test_pause_on_failure_pauses_the_schedule_when_a_started_run_fails(env: WorkflowEnvironment) -> None:
    handle = env.engine.create_schedule(
        "fragile", flows.fails, spec=ScheduleSpec(interval=10), policy=SchedulePolicy(pause_on_failure=True)
    )
    env.sleep(timedelta(seconds=15))
    wait_until(lambda: handle.describe().paused, timeout=30)
    description = handle.describe()
    first = fired(env, "fragile")[0].started_workflow_id
    assert status(env, first) is WorkflowStatus.FAILED
    assert description.note is not None and first in description.note
    env.sleep(timedelta(seconds=60))  # paused: no more fires
    assert len(fired(env, "fragile")) == 1


@pytest.mark.timeout(60)
def test_without_pause_on_failure_a_failed_run_does_not_pause(env: WorkflowEnvironment) -> None:
    handle = env.engine.create_schedule("sturdy", flows.fails, spec=ScheduleSpec(interval=10))
    env.sleep(timedelta(seconds=35))
    wait_until(lambda: len(fired(env, "sturdy")) >= 3, timeout=30)
    assert not handle.describe().paused


@pytest.mark.timeout(60)
def test_jitter_delays_each_fire_within_the_window_deterministically(env: WorkflowEnvironment) -> None:
    spec = ScheduleSpec(interval=60, jitter=30)
    env.engine.create_schedule("jit", flows.quick, 1, spec=spec)
    env.sleep(timedelta(minutes=5))
    events = fired(env, "jit")
    assert len(events) >= 4
    delays = [(event.recorded_at - event.fire_at).total_seconds() for event in events]
    assert all(0 <= delay < 30 for delay in delays)
    assert len(set(delays)) > 1  # not one fixed delay
    for event, delay in zip(events, delays, strict=True):
        assert event.fire_at.second == 0  # the workflow id keeps the nominal time
        assert delay == pytest.approx(spec.jitter_of("jit", event.fire_at), abs=1e-3)
    # Another process (an engine restarted) computes the same delays: nothing random, nothing per process.
    code = (
        "import sys; from datetime import datetime; from aion.schedules import ScheduleSpec; "
        "s = ScheduleSpec(interval=60, jitter=30); "
        "print(*[s.jitter_of('jit', datetime.fromisoformat(a)) for a in sys.argv[1:]])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *[e.fire_at.isoformat() for e in events]],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert [float(x) for x in out.stdout.split()] == [spec.jitter_of("jit", e.fire_at) for e in events]


@pytest.mark.timeout(60)
def test_update_changes_the_spec_from_the_next_fire_and_is_recorded(env: WorkflowEnvironment) -> None:
    handle = env.engine.create_schedule("upd", flows.quick, 1, spec=ScheduleSpec(interval=3600))
    env.sleep(timedelta(seconds=1))
    before = len(fired(env, "upd"))  # T0 is on the hour grid: one fire at most
    handle.update(spec=ScheduleSpec(interval=10), policy=SchedulePolicy(overlap="allow_all"))
    updated = of(env, "upd", ev.ScheduleUpdated)
    assert len(updated) == 1
    description = handle.describe()
    assert description.spec.interval == 10 and description.policy.overlap.value == "allow_all"
    env.sleep(timedelta(seconds=35))
    after = fired(env, "upd")[before:]
    assert len(after) >= 3
    assert all(event.fire_at.second % 10 == 0 for event in after)


@pytest.mark.timeout(60)
def test_skip_excludes_the_matching_fire_times(env: WorkflowEnvironment) -> None:
    env.engine.create_schedule("odd", flows.quick, 1, spec=ScheduleSpec(cron="* * * * *", skip="*/2 * * * *"))
    env.sleep(timedelta(minutes=10))
    minutes = [event.fire_at.minute for event in fired(env, "odd")]
    assert len(minutes) >= 4
    assert all(minute % 2 == 1 for minute in minutes)


@pytest.mark.timeout(60)
def test_offset_moves_the_interval_grid(env: WorkflowEnvironment) -> None:
    env.engine.create_schedule("off", flows.quick, 1, spec=ScheduleSpec(interval=60, offset=15))
    env.sleep(timedelta(minutes=4))
    events = fired(env, "off")
    assert len(events) >= 3
    assert all(event.fire_at.second == 15 for event in events)


@pytest.mark.timeout(60)
def test_start_at_and_end_at_bound_the_fires(env: WorkflowEnvironment) -> None:
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)
    handle = env.engine.create_schedule(
        "window", flows.quick, 1, spec=ScheduleSpec(interval=10, start_at=start, end_at=end)
    )
    env.sleep(timedelta(minutes=3))
    times = [event.fire_at for event in fired(env, "window")]
    assert times == [start, start + timedelta(seconds=10), start + timedelta(seconds=20), end]
    assert handle.describe().next_fires == []
