"""Updates: validated before anything is recorded, recorded before they are applied, completed exactly once
across a crash of the workflow process or of the whole engine, refused on a closed run."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.errors import UpdateFailedError, UpdateRejectedError
from tests.api import flows
from tests.engine.helpers import engine_process, recorded
from tests.helpers import wait_until


def _engine(data: Path) -> aion.Engine:
    return aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=1)


def _types(handle: aion.WorkflowHandle[int]) -> list[str]:
    return [event.type for event in handle.history()]


def _stopped_with_one_update_applied(handle: aion.WorkflowHandle[int]) -> None:
    """Stop the counter (at 5: 1 + the update's 4) and check its update was accepted, completed and ran its
    activity once."""
    handle.signal("stop")
    assert handle.result(timeout=30) == 5
    history = handle.history()
    assert sum(isinstance(e, ev.UpdateAccepted) for e in history) == 1
    assert sum(isinstance(e, ev.UpdateCompleted) for e in history) == 1
    assert sum(isinstance(e, ev.ActivityScheduled) for e in history) == 1


@pytest.mark.timeout(60)
def test_an_update_returns_its_result_once_recorded_and_a_rejection_records_nothing(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        handle = engine.start_workflow(flows.counter, 10, workflow_id="c")
        assert handle.execute_update("add", 5) == 15
        assert handle.query("count") == 15
        before = handle.history()
        with pytest.raises(UpdateRejectedError, match="cannot add -1"):
            handle.execute_update("add", -1)
        with pytest.raises(UpdateRejectedError, match="no update handler 'nope'"):
            handle.execute_update("nope")
        assert handle.history() == before  # the rejections recorded nothing
        with pytest.raises(UpdateFailedError, match="RuntimeError: no such thing") as failed:
            handle.execute_update("fail")
        assert failed.value.type == "RuntimeError"
        handle.signal("stop")
        assert handle.result(timeout=30) == 15
        types = _types(handle)
        assert types.count("UpdateAccepted") == 2 and types.count("UpdateCompleted") == 2
        accepted = types.index("UpdateAccepted")
        assert types[accepted + 1] == "UpdateCompleted"


@pytest.mark.timeout(60)
def test_an_update_retried_with_its_id_is_applied_once(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        handle = engine.start_workflow(flows.counter, 0, workflow_id="c")
        assert handle.execute_update("add", 2, update_id="u-1") == 2
        assert handle.execute_update("add", 2, update_id="u-1") == 2  # the recorded result, not applied again
        assert handle.query("count") == 2


@pytest.mark.timeout(90)
def test_an_update_survives_a_crash_between_acceptance_and_completion_and_completes_once(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with _engine(tmp_path / "data") as engine:
        handle = engine.start_workflow(flows.counter, 1, workflow_id="c")
        outcome: list[object] = []

        def call() -> None:
            outcome.append(handle.execute_update("add_later", 4, str(gate), timeout=60))

        caller = threading.Thread(target=call)
        caller.start()
        wait_until(lambda: "ActivityScheduled" in _types(handle), timeout=30)
        pid = wait_until(lambda: engine.workflow_pid("c"), timeout=30)
        os.kill(pid, signal.SIGKILL)  # accepted, not completed: the restarted process replays the update
        wait_until(lambda: engine.workflow_pid("c") not in (None, pid), timeout=30)
        gate.write_text("open")
        caller.join(timeout=60)
        assert outcome == [5]
        _stopped_with_one_update_applied(handle)


@pytest.mark.timeout(120)
def test_an_update_accepted_before_the_engine_is_sigkilled_completes_once_in_the_next_engine(
    tmp_path: Path,
) -> None:
    data, gate = tmp_path / "data", tmp_path / "gate"
    with engine_process("tests.api.update_engine_proc", data, gate) as kill:
        # accepted, its handler waiting on the activity: the engine dies before the update completes
        wait_until(lambda: "ActivityScheduled" in [e.type for e in recorded(data, "c")], timeout=60)
        kill()
    before = [e.type for e in recorded(data, "c")]
    assert before.count("UpdateAccepted") == 1 and "UpdateCompleted" not in before
    with _engine(data) as engine:
        handle: aion.WorkflowHandle[int] = engine.get_workflow("c")
        gate.write_text("open")
        # the caller retries with the update's id: it gets the outcome of the replayed handler, applied once
        assert handle.execute_update("add_later", 4, str(gate), update_id="u-1", timeout=60) == 5
        assert handle.execute_update("add_later", 4, str(gate), update_id="u-1", timeout=60) == 5
        _stopped_with_one_update_applied(handle)


@pytest.mark.timeout(60)
def test_an_update_on_a_closed_run_is_a_typed_error(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        handle = engine.start_workflow(flows.counter, 3, workflow_id="c")
        handle.signal("stop")
        assert handle.result(timeout=30) == 3
        with pytest.raises(aion.WorkflowNotRunningError, match="completed: it takes no updates"):
            handle.execute_update("add", 1)
        with pytest.raises(aion.WorkflowNotFoundError):
            engine.get_workflow("c").__class__(engine, "unknown", "r").execute_update("add", 1)
