"""A cancelled timer and a cancelled activity raise the same ``aion.CancelledError`` in workflow code."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from tests.api import flows


@pytest.mark.timeout(60)
def test_a_cancelled_timer_and_a_cancelled_activity_raise_the_same_error(tmp_path: Path) -> None:
    engine = aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES,
                         activity_workers=1, activity_cancel_grace=0.5)  # fmt: skip
    with engine:
        caught = engine.execute_workflow(flows.cancels_a_timer_and_an_activity, str(tmp_path / "gate"), timeout=30)
        types = [event.type for event in engine.get_workflow(engine.list_workflows()[0].workflow_id).history()]
    assert caught == ["CancelledError", "CancelledError"]
    assert "TimerCancelled" in types and "ActivityCancelRequested" in types
