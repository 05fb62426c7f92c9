"""A storm of activity-worker crashes (far past any restart intensity a supervisor of permanent workers could be
given) leaves the engine running: each attempt fails once as its worker died, the workers are replaced, and
the activities after the storm run on replaced workers that the engine can still kill (a timed-out attempt)."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from tests.engine import storm_flows
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(180)


def _activity_supervisor(tree: dict[str, object]) -> dict[str, object]:
    children = tree["children"]
    assert isinstance(children, list)
    (node,) = [child for child in children if child["id"] == "activities"]
    return node  # type: ignore[no-any-return]


def test_a_storm_of_worker_crashes_leaves_the_engine_and_its_workers_running(tmp_path: Path) -> None:
    with aion.Engine(
        tmp_path / "data",
        workflows=[storm_flows.storm, storm_flows.stuck, storm_flows.calm],
        activities=[storm_flows.exits_its_worker, storm_flows.hangs, storm_flows.echo],
        activity_workers=2,
    ) as engine:
        assert engine.start_workflow(storm_flows.storm, 150).result(timeout=150) == 150
        assert engine.stopped_reason is None
        # Past its intensity (100 restarts in 10 s) the workers' supervisor escalated, and the root restarted it.
        assert _activity_supervisor(engine.supervision_tree())["restarts"] >= 1
        assert engine.start_workflow(storm_flows.calm, "after").result(timeout=60) == "after"
        # Both workers hang in attempts that time out: only if the engine can still kill them does anything run.
        assert engine.start_workflow(storm_flows.stuck, 2).result(timeout=60) == 2
        assert engine.start_workflow(storm_flows.calm, "unstuck").result(timeout=60) == "unstuck"
        workers = _activity_supervisor(engine.supervision_tree())["children"]
        assert isinstance(workers, list) and len(workers) == 2
        wait_until(lambda: all(w["pid"] for w in _activity_supervisor(engine.supervision_tree())["children"]))
