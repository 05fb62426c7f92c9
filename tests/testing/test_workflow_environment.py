"""``aion.testing.WorkflowEnvironment``: a real engine on a virtual clock that skips ahead when runs only wait on
time, and moves by hand with ``env.sleep``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.testing import WorkflowEnvironment
from tests.testing import kit_flows as flows

START = datetime(2030, 1, 1, tzinfo=UTC)


def env_with(**options: object) -> WorkflowEnvironment:
    return WorkflowEnvironment(
        workflows=[
            flows.month_then_approval,
            flows.retries_slowly,
            flows.waits_forever,
            flows.sleeps_then_tells_time,
            flows.calls_a_hanging_activity,
        ],
        activities=[flows.fails_once, flows.hangs],
        start_time=START,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.timeout(60)
def test_a_thirty_day_sleep_then_an_hour_long_signal_wait_times_out_in_virtual_time() -> None:
    with env_with() as env:
        handle = env.start_workflow(flows.month_then_approval)
        result = handle.result(timeout=30)
        assert result == "timed out at " + (START + timedelta(days=30, hours=1)).isoformat()
        assert env.now() >= START + timedelta(days=30, hours=1)
        fired = [e for e in handle.history() if isinstance(e, ev.TimerFired)]
        assert len(fired) == 2


@pytest.mark.timeout(60)
def test_a_signal_sent_during_the_month_is_taken_when_the_wait_begins() -> None:
    with env_with() as env:
        handle = env.start_workflow(flows.month_then_approval)
        handle.signal("approve", "alice")
        assert handle.result(timeout=30) == "approved by alice"
        assert env.now() < START + timedelta(days=30, hours=1)


@pytest.mark.timeout(60)
def test_a_retry_backoff_of_ten_minutes_passes_in_virtual_time(tmp_path: Path) -> None:
    with env_with() as env:
        handle = env.start_workflow(flows.retries_slowly, str(tmp_path / "marker"))
        assert handle.result(timeout=30) == "second attempt"
        failed = [e for e in handle.history() if isinstance(e, ev.ActivityFailed)]
        assert len(failed) == 1 and failed[0].next_attempt_at is not None
        assert failed[0].next_attempt_at - failed[0].recorded_at == timedelta(minutes=10)


@pytest.mark.timeout(60)
def test_a_workflow_timeout_of_a_day_fires_in_virtual_time() -> None:
    with env_with() as env:
        handle = env.start_workflow(flows.waits_forever, execution_timeout=timedelta(days=1))
        with pytest.raises(aion.errors.WorkflowTimedOutError):
            handle.result(timeout=30)
        closed = handle.history()[-1]
        assert isinstance(closed, ev.WorkflowTimedOut)
        assert closed.recorded_at >= START + timedelta(days=1)


@pytest.mark.timeout(60)
def test_timers_of_two_workflows_fire_in_virtual_time_order() -> None:
    with env_with() as env:
        late = env.start_workflow(flows.sleeps_then_tells_time, 2.0)
        early = env.start_workflow(flows.sleeps_then_tells_time, 1.0)
        assert datetime.fromisoformat(late.result(timeout=30)) >= START + timedelta(hours=2)
        assert datetime.fromisoformat(early.result(timeout=30)) < START + timedelta(hours=2)
        early_fired = next(e for e in early.history() if isinstance(e, ev.TimerFired))
        late_fired = next(e for e in late.history() if isinstance(e, ev.TimerFired))
        assert early_fired.recorded_at < late_fired.recorded_at


@pytest.mark.timeout(60)
def test_without_time_skipping_only_sleep_moves_the_clock() -> None:
    with env_with(time_skipping=False) as env:
        handle = env.start_workflow(flows.sleeps_then_tells_time, 1.0)
        env.sleep(timedelta(minutes=30))
        assert env.now() == START + timedelta(minutes=30)
        with pytest.raises(aion.errors.ResultTimeoutError):
            handle.result(timeout=0.3)
        env.sleep(timedelta(minutes=30))
        assert handle.result(timeout=30) == (START + timedelta(hours=1)).isoformat()


@pytest.mark.timeout(60)
def test_sleep_moves_the_clock_past_a_running_activitys_timeout(tmp_path: Path) -> None:
    with env_with(time_skipping=False) as env:
        handle = env.start_workflow(flows.calls_a_hanging_activity, str(tmp_path / "never"))
        env.sleep(timedelta(minutes=6))
        assert handle.result(timeout=30) == "failed: StartToCloseTimeout"


@pytest.mark.timeout(60)
def test_a_fake_activity_stands_in_for_the_real_one() -> None:
    @aion.activity.defn
    def fake_charge(amount: int) -> str:
        return f"charged {amount} (fake)"

    with WorkflowEnvironment(workflows=[flows.pays], activities={flows.charge: fake_charge}) as env:
        assert env.execute_workflow(flows.pays, 30) == "charged 30 (fake)"
        assert [run.workflow_type for run in env.list_workflows()] == ["pays"]


@pytest.mark.timeout(30)
def test_bad_arguments_are_typed_errors() -> None:
    with pytest.raises(aion.InvalidArgumentError, match="aware"):
        WorkflowEnvironment(start_time=datetime(2030, 1, 1))
    env = WorkflowEnvironment()
    with pytest.raises(aion.InvalidArgumentError, match="not started"):
        env.start_workflow(flows.waits_forever)
    with env:
        with pytest.raises(aion.InvalidArgumentError, match="duration must be zero or more seconds"):
            env.sleep(-1)
        with pytest.raises(aion.InvalidArgumentError, match="duration"):
            env.sleep(float("nan"))
