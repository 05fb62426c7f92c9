"""Failures a real engine counts and logs: an activity attempt outliving its start-to-close timeout, and a
workflow process crashing past its restart intensity (``max_restarts``), after which its run fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import aion
from aion.errors import WorkflowFailedError
from tests.helpers import wait_until
from tests.observability import flows
from tests.observability.test_logs import records
from tests.observability.test_metrics import Samples, scrape, value


@pytest.mark.timeout(120)
def test_an_activity_timeout_and_a_give_up_are_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aion")
    with aion.Engine(
        tmp_path / "data",
        [flows.times_out, flows.crash_loop],
        [flows.slow],
        metrics="127.0.0.1:0",
        activity_workers=1,
        warm_pool=1,
        max_restarts=2,
    ) as engine:
        with pytest.raises(WorkflowFailedError):
            engine.start_workflow(flows.times_out, workflow_id="late").result(timeout=60)
        attempt = wait_until(lambda: records(caplog, "aion.activities", "activity attempt 1 failed"))[0]
        assert attempt.__dict__["workflow_id"] == "late" and attempt.__dict__["activity_type"] == "slow"
        assert "StartToCloseTimeout" in attempt.__dict__["error"]
        assert attempt.__dict__["next_attempt_at"] is None  # the last attempt

        crashing = engine.start_workflow(flows.crash_loop, workflow_id="crashy")
        with pytest.raises(WorkflowFailedError) as caught:
            crashing.result(timeout=60)
        assert caught.value.type == "WorkflowProcessCrashed"
        gave_up = wait_until(lambda: records(caplog, "aion.supervisors", "workflow process gave up"))[0]
        assert gave_up.levelno == logging.INFO
        assert gave_up.__dict__["workflow_id"] == "crashy" and gave_up.__dict__["run_id"] == crashing.run_id
        assert gave_up.__dict__["supervisor"] == "workflows:crash_loop"
        assert "exit" in gave_up.__dict__["reason"]
        # max_restarts=2: three crashes, two restarts, then the give-up.
        crashes = records(caplog, "aion.supervisors", "workflow process crashed")
        assert [r.__dict__["workflow_id"] for r in crashes] == ["crashy"] * 3
        assert len(records(caplog, "aion.supervisors", "workflow process restarted")) == 2

        def settled() -> Samples | None:
            samples = scrape(engine)
            done = value(samples, "aion_workflows_failed_total", workflow_type="crash_loop") == 1
            return samples if done else None

        samples = wait_until(settled, timeout=30)

    timeout = {"activity_type": "slow", "kind": "start_to_close"}
    assert value(samples, "aion_activity_timeouts_total", **timeout) == 1
    assert value(samples, "aion_activity_failures_total", activity_type="slow", final="true") == 1
    assert value(samples, "aion_workflows_failed_total", workflow_type="times_out") == 1
    supervisor = "workflows:crash_loop"
    assert value(samples, "aion_process_gave_up_total", supervisor=supervisor) == 1
    assert value(samples, "aion_process_restarts_total", supervisor=supervisor, reason="exit_code") == 2
    assert value(samples, "aion_process_exits_total", supervisor=supervisor, reason="exit_code") == 3
