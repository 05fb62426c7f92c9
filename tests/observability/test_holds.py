"""Blocked, paused, resumed, unblocked and reset runs in a real engine's logs (with their fields) and ``/metrics``,
and the engine's one start line counting what it resumed, blocked and paused, and its schedules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import aion
from aion.schedules import ScheduleSpec
from tests.helpers import wait_until
from tests.observability import flows
from tests.observability.test_logs import records
from tests.observability.test_metrics import scrape, value


def start_line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The engine's one start record (the last engine started)."""
    started = records(caplog, "aion.engine", "engine started")
    assert len(started) == 1, [r.getMessage() for r in started]
    assert started[0].levelno == logging.INFO
    return started[0]


@pytest.mark.timeout(150)
def test_a_blocked_run_is_logged_counted_and_in_the_start_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aion")
    data = tmp_path / "data"
    both = [flows.waiting, flows.leaf]
    with aion.Engine(data, both, [flows.double], activity_workers=1, warm_pool=1) as engine:
        held = engine.start_workflow(flows.waiting, workflow_id="held")
        idle = engine.start_workflow(flows.waiting, workflow_id="idle")
        assert idle.pause("maintenance")
        paused = wait_until(lambda: records(caplog, "aion.engine", "workflow run paused"))[0]
        assert paused.levelno == logging.INFO
        assert paused.__dict__["workflow_id"] == "idle" and paused.__dict__["run_id"] == idle.run_id
        assert paused.__dict__["reason"] == "maintenance"
        engine.create_schedule("nightly", flows.leaf, 1, spec=ScheduleSpec(interval=3600), paused=True)
        assert start_line(caplog).__dict__["schedules"] == 0

    # An engine without the code of `waiting`: "held" is blocked, "idle" stays paused.
    caplog.clear()
    with aion.Engine(data, [flows.leaf], [flows.double], metrics="127.0.0.1:0", activity_workers=1) as engine:
        line = start_line(caplog)
        assert line.__dict__["data_dir"] == str(engine.data_dir)
        assert (line.__dict__["resumed"], line.__dict__["blocked"], line.__dict__["paused"]) == (0, 1, 1)
        assert line.__dict__["schedules"] == 1
        assert "1 blocked, 1 paused" in line.getMessage() and "1 schedules" in line.getMessage()
        blocked = wait_until(lambda: records(caplog, "aion.engine", "workflow run blocked"))
        assert len(blocked) == 1
        record = blocked[0]
        assert record.levelno == logging.WARNING
        assert record.__dict__["cause"] == "unknown_type"
        assert record.__dict__["workflow_id"] == "held" and record.__dict__["run_id"] == held.run_id
        assert record.__dict__["workflow_type"] == "waiting"
        assert "aion serve --module" in record.__dict__["error"]
        samples = wait_until(
            lambda: (
                (s := scrape(engine))
                and value(s, "aion_workflows_blocked_total", workflow_type="waiting", cause="unknown_type") == 1
                and s
            )
        )
        assert value(samples, "aion_workflows_unblocked_total", workflow_type="waiting") == 0

    # The code is back: "held" is tried again and unblocked, "idle" resumed, then "held" reset.
    caplog.clear()
    with aion.Engine(data, both, [flows.double], metrics=True, activity_workers=1, warm_pool=1) as engine:
        line = start_line(caplog)
        assert (line.__dict__["resumed"], line.__dict__["blocked"], line.__dict__["paused"]) == (0, 1, 1)
        unblocked = wait_until(lambda: records(caplog, "aion.engine", "workflow run unblocked"))[0]
        assert unblocked.levelno == logging.INFO and unblocked.__dict__["workflow_id"] == "held"
        assert engine.get_workflow("idle").resume()
        resumed = wait_until(lambda: records(caplog, "aion.engine", "resumed after its pause"))[0]
        assert resumed.__dict__["workflow_id"] == "idle" and resumed.__dict__["run_id"] == idle.run_id
        new_run = engine.get_workflow("held").reset(reason="operator test")
        reset = wait_until(lambda: records(caplog, "aion.engine", "workflow run reset"))[0]
        assert reset.levelno == logging.INFO
        assert reset.__dict__["workflow_id"] == "held" and reset.__dict__["run_id"] == new_run
        assert reset.__dict__["reset_from_run_id"] == held.run_id and reset.__dict__["to_seq"] >= 1
        for workflow_id in ("held", "idle"):
            handle = engine.get_workflow(workflow_id)
            handle.signal("go", workflow_id)
            assert handle.result(timeout=60) == workflow_id
        registry = engine.metrics_registry
        assert registry is not None
        for name, expected in [
            ("aion_workflows_unblocked_total", 1),
            ("aion_workflows_resumed_total", 1),
            ("aion_workflows_reset_total", 1),
        ]:
            assert registry.get_sample_value(name, {"workflow_type": "waiting"}) == expected, name
        # The reset's copy of the old run's history is not counted again: one start per run.
        assert registry.get_sample_value("aion_workflows_started_total", {"workflow_type": "waiting"}) == 1
