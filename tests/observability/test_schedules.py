"""Schedule fires, skips and misses of a real engine in ``/metrics`` (scraped over HTTP) and in its logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import aion
from aion.schedules import SchedulePolicy, ScheduleSpec
from tests.helpers import wait_until
from tests.observability import flows
from tests.observability.test_logs import records
from tests.observability.test_metrics import Samples, scrape, value


@pytest.mark.timeout(120)
def test_fires_skips_misses_and_lateness_are_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aion")
    with aion.Engine(
        tmp_path / "data",
        [flows.waiting, flows.leaf],
        [flows.double],
        metrics="127.0.0.1:0",
        activity_workers=1,
        warm_pool=1,
    ) as engine:
        # Fires of the spec, every second: counted, and how late each was handled observed.
        engine.create_schedule("every", flows.leaf, 1, spec=ScheduleSpec(interval=1))

        def fired() -> Samples | None:
            samples = scrape(engine)
            done = value(samples, "aion_schedule_fires_total", workflow_type="leaf", trigger="spec") >= 1
            return samples if done else None

        samples = wait_until(fired, timeout=30)
        assert value(samples, "aion_schedule_fire_lateness_seconds_count", workflow_type="leaf") >= 1
        assert value(samples, "aion_workflows_started_total", workflow_type="leaf") >= 1
        engine.get_schedule("every").pause()

        # A manual fire starts `waiting`; the next one overlaps it and is skipped (the policy's default).
        manual = engine.create_schedule("manual", flows.waiting, spec=ScheduleSpec(interval=3600), paused=True)
        first = manual.trigger()
        assert isinstance(first, aion.events.ScheduleFired)
        second = manual.trigger()
        assert isinstance(second, aion.events.ScheduleSkipped) and second.reason == "overlap"
        skipped = wait_until(lambda: records(caplog, "aion.schedules", "is skipped (overlap)"))[0]
        assert skipped.levelno == logging.INFO
        assert skipped.__dict__["schedule_id"] == "manual" and skipped.__dict__["reason"] == "overlap"
        assert skipped.__dict__["workflow_type"] == "waiting"

        # No catch-up window: a fire handled after its time is missed.
        engine.create_schedule(
            "strict", flows.leaf, 2, spec=ScheduleSpec(interval=1), policy=SchedulePolicy(catchup_window=0)
        )
        missed = wait_until(lambda: records(caplog, "aion.schedules", "missed"), timeout=30)[0]
        assert missed.levelno == logging.INFO
        assert missed.__dict__["schedule_id"] == "strict" and missed.__dict__["count"] >= 1
        engine.get_schedule("strict").pause()

        samples = scrape(engine)
        assert value(samples, "aion_schedule_fires_total", workflow_type="waiting", trigger="trigger") == 1
        assert value(samples, "aion_schedule_skips_total", workflow_type="waiting", reason="overlap") == 1
        assert value(samples, "aion_schedule_missed_total", workflow_type="leaf") >= 1
        engine.get_workflow(first.started_workflow_id).signal("go", "done")
        assert engine.get_workflow(first.started_workflow_id).result(timeout=60) == "done"
