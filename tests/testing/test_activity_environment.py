"""``aion.testing.ActivityEnvironment``: an activity run alone, with its info, heartbeats and cancellation."""

from __future__ import annotations

import threading

import pytest

import aion
from aion.testing import ActivityEnvironment
from tests.testing import kit_flows as flows


@pytest.mark.timeout(10)
def test_the_activity_sees_its_info_and_its_heartbeats_are_captured() -> None:
    env = ActivityEnvironment(workflow_id="order-7", attempt=3, heartbeat_details={"step": 1})
    result = env.run(flows.reports_progress, 3)
    assert result == {"attempt": 3, "workflow_id": "order-7", "previous": {"step": 1}}
    assert env.heartbeats == [{"step": 0}, {"step": 1}, {"step": 2}]


@pytest.mark.timeout(10)
def test_an_async_activity_runs_too() -> None:
    env = ActivityEnvironment()
    assert env.run(flows.reports_progress_async, 2) == 2
    assert env.heartbeats == [0, 1]


@pytest.mark.timeout(10)
def test_cancel_makes_the_next_heartbeat_raise() -> None:
    env = ActivityEnvironment()
    env.cancel()
    with pytest.raises(aion.CancelledError):
        env.run(flows.reports_progress, 3)
    assert env.heartbeats == [{"step": 0}]
    assert env.cancelled


@pytest.mark.timeout(10)
def test_cancel_from_another_thread_reaches_a_running_activity() -> None:
    started = threading.Event()

    def on_heartbeat(details: object) -> None:
        started.set()

    env = ActivityEnvironment(on_heartbeat=on_heartbeat)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            env.run(endless_heartbeats)
        except aion.CancelledError as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(5)
    env.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1


def endless_heartbeats() -> None:
    while True:
        aion.activity.heartbeat()


@pytest.mark.timeout(10)
def test_the_activity_info_is_only_there_while_it_runs() -> None:
    ActivityEnvironment().run(flows.greet, "x")
    with pytest.raises(RuntimeError, match="only be called from an activity"):
        aion.activity.info()
