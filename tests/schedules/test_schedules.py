"""Schedules on a live engine: fires on time, overlap policies, pause, trigger, backfill, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.errors import InvalidArgumentError, ScheduleAlreadyExistsError, ScheduleNotFoundError
from aion.schedules import SchedulePolicy, ScheduleSpec
from aion.testing import WorkflowEnvironment
from tests.helpers import wait_until
from tests.schedules import flows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[aion.Engine]:
    with aion.Engine(tmp_path / "data", workflows=flows.ALL, activity_workers=1) as running:
        yield running


def history(engine: aion.Engine, schedule_id: str, kind: type[ev.Event]) -> list[ev.Event]:
    return [event for event in engine.store.read_schedule(schedule_id) if isinstance(event, kind)]


@pytest.mark.timeout(60)
def test_an_interval_of_one_second_fires_on_time_at_least_three_times(engine: aion.Engine) -> None:
    handle = engine.create_schedule("tick", flows.quick, 7, spec=ScheduleSpec(interval=1))
    wait_until(lambda: len(history(engine, "tick", ev.ScheduleFired)) >= 3, timeout=30)
    fired = history(engine, "tick", ev.ScheduleFired)
    for event in fired:
        assert isinstance(event, ev.ScheduleFired)
        assert event.fire_at.microsecond == 0  # on the interval's grid
        assert event.recorded_at >= event.fire_at
        assert event.started_workflow_id == f"tick-{event.fire_at.strftime('%Y-%m-%dT%H:%M:%S')}Z"
        started = engine.store.read_history(event.started_workflow_id)[0]
        assert isinstance(started, ev.WorkflowStarted)
        assert started.run_id == event.run_id
        assert started.recorded_at == event.recorded_at  # one transaction
        assert engine.get_workflow(event.started_workflow_id).result(timeout=30) == 7
    description = handle.describe()
    assert description.fired >= 3
    assert len(description.next_fires) == 10
    assert all(action.workflow_id.startswith("tick-") for action in description.recent_actions)


@pytest.mark.timeout(60)
def test_skip_skips_fires_while_the_started_workflow_runs_and_counts_them(engine: aion.Engine) -> None:
    handle = engine.create_schedule("skip", flows.blocks, spec=ScheduleSpec(interval=1))
    wait_until(lambda: handle.describe().skipped >= 2, timeout=30)
    fired = history(engine, "skip", ev.ScheduleFired)
    assert len(fired) == 1
    skipped = history(engine, "skip", ev.ScheduleSkipped)
    assert all(isinstance(s, ev.ScheduleSkipped) and s.reason == "overlap" for s in skipped)


@pytest.mark.timeout(60)
def test_buffer_one_runs_one_fire_after_the_running_workflow(engine: aion.Engine) -> None:
    handle = engine.create_schedule(
        "buf", flows.blocks, spec=ScheduleSpec(interval=1), policy=SchedulePolicy(overlap="buffer_one")
    )
    wait_until(lambda: history(engine, "buf", ev.ScheduleSkipped), timeout=30)  # the buffer is full
    first = history(engine, "buf", ev.ScheduleFired)
    assert len(first) == 1 and handle.describe().buffered == 1
    assert isinstance(first[0], ev.ScheduleFired)
    handle.pause()  # no more fires: only the buffered one may start
    engine.get_workflow(first[0].started_workflow_id).signal("go", 1)
    wait_until(lambda: len(history(engine, "buf", ev.ScheduleFired)) == 2, timeout=30)
    second = history(engine, "buf", ev.ScheduleFired)[1]
    buffered = history(engine, "buf", ev.ScheduleBuffered)[0]
    assert isinstance(second, ev.ScheduleFired) and isinstance(buffered, ev.ScheduleBuffered)
    assert second.fire_at == buffered.fire_at
    assert handle.describe().buffered == 0


@pytest.mark.timeout(60)
def test_cancel_other_cancels_the_running_workflow_and_starts_the_new_one(engine: aion.Engine) -> None:
    engine.create_schedule(
        "cancel", flows.blocks, spec=ScheduleSpec(interval=1), policy=SchedulePolicy(overlap="cancel_other")
    )
    wait_until(lambda: len(history(engine, "cancel", ev.ScheduleFired)) >= 2, timeout=30)
    first, second = history(engine, "cancel", ev.ScheduleFired)[:2]
    assert isinstance(first, ev.ScheduleFired) and isinstance(second, ev.ScheduleFired)
    info = engine.store.get_run(first.started_workflow_id)
    assert info is not None and info.status.value == "cancelled"


@pytest.mark.timeout(60)
def test_pause_stops_fires_and_unpause_resumes_them(engine: aion.Engine) -> None:
    handle = engine.create_schedule("p", flows.quick, 1, spec=ScheduleSpec(interval=1))
    wait_until(lambda: history(engine, "p", ev.ScheduleFired), timeout=30)
    handle.pause("maintenance")
    description = handle.describe()
    assert description.paused and description.note == "maintenance" and description.next_fires == []
    count = len(history(engine, "p", ev.ScheduleFired))
    paused_at = engine.store.read_schedule("p")[-1].recorded_at
    # Fires that come due while paused start nothing: wait past two of them (on the trigger's own record).
    wait_until(lambda: datetime.now(UTC) > paused_at + timedelta(seconds=2.1), timeout=10)
    assert len(history(engine, "p", ev.ScheduleFired)) == count
    handle.unpause("back")
    wait_until(lambda: len(history(engine, "p", ev.ScheduleFired)) > count, timeout=30)
    resumed = history(engine, "p", ev.ScheduleFired)[count]
    unpaused = history(engine, "p", ev.ScheduleUnpaused)[0]
    assert resumed.recorded_at > unpaused.recorded_at
    assert not handle.describe().paused


@pytest.mark.timeout(60)
def test_trigger_and_backfill(engine: aion.Engine) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    handle = engine.create_schedule(
        "bf", flows.quick, 3, spec=ScheduleSpec(cron="0 * * * *"), policy=SchedulePolicy(overlap="allow_all")
    )
    fired = handle.trigger()
    assert isinstance(fired, ev.ScheduleFired) and fired.manual == "trigger"
    assert engine.get_workflow(fired.started_workflow_id).result(timeout=30) == 3
    outcomes = handle.backfill(start, start + timedelta(hours=2, minutes=30))
    ids = [o.started_workflow_id for o in outcomes if isinstance(o, ev.ScheduleFired)]
    assert ids == ["bf-2026-01-01T00:00:00Z", "bf-2026-01-01T01:00:00Z", "bf-2026-01-01T02:00:00Z"]
    again = handle.backfill(start, start + timedelta(hours=1))  # the same fires again: skipped, not restarted
    assert [o.reason for o in again if isinstance(o, ev.ScheduleSkipped)] == ["exists", "exists"]
    for workflow_id in ids:
        assert engine.get_workflow(workflow_id).result(timeout=30) == 3
        assert len(engine.store.read_history(workflow_id)) == 2  # one run


@pytest.mark.timeout(60)
def test_bad_input_names_the_field(engine: aion.Engine) -> None:
    cases = [
        (lambda: ScheduleSpec(cron="61 * * * *"), "cron"),
        (lambda: ScheduleSpec(cron=["* * * * *", "nope"]), "cron[1]"),
        (lambda: ScheduleSpec(interval=0), "interval"),
        (lambda: ScheduleSpec(interval=-1), "interval"),
        (lambda: ScheduleSpec(interval=1, timezone="Nowhere/Atlantis"), "timezone"),
        (
            lambda: ScheduleSpec(
                interval=1, start_at=datetime(2026, 2, 1, tzinfo=UTC), end_at=datetime(2026, 1, 1, tzinfo=UTC)
            ),
            "end_at",
        ),
        (lambda: SchedulePolicy(overlap="sometimes"), "overlap"),
        (lambda: engine.create_schedule("x", "no_such_workflow", spec=ScheduleSpec(interval=1)), "workflow"),
    ]
    for make, field in cases:
        with pytest.raises(InvalidArgumentError, match=field.replace("[", r"\[")):
            make()
    engine.create_schedule("dup", flows.quick, 1, spec=ScheduleSpec(interval=3600))
    with pytest.raises(ScheduleAlreadyExistsError):
        engine.create_schedule("dup", flows.quick, 1, spec=ScheduleSpec(interval=3600))
    with pytest.raises(ScheduleNotFoundError):
        engine.get_schedule("missing")
    engine.get_schedule("dup").delete()
    with pytest.raises(ScheduleNotFoundError):
        engine.get_schedule("dup")
    assert [d.schedule_id for d in engine.list_schedules()] == []
    engine.create_schedule("dup", flows.quick, 1, spec=ScheduleSpec(interval=3600))  # created again
    assert [d.schedule_id for d in engine.list_schedules()] == ["dup"]


@pytest.mark.timeout(60)
def test_cron_in_a_timezone_across_a_dst_change_on_a_virtual_clock() -> None:
    # 09:00 in New York: 14:00 UTC before the change of 8 March 2026, 13:00 UTC after it.
    with WorkflowEnvironment(flows.ALL, start_time=datetime(2026, 3, 6, 12, tzinfo=UTC)) as env:
        env.engine.create_schedule(
            "nyc", flows.quick, 1, spec=ScheduleSpec(cron="0 9 * * *", timezone="America/New_York")
        )
        env.sleep(timedelta(days=4))
        fired = [e for e in env.engine.store.read_schedule("nyc") if isinstance(e, ev.ScheduleFired)]
        assert [e.fire_at for e in fired] == [
            datetime(2026, 3, 6, 14, tzinfo=UTC),
            datetime(2026, 3, 7, 14, tzinfo=UTC),
            datetime(2026, 3, 8, 13, tzinfo=UTC),
            datetime(2026, 3, 9, 13, tzinfo=UTC),
        ]
        for event in fired:
            assert event.recorded_at == event.fire_at  # the virtual clock stood at the fire time
