"""Log records of a real engine, with their structured fields: a failed run, a failing activity attempt, a
crash and restart of a workflow process, the engine's start and stop; nothing at INFO for a healthy run."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

import aion
from aion.errors import WorkflowFailedError
from aion.observability._observer import Observer
from tests.helpers import wait_until
from tests.observability import flows
from tests.observability.test_metrics import ACTIVITIES, WORKFLOWS


def records(caplog: pytest.LogCaptureFixture, logger: str, contains: str) -> list[logging.LogRecord]:
    """The captured records of ``logger`` whose message contains ``contains``."""
    return [r for r in caplog.records if r.name == logger and contains in r.getMessage()]


@pytest.mark.timeout(120)
def test_failure_retry_crash_and_restart_are_logged_with_their_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aion")
    with aion.Engine(tmp_path / "data", WORKFLOWS, ACTIVITIES, activity_workers=1, warm_pool=1) as engine:
        started = records(caplog, "aion.engine", "engine started")
        assert started and started[0].levelno == logging.INFO
        assert started[0].__dict__["resumed"] == 0 and started[0].__dict__["data_dir"] == str(engine.data_dir)

        # A healthy workflow logs nothing at INFO or above.
        before = len(caplog.records)
        engine.start_workflow(flows.tree, 1, workflow_id="healthy").result(timeout=60)
        assert [r.getMessage() for r in caplog.records[before:] if r.levelno >= logging.INFO] == []
        assert any(r.name == "aion.engine.commits" for r in caplog.records[before:])  # DEBUG: commits

        handle = engine.start_workflow(flows.failing, "boom", workflow_id="bad")
        with pytest.raises(WorkflowFailedError):
            handle.result(timeout=60)
        failed = wait_until(lambda: records(caplog, "aion.engine", "workflow run failed"))[0]
        assert failed.levelno == logging.INFO
        assert failed.__dict__["workflow_id"] == "bad"
        assert failed.__dict__["run_id"] == handle.run_id
        assert failed.__dict__["workflow_type"] == "failing"
        assert "RuntimeError: boom" in failed.__dict__["error"]

        engine.start_workflow(flows.retrying, 1, workflow_id="flaky").result(timeout=60)
        attempt = wait_until(lambda: records(caplog, "aion.activities", "activity attempt 1 failed"))[0]
        assert attempt.__dict__["workflow_id"] == "flaky"
        assert attempt.__dict__["activity_type"] == "flaky"
        assert attempt.__dict__["activity_id"] == 1
        assert attempt.__dict__["attempt"] == 1
        assert "flaky attempt 1" in attempt.__dict__["error"]
        assert attempt.__dict__["next_attempt_at"] is not None

        waiting = engine.start_workflow(flows.waiting, workflow_id="crashy")
        pid = wait_until(lambda: engine.workflow_pid("crashy"), timeout=30)
        os.kill(pid, signal.SIGKILL)
        crash = wait_until(lambda: records(caplog, "aion.supervisors", "workflow process crashed"))[0]
        assert crash.__dict__["workflow_id"] == "crashy"
        assert crash.__dict__["run_id"] == waiting.run_id
        assert "SIGKILL" in crash.__dict__["reason"]
        assert crash.__dict__["supervisor"] == "workflows:waiting"
        restart = wait_until(lambda: records(caplog, "aion.supervisors", "workflow process restarted"))[0]
        assert restart.__dict__["workflow_id"] == "crashy"
        waiting.signal("go", "on")
        assert waiting.result(timeout=60) == "on"
    assert records(caplog, "aion.engine", "engine stopped")


@pytest.mark.timeout(120)
def test_a_resumed_run_is_counted_and_logged_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aion")
    with aion.Engine(tmp_path / "data", WORKFLOWS, ACTIVITIES, activity_workers=1, warm_pool=1) as engine:
        engine.start_workflow(flows.waiting, workflow_id="later")
    caplog.clear()
    with aion.Engine(tmp_path / "data", WORKFLOWS, ACTIVITIES, activity_workers=1, warm_pool=1) as engine:
        started = records(caplog, "aion.engine", "engine started")[0]
        assert started.__dict__["resumed"] == 1
        resumed = wait_until(lambda: records(caplog, "aion.engine", "resumed from history"))[0]
        assert resumed.levelno == logging.DEBUG and resumed.__dict__["workflow_id"] == "later"
        engine.get_workflow("later").signal("go", "x")
        assert engine.get_workflow("later").result(timeout=60) == "x"


@pytest.mark.timeout(10)
def test_a_worker_exiting_the_same_way_again_and_again_is_logged_once_until_it_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A worker whose restarts keep failing (its zygote is gone) is reported down once per failed restart.
    caplog.set_level(logging.DEBUG, logger="aion.supervisors")
    observer = Observer()
    gone = "exception SpawnError: the zygote is not running"
    for _ in range(3):
        observer.worker_down("worker-1", gone)
    observer.worker_down("worker-2", gone)
    observer.worker_down("worker-1", "killed by SIGKILL")  # another reason: logged
    observer.worker_up("worker-1")
    observer.worker_down("worker-1", "killed by SIGKILL")  # up in between: logged again
    logged = [
        (record.child_id, record.levelno)  # type: ignore[attr-defined]
        for record in records(caplog, "aion.supervisors", "activity worker")
    ]
    info, debug = logging.INFO, logging.DEBUG
    assert logged == [
        ("worker-1", info), ("worker-1", debug), ("worker-1", debug), ("worker-2", info),
        ("worker-1", info), ("worker-1", info),
    ]  # fmt: skip
