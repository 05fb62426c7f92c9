"""Code changes under live runs, with real engines and restarts: blocked instead of failed, patches, pinned
versions, reset and pause (docs/versioning.md)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.engine._messages import GetQuiescence
from aion.errors import UnknownWorkflowVersionError
from aion.status import WorkflowStatus
from tests.engine import versioning_flows as vf
from tests.engine.flows import executions
from tests.helpers import wait_until


def _has(handle: aion.WorkflowHandle, kind: type[ev.Event], count: int = 1) -> bool:
    return sum(isinstance(event, kind) for event in handle.history()) >= count


def _settled(engine: aion.Engine) -> bool:
    quiescence = engine.request(GetQuiescence())
    return bool(quiescence.settled and not quiescence.activities_busy)


def _start_order(data: Path, log: str, workflow_id: str = "o1") -> None:
    with aion.Engine(data, workflows=[vf.order_v1], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow("order", log, workflow_id=workflow_id)
        wait_until(lambda: _has(handle, ev.ActivityCompleted))
        wait_until(lambda: _settled(engine))


@pytest.mark.timeout(90)
def test_changed_code_blocks_the_run_and_patched_code_completes_it(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    _start_order(data, log)
    with aion.Engine(data, workflows=[vf.order_changed], activities=vf.ACTIVITIES) as engine:
        handle = engine.get_workflow("o1")
        wait_until(lambda: handle.describe().status is WorkflowStatus.BLOCKED)
        handle.signal("go")  # a blocked run still takes signals
        description = handle.describe()
        assert description.blocked is not None
        assert description.blocked.cause == "non_determinism"
        assert description.blocked.at_seq == 2
        assert "'note'" in (description.blocked.expected or "")
        assert "'other_note'" in (description.blocked.found or "")
        assert [info.workflow_id for info in engine.list_workflows(status="blocked")] == ["o1"]
        assert handle.unblock()  # tried again: it still diverges, and is not blocked twice
        wait_until(lambda: _settled(engine))
        assert handle.describe().status is WorkflowStatus.BLOCKED
    with aion.Engine(data, workflows=[vf.order_patched], activities=vf.ACTIVITIES) as engine:
        handle = engine.get_workflow("o1")
        assert handle.result(timeout=30) == ["a", "b"]
        events = handle.history()
        assert sum(isinstance(event, ev.WorkflowBlocked) for event in events) == 1
        assert sum(isinstance(event, ev.WorkflowUnblocked) for event in events) == 1
        assert not any(isinstance(event, ev.WorkflowFailed | ev.MarkerRecorded) for event in events)
        # A new run takes the patched branch and records the patch's marker.
        fresh = engine.start_workflow("order", log, workflow_id="o2")
        wait_until(lambda: _has(fresh, ev.ActivityCompleted))
        fresh.signal("go")
        assert fresh.result(timeout=30) == ["x", "b"]
        markers = [event for event in fresh.history() if isinstance(event, ev.MarkerRecorded)]
        assert [marker.name for marker in markers] == ["patch:first-step"]
    assert executions(log) == ["o1:a", "o1:b", "o2:x", "o2:b"]  # every activity ran once


@pytest.mark.timeout(90)
def test_fail_mode_fails_a_diverged_run(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    _start_order(data, log)
    changed = aion.Engine(data, workflows=[vf.order_changed], activities=vf.ACTIVITIES, on_code_mismatch="fail")
    with changed as engine, pytest.raises(aion.WorkflowFailedError) as caught:
        engine.get_workflow("o1").result(timeout=30)
    assert caught.value.type == "NonDeterminismError"


@pytest.mark.timeout(90)
def test_an_engine_without_the_module_blocks_runs_and_one_with_it_completes_them(
    tmp_path: Path, log: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    _start_order(data, log, "o1")
    _start_order(data, log, "o2")
    engine = aion.Engine(data, workflows=[vf.pausable], activities=vf.ACTIVITIES)
    with caplog.at_level(logging.WARNING, logger="aion.engine"), engine:
        for workflow_id in ("o1", "o2"):
            handle = engine.get_workflow(workflow_id)
            wait_until(lambda handle=handle: handle.describe().status is WorkflowStatus.BLOCKED)
            blocked = handle.describe().blocked
            assert blocked is not None and blocked.cause == "unknown_type"
            handle.signal("go")
        assert engine.unblock_all() == 0  # this engine has no code for them
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    missing = [message for message in warnings if "'order' is not registered" in message]
    assert len(missing) == 1 and "2 run(s)" in missing[0] and "--module" in missing[0]
    with aion.Engine(data, workflows=[vf.order_v1], activities=vf.ACTIVITIES) as engine:
        assert engine.get_workflow("o1").result(timeout=30) == ["a", "b"]
        assert engine.get_workflow("o2").result(timeout=30) == ["a", "b"]
    assert sorted(executions(log)) == ["o1:a", "o1:b", "o2:a", "o2:b"]


@pytest.mark.timeout(90)
def test_an_old_run_finishes_on_v1_while_new_runs_use_v2(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    with aion.Engine(data, workflows=[vf.billing_v1], activities=vf.ACTIVITIES) as engine:
        old = engine.start_workflow("billing", log, workflow_id="old")
        ended = engine.start_workflow("billing", log, workflow_id="ended")
        wait_until(lambda: _has(old, ev.ActivityCompleted) and _has(ended, ev.ActivityCompleted))
    with aion.Engine(data, workflows=[vf.billing_v1, vf.billing_v2], activities=vf.ACTIVITIES) as engine:
        new = engine.start_workflow("billing", log, workflow_id="new")
        pinned = engine.start_workflow("billing", log, workflow_id="pinned", version=1)
        assert new.describe().version == 2 and pinned.describe().version == 1
        assert engine.get_workflow("old").describe().version == 1
        for handle in (new, pinned):
            wait_until(lambda handle=handle: _has(handle, ev.ActivityCompleted))
            handle.signal("go")
        engine.get_workflow("ended").signal("go")
        assert engine.get_workflow("ended").result(timeout=30) == "v1"
        assert new.result(timeout=30) == "v2"
        assert pinned.result(timeout=30) == "v1"
        engine.get_workflow("old").signal("go", "continue")
        assert engine.get_workflow("old").result(timeout=30) == "v2"  # continue-as-new moved to v2
        successor = engine.get_workflow("old")
        assert successor.describe().version == 2
        with pytest.raises(UnknownWorkflowVersionError):
            engine.start_workflow("billing", log, version=3)
    assert sorted(executions(log)) == sorted(["old:v1", "ended:v1", "new:v2", "pinned:v1", "old:v2"])


@pytest.mark.timeout(90)
def test_reset_of_a_failed_run_does_not_run_completed_activities_again(tmp_path: Path, log: str) -> None:
    data, flag = tmp_path / "data", tmp_path / "flag"
    flag.touch()
    with aion.Engine(data, workflows=[vf.resettable], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow(vf.resettable, log, str(flag), workflow_id="r")
        with pytest.raises(aion.WorkflowFailedError):
            handle.result(timeout=30)
        history = handle.history()
        third = next(e for e in history if isinstance(e, ev.ActivityScheduled) and e.activity_id == 3)
        flag.unlink()
        new_run_id = handle.reset(to_seq=third.seq - 1, reason="the flag is gone")
        assert new_run_id != handle.run_id
        new = engine.get_workflow("r")
        assert new.run_id == new_run_id
        assert new.result(timeout=30) == ["a", "b", "c"]
        started = new.history()[0]
        assert isinstance(started, ev.WorkflowStarted)
        assert started.reset_from_run_id == handle.run_id and started.reset_to_seq == third.seq - 1
        assert handle.describe().status is WorkflowStatus.FAILED
    assert executions(log) == ["r:a", "r:b", "r:c", "r:c"]  # a and b once; c failed once, then passed


@pytest.mark.timeout(90)
def test_reset_of_a_blocked_run_closes_it_naming_the_new_run_and_carries_its_signals(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    _start_order(data, log)
    with aion.Engine(data, workflows=[vf.order_changed], activities=vf.ACTIVITIES) as engine:
        old = engine.get_workflow("o1")
        wait_until(lambda: old.describe().status is WorkflowStatus.BLOCKED)
        old.signal("go")
        # Back to just after WorkflowStarted: the changed code runs from the start.
        new_run_id = old.reset(to_seq=old.history()[0].seq, reason="start over with the new code")
        closing = old.history()[-1]
        assert isinstance(closing, ev.WorkflowReset) and closing.new_run_id == new_run_id
        assert old.describe().status is WorkflowStatus.RESET
        assert old.result(timeout=30) == ["x", "b"]  # followed to the new run, whose carried signal let it end
    assert executions(log) == ["o1:a", "o1:x", "o1:b"]


@pytest.mark.timeout(90)
def test_a_paused_run_dispatches_nothing_until_it_is_resumed(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    with aion.Engine(data, workflows=[vf.pausable], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow(vf.pausable, log, workflow_id="p")
        wait_until(lambda: _settled(engine))
        assert handle.pause("maintenance")
        assert not handle.pause("again")
        assert handle.describe().status is WorkflowStatus.PAUSED
        handle.signal("go")  # recorded, not delivered
        wait_until(lambda: _settled(engine))
        assert not _has(handle, ev.ActivityScheduled)
        assert executions(log) == []
    with aion.Engine(data, workflows=[vf.pausable], activities=vf.ACTIVITIES) as engine:
        handle = engine.get_workflow("p")
        wait_until(lambda: _settled(engine))  # still paused after a restart
        assert handle.describe().status is WorkflowStatus.PAUSED
        assert not _has(handle, ev.ActivityScheduled)
        assert handle.resume()
        assert handle.result(timeout=30) == "after"
    assert executions(log) == ["p:after"]


@pytest.mark.timeout(90)
def test_a_run_whose_version_is_not_registered_is_blocked_never_failed(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    with aion.Engine(data, workflows=[vf.billing_v1], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow("billing", log, workflow_id="b")
        wait_until(lambda: _has(handle, ev.ActivityCompleted))
    with aion.Engine(data, workflows=[vf.billing_v2], activities=vf.ACTIVITIES) as engine:
        handle = engine.get_workflow("b")
        wait_until(lambda: handle.describe().status is WorkflowStatus.BLOCKED)
        blocked = handle.describe().blocked
        assert blocked is not None and blocked.cause == "unknown_version" and "version 1" in blocked.message
        handle.signal("go")
    with aion.Engine(data, workflows=[vf.billing_v1, vf.billing_v2], activities=vf.ACTIVITIES) as engine:
        assert engine.get_workflow("b").result(timeout=30) == "v1"
    assert executions(log) == ["b:v1"]


@pytest.mark.timeout(90)
def test_a_run_that_cannot_be_replayed_for_another_reason_is_blocked_as_internal(tmp_path: Path, log: str) -> None:
    data = tmp_path / "data"
    _start_order(data, log)
    with aion.Engine(data, workflows=[vf.order_new_signature], activities=vf.ACTIVITIES) as engine:
        handle = engine.get_workflow("o1")
        wait_until(lambda: handle.describe().status is WorkflowStatus.BLOCKED)
        blocked = handle.describe().blocked
        assert blocked is not None and blocked.cause == "internal" and "extra" in blocked.message
        handle.signal("go")
    with aion.Engine(data, workflows=[vf.order_v1], activities=vf.ACTIVITIES) as engine:
        assert engine.get_workflow("o1").result(timeout=30) == ["a", "b"]
    assert executions(log) == ["o1:a", "o1:b"]


@pytest.mark.timeout(90)
def test_a_retry_that_comes_due_while_paused_is_dispatched_only_on_resume(tmp_path: Path, log: str) -> None:
    data, flag = tmp_path / "data", tmp_path / "flag"
    flag.touch()
    with aion.Engine(data, workflows=[vf.retries_an_activity], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow(vf.retries_an_activity, log, str(flag), workflow_id="r")
        wait_until(lambda: _has(handle, ev.ActivityFailed))
        assert handle.pause("hold the retries")
        failed = [e for e in handle.history() if isinstance(e, ev.ActivityFailed)]
        due = max(e.next_attempt_at for e in failed if e.next_attempt_at is not None).timestamp()
        flag.unlink()
        # Past the retry's due time, with the engine settled: the paused run dispatched nothing more.
        wait_until(lambda: time.time() > due + 0.5 and _settled(engine))
        attempts = len(executions(log))
        assert sum(isinstance(e, ev.ActivityStarted) for e in handle.history()) == attempts
        assert not _has(handle, ev.ActivityCompleted)
        assert handle.resume()
        assert handle.result(timeout=30) == "done"
    assert len(executions(log)) == attempts + 1


@pytest.mark.timeout(90)
def test_reset_into_a_started_attempt_takes_it_up_as_recovery_does(tmp_path: Path, log: str) -> None:
    data, flag = tmp_path / "data", tmp_path / "flag"
    flag.touch()
    with aion.Engine(data, workflows=[vf.resettable], activities=vf.ACTIVITIES) as engine:
        handle = engine.start_workflow(vf.resettable, log, str(flag), workflow_id="r")
        with pytest.raises(aion.WorkflowFailedError):
            handle.result(timeout=30)
        started = next(e for e in handle.history() if isinstance(e, ev.ActivityStarted) and e.activity_id == 3)
        flag.unlink()
        handle.reset(to_seq=started.seq, reason="retry c")  # c's attempt was started and never finished there
        new = engine.get_workflow("r")
        assert new.result(timeout=30) == ["a", "b", "c"]
        lost = [e for e in new.history() if isinstance(e, ev.ActivityFailed)]
        assert [(e.activity_id, e.failure.type) for e in lost] == [(3, "WorkerLost")]
    assert executions(log) == ["r:a", "r:b", "r:c", "r:c"]


@pytest.mark.timeout(30)
def test_on_code_mismatch_must_be_block_or_fail(tmp_path: Path) -> None:
    with pytest.raises(aion.InvalidArgumentError):
        aion.Engine(tmp_path / "data", on_code_mismatch="ignore")  # type: ignore[arg-type]
