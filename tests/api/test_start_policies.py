"""Start policies: id_conflict_policy for a running id, id_reuse_policy for a closed one, and request ids
(including a start whose engine is SIGKILLed between recording it and replying)."""

from __future__ import annotations

from pathlib import Path

import pytest

import aion
from aion import events as ev
from aion.store import open_store
from tests.api import flows
from tests.engine.helpers import engine_process, recorded
from tests.helpers import wait_until


def _engine(data: Path) -> aion.Engine:
    return aion.Engine(data, workflows=flows.ALL_WORKFLOWS, activity_workers=1)


def _starts(handle: aion.WorkflowHandle[object]) -> int:
    store = handle._engine.store
    return sum(isinstance(e, ev.WorkflowStarted) for e in store.read_history(handle.workflow_id))


@pytest.mark.timeout(60)
def test_fail_is_the_default_and_its_message_says_how_to_attach(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        first = engine.start_workflow(flows.waits, "a", workflow_id="w")
        with pytest.raises(aion.WorkflowAlreadyStartedError) as caught:
            engine.start_workflow(flows.waits, "b", workflow_id="w")
        assert first.run_id in str(caught.value)
        assert "engine.get_workflow('w')" in str(caught.value)
        assert caught.value.code == "already_started"


@pytest.mark.timeout(60)
def test_use_existing_returns_the_running_run(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        first = engine.start_workflow(flows.waits, "a", workflow_id="w")
        again = engine.start_workflow(
            flows.waits, "b", workflow_id="w", id_conflict_policy=aion.IdConflictPolicy.USE_EXISTING
        )
        assert again.run_id == first.run_id
        again.signal("go", 1)
        assert first.result(timeout=30) == "a:1"
        assert _starts(first) == 1


@pytest.mark.timeout(60)
def test_terminate_existing_terminates_the_running_run_and_starts_anew(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        first = engine.start_workflow(flows.waits, "a", workflow_id="w")
        second = engine.start_workflow(
            flows.waits, "b", workflow_id="w", id_conflict_policy=aion.IdConflictPolicy.TERMINATE_EXISTING
        )
        assert second.run_id != first.run_id
        with pytest.raises(aion.errors.WorkflowTerminatedError):
            first.result(timeout=30)
        second.signal("go", 2)
        assert second.result(timeout=30) == "b:2"
        history = second.history()
        assert history[0].run_id == second.run_id  # type: ignore[attr-defined]
        terminated = [e for e in first.history() if isinstance(e, ev.WorkflowTerminated)]
        assert terminated and "TERMINATE_EXISTING" in (terminated[0].reason or "")


@pytest.mark.timeout(60)
def test_reuse_policies_for_a_closed_id(tmp_path: Path) -> None:
    reject = aion.IdReusePolicy.REJECT_DUPLICATE
    failed_only = aion.IdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    with _engine(tmp_path) as engine:
        done = engine.start_workflow(flows.quick, 1, workflow_id="ok")
        assert done.result(timeout=30) == 1
        with pytest.raises(aion.WorkflowAlreadyStartedError, match="completed; id_reuse_policy=REJECT_DUPLICATE"):
            engine.start_workflow(flows.quick, 2, workflow_id="ok", id_reuse_policy=reject)
        with pytest.raises(aion.WorkflowAlreadyStartedError, match="ALLOW_DUPLICATE_FAILED_ONLY"):
            engine.start_workflow(flows.quick, 2, workflow_id="ok", id_reuse_policy=failed_only)
        assert engine.start_workflow(flows.quick, 3, workflow_id="ok").result(timeout=30) == 3  # the default

        failed = engine.start_workflow(flows.fails_now, "boom", workflow_id="bad")
        with pytest.raises(aion.WorkflowFailedError):
            failed.result(timeout=30)
        with pytest.raises(aion.WorkflowAlreadyStartedError, match="failed"):
            engine.start_workflow(flows.quick, 4, workflow_id="bad", id_reuse_policy=reject)
        again = engine.start_workflow(flows.quick, 4, workflow_id="bad", id_reuse_policy=failed_only)
        assert again.result(timeout=30) == 4


@pytest.mark.timeout(60)
def test_a_start_retried_with_its_request_id_returns_the_same_run_even_after_it_closed(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        first = engine.start_workflow(flows.quick, 1, workflow_id="q", request_id="req-1")
        retried = engine.start_workflow(flows.quick, 1, workflow_id="q", request_id="req-1")
        assert retried.run_id == first.run_id
        assert first.result(timeout=30) == 1
        after_close = engine.start_workflow(flows.quick, 1, workflow_id="q", request_id="req-1")
        assert after_close.run_id == first.run_id
        assert _starts(first) == 1
        other = engine.start_workflow(flows.quick, 2, workflow_id="q", request_id="req-2")
        assert other.run_id != first.run_id  # another request is another start
        assert other.result(timeout=30) == 2
        with pytest.raises(aion.InvalidArgumentError, match="request_id"):
            engine.start_workflow(flows.quick, 1, request_id="")


@pytest.mark.timeout(120)
def test_a_start_whose_engine_died_before_replying_is_found_by_its_request_id(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def started_run() -> str | None:
        if not (data / "data.mdb").exists() and not any(data.glob("*")):
            return None
        store = open_store(data, readonly=True)
        try:
            info = store.get_run("paid")
            return None if info is None else info.run_id
        finally:
            store.close()

    with engine_process("tests.api.start_engine_proc", data, "paid", "req-42") as kill:
        run_id = wait_until(started_run, timeout=30)
        kill()  # the starter never saw its reply

    with _engine(data) as engine:
        retried = engine.start_workflow(flows.waits, "first", workflow_id="paid", request_id="req-42")
        assert retried.run_id == run_id
        retried.signal("go", "x")
        assert retried.result(timeout=30) == "first:x"
    assert sum(isinstance(e, ev.WorkflowStarted) for e in recorded(data, "paid")) == 1
