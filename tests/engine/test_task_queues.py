"""Task queues on local pools: routing by definition and per call (recorded on ``ActivityScheduled``), an
undeclared queue refused at the call, ``max_concurrent`` and ``rate_limit`` under a fan-out of 200, and priorities
ordering a backlog."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.clock import ManualClock
from aion.engine._task_queues import TaskQueue, TokenBucket
from tests.engine import queue_flows as qf
from tests.engine.flows import executions
from tests.helpers import wait_until


def of_type(history: list[ev.Event], event_type: type[ev.Event]) -> list[ev.Event]:
    return [event for event in history if isinstance(event, event_type)]


@pytest.mark.timeout(60)
def test_an_activity_runs_on_its_queue_or_the_one_its_call_names(tmp_path: Path) -> None:
    queues = {"media": aion.LocalQueue(workers=1)}
    with aion.Engine(
        tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES, activity_workers=1, task_queues=queues
    ) as engine:
        handle = engine.start_workflow(qf.routed)
        on_media, on_default = handle.result(timeout=30)
        tree = engine.supervision_tree()
        history = handle.history()
    pools = {child["id"]: child for child in tree["children"] if child["id"].startswith("activities")}
    assert set(pools) == {"activities", "activities:media"}
    assert on_media["pid"] == pools["activities:media"]["children"][0]["pid"]
    assert pools["activities:media"]["children"][0]["id"] == "media/worker-1"
    assert on_default["pid"] == pools["activities"]["children"][0]["pid"]
    scheduled = of_type(history, ev.ActivityScheduled)
    # The queue is recorded, so recovery routes the same way; "default" is left out (histories stay as they were).
    assert [s.options.get("task_queue") for s in scheduled] == ["media", None]


@pytest.mark.timeout(60)
def test_an_engine_not_told_how_many_workers_runs_eight_activities_at_once(tmp_path: Path) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    with aion.Engine(tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES) as engine:
        pids = engine.start_workflow(qf.meet, str(meeting), 8).result(timeout=40)
    # Eight attempts met, each in a worker process of its own: the default pool has at least eight.
    assert len(set(pids)) == 8


@pytest.mark.timeout(60)
def test_an_undeclared_queue_is_refused_at_the_call(tmp_path: Path) -> None:
    with aion.Engine(tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES, activity_workers=1) as engine:
        message = engine.start_workflow(qf.undeclared).result(timeout=30)
    assert "task queue 'gpu' is not declared" in message and "default" in message


@pytest.mark.timeout(30)
def test_an_activity_whose_default_queue_is_not_declared_is_warned_of_when_the_engine_is_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aion.engine")
    aion.Engine(tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES)
    warned = [record for record in caplog.records if hasattr(record, "task_queue")]
    assert [(record.activity_type, record.task_queue) for record in warned] == [("where", "media")]  # type: ignore[attr-defined]
    assert "which this engine does not declare (declared: default)" in warned[0].getMessage()
    caplog.clear()
    media = {"media": aion.LocalQueue(workers=1)}
    aion.Engine(tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES, task_queues=media)
    assert not [record for record in caplog.records if hasattr(record, "task_queue")]


@pytest.mark.timeout(60)
def test_an_activity_recorded_for_a_queue_no_longer_declared_fails_after_a_restart(tmp_path: Path) -> None:
    data, gate = tmp_path / "data", tmp_path / "gate"
    media = {"media": aion.LocalQueue(workers=1)}
    kinds = {"workflows": qf.WORKFLOWS, "activities": qf.ACTIVITIES, "activity_workers": 1}
    with aion.Engine(data, task_queues=media, **kinds) as engine:  # type: ignore[arg-type]
        engine.start_workflow(qf.blocks_on, "media", str(gate), workflow_id="blocked")
        wait_until(lambda: Path(f"{gate}.started").exists(), timeout=30)
    with aion.Engine(data, **kinds) as engine:  # type: ignore[arg-type]
        assert engine.get_workflow("blocked").result(timeout=30) == "UnknownTaskQueue"
        failed = of_type(engine.get_workflow("blocked").history(), ev.ActivityFailed)
    assert failed[-1].failure.type == "UnknownTaskQueue" and "'media' is not declared" in failed[-1].failure.message


def test_bad_queue_declarations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(aion.InvalidArgumentError, match="max_concurrent"):
        aion.LocalQueue(workers=2, max_concurrent=0)
    with pytest.raises(aion.InvalidArgumentError, match="rate_limit"):
        aion.RayQueue(rate_limit=-1)
    for bad in (1, "yes", None):
        with pytest.raises(
            aion.InvalidArgumentError, match=f"LocalQueue use_engine_cpu must be True or False, got {bad!r}"
        ):
            aion.LocalQueue(workers=1, use_engine_cpu=bad)  # type: ignore[arg-type]
    with pytest.raises(aion.InvalidArgumentError, match="resources"):
        aion.RayQueue(resources={"gpu": "lots"})  # type: ignore[dict-item]
    with pytest.raises(aion.InvalidArgumentError, match="LocalQueue or a RayQueue"):
        aion.Engine(tmp_path / "d", task_queues={"media": 4})  # type: ignore[dict-item]
    with pytest.raises(aion.InvalidArgumentError, match="task queue name"):
        aion.Engine(tmp_path / "d", task_queues={"a/b": aion.LocalQueue()})


@pytest.mark.timeout(120)
def test_max_concurrent_holds_under_a_fan_out_of_200(tmp_path: Path, log: str) -> None:
    queues = {"limited": aion.LocalQueue(workers=4, max_concurrent=2)}
    with aion.Engine(
        tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES, activity_workers=1, task_queues=queues
    ) as engine:
        handle = engine.start_workflow(qf.fan_out_spans, log, 200, "limited")
        assert handle.result(timeout=100) == sum(range(200))
        history = handle.history()
    # Each execution logs "+i" when it begins and "-i" before it returns, in the order they happen.
    running, most = 0, 0
    for line in executions(log):
        running += 1 if line.startswith("+") else -1
        most = max(most, running)
    assert len(executions(log)) == 400 and running == 0
    assert len(of_type(history, ev.ActivityStarted)) == 200
    assert most == 2


@pytest.mark.timeout(120)
def test_rate_limit_holds_under_a_fan_out_of_200(tmp_path: Path) -> None:
    # Whole seconds and quarter steps are exact in floating point: each step frees exactly one token.
    clock = ManualClock(start=float(int(time.time())))
    queues = {"limited": aion.LocalQueue(workers=4, rate_limit=4.0)}
    with aion.Engine(
        tmp_path / "data",
        workflows=qf.WORKFLOWS,
        activities=qf.ACTIVITIES,
        activity_workers=1,
        task_queues=queues,
        clock=clock,
    ) as engine:
        handle = engine.start_workflow(qf.fan_out, 200, "limited")

        def started() -> int:
            return len(of_type(handle.history(), ev.ActivityStarted))

        wait_until(lambda: started() >= 1, timeout=30)
        for step in range(1, 200):
            assert started() == step  # the clock has not moved: no token for another attempt
            clock.advance(0.25)
            wait_until(lambda step=step: started() >= step + 1, timeout=30)
        assert handle.result(timeout=30) == sum(range(200))
        times = [event.recorded_at.timestamp() for event in of_type(handle.history(), ev.ActivityStarted)]
    # At most 1 + 4·t attempts started in any window of t seconds (the bucket holds one token).
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 1 + 4.0 * (times[j] - first) + 1e-9


@pytest.mark.timeout(60)
def test_priorities_order_a_backlog(tmp_path: Path, log: str) -> None:
    gate = tmp_path / "gate"
    queues = {"single": aion.LocalQueue(workers=1)}
    priorities = [1, 5, 3, 5, 0, -2, 3]
    with aion.Engine(
        tmp_path / "data", workflows=qf.WORKFLOWS, activities=qf.ACTIVITIES, activity_workers=1, task_queues=queues
    ) as engine:
        handle = engine.start_workflow(qf.prioritised, log, str(gate), priorities)
        wait_until(lambda: len(of_type(handle.history(), ev.ActivityScheduled)) == 1 + len(priorities), timeout=30)
        wait_until(lambda: Path(f"{gate}.started").exists(), timeout=30)
        gate.touch()
        handle.result(timeout=30)
        history = handle.history()
    order = sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))
    assert executions(log) == [f"p{priorities[i]}-{i}" for i in order]
    recorded = [s.options.get("priority") for s in of_type(history, ev.ActivityScheduled)]
    assert recorded == [100, *[p or None for p in priorities]]


class _Unbounded:
    record_first = False

    def capacity(self) -> int:
        return 1 << 30

    def start(self, task: object) -> str:
        return "w"

    def cancel(self, task_id: int) -> None:
        return None

    def kill(self, task_id: int) -> None:
        return None


class _Task:
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id


def test_a_queue_takes_its_backlog_by_priority_within_its_limits() -> None:
    queue = TaskQueue("q", aion.LocalQueue(workers=1, max_concurrent=2), _Unbounded(), 0.0)
    for task_id, priority in [(1, 0), (2, 9), (3, 9), (4, 1)]:
        queue.submit(_Task(task_id), priority)
    queue.withdraw(3)
    assert [t.task_id for t in queue.ready(0.0)] == [2, 4]
    assert list(queue.ready(0.0)) == []  # two in flight
    queue.ended(2)
    assert [t.task_id for t in queue.ready(0.0)] == [1]
    assert not queue.backlog()


def test_a_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=1.0, now=100.0)
    assert bucket.take(100.0) and not bucket.take(100.0)
    assert bucket.next_at(100.0) == 100.5
    assert not bucket.take(100.25) and bucket.take(100.5)
    assert bucket.take(110.0) and not bucket.take(110.0)  # never more than the burst saved up
