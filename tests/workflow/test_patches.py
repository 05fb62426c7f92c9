"""``workflow.patched`` and ``workflow.deprecate_patch`` against hand-built histories (the engine side is in
``tests/engine/test_versioning.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import aion
from aion import events as ev
from aion.testing import Replayer
from aion.workflow._commands import RecordMarker, ScheduleActivity
from aion.workflow._runtime import WorkflowRuntime
from tests.engine import versioning_flows as vf

AT = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "00000000-0000-4000-8000-000000000001"


def _started() -> ev.WorkflowStarted:
    return ev.WorkflowStarted(workflow_id="o", seq=1, recorded_at=AT, workflow_type="order", input=["log"], run_id=RUN)


def _activity(seq: int, activity_type: str, label: str) -> list[ev.Event]:
    return [
        ev.ActivityScheduled(
            workflow_id="o", seq=seq, recorded_at=AT, activity_id=1, activity_type=activity_type, input=["log", label]
        ),
        ev.ActivityCompleted(workflow_id="o", seq=seq + 1, recorded_at=AT, activity_id=1, result=label, attempt=1),
    ]


BEFORE_PATCH = [_started(), *_activity(2, "note", "a")]
MARKER = ev.MarkerRecorded(workflow_id="o", seq=2, recorded_at=AT, name="patch:first-step", details="first-step")
WITH_PATCH = [_started(), MARKER, *_activity(3, "other_note", "x")]


@pytest.mark.timeout(30)
def test_a_history_recorded_before_the_patch_keeps_the_old_branch() -> None:
    Replayer(workflows=[vf.order_patched]).replay(BEFORE_PATCH)
    with pytest.raises(aion.NonDeterminismError):
        Replayer(workflows=[vf.order_changed]).replay(BEFORE_PATCH)


@pytest.mark.timeout(30)
def test_a_new_run_records_the_marker_and_takes_the_new_branch() -> None:
    runtime = WorkflowRuntime(vf.order_patched, _started())
    commands = runtime.replay([_started()])
    assert commands[0] == RecordMarker("patch:first-step", "first-step")
    assert isinstance(commands[1], ScheduleActivity) and commands[1].activity_type == "other_note"


@pytest.mark.timeout(30)
def test_a_history_with_the_marker_replays_patched_and_deprecated_code_but_not_the_old_code() -> None:
    Replayer(workflows=[vf.order_patched]).replay(WITH_PATCH)
    Replayer(workflows=[vf.order_deprecated]).replay(WITH_PATCH)
    with pytest.raises(aion.NonDeterminismError) as caught:
        Replayer(workflows=[vf.order_changed]).replay(WITH_PATCH)  # the marker is no longer matched
    assert caught.value.seq == 2 and "marker" in caught.value.expected


@pytest.mark.timeout(30)
def test_a_patch_id_must_be_a_non_empty_string() -> None:
    with pytest.raises(aion.InvalidArgumentError):
        aion.workflow.patched("")
