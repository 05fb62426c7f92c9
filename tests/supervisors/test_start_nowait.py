"""`Supervisor.start_child_nowait`: the caller does not wait; the child starts in the supervisor's thread, and a
failure goes to ``on_error``."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import supervisors as sv

from .helpers import Recorder, wait_until
from .targets import worker

StartSup = Callable[[sv.SupervisorSpec], sv.Supervisor]


@pytest.mark.timeout(60)
def test_children_started_without_waiting_run_and_are_supervised(start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    errors: list[tuple[str, BaseException]] = []
    for index in range(5):
        sup.start_child_nowait(
            rec.spec(f"w{index}", worker, restart=sv.Restart.TRANSIENT), on_error=lambda c, e: errors.append((c, e))
        )
    wait_until(lambda: len(rec.starts) == 5, timeout=20)
    for index in range(5):
        rec.ping(f"w{index}", index)
    assert {info.id for info in sup.which_children()} == {f"w{index}" for index in range(5)}
    assert errors == []
    rec.channels["w0"].send(["exit", 3])  # an abnormal exit: restarted like any dynamic child
    wait_until(lambda: len(rec.starts) == 6, timeout=20)
    rec.ping("w0", "again")


@pytest.mark.timeout(60)
def test_a_child_that_cannot_start_goes_to_on_error(start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    failed: list[tuple[str, BaseException, str]] = []
    done = threading.Event()

    def on_error(child_id: str, error: BaseException) -> None:
        failed.append((child_id, error, threading.current_thread().name))
        done.set()

    sup.start_child_nowait(rec.spec("bad", "tests.supervisors.targets:no_such_target"), on_error=on_error)
    assert done.wait(20)
    ((child_id, error, thread),) = failed
    assert child_id == "bad"
    assert isinstance(error, sv.StartError)
    assert "no_such_target" in str(error)
    assert thread.startswith("_SupervisorActor")
    assert sup.which_children() == []
    done.clear()
    sup.start_child(rec.spec("twice", worker))
    sup.start_child_nowait(rec.spec("twice", worker), on_error=on_error)  # a duplicate id
    assert done.wait(20)
    assert failed[-1][0] == "twice" and "already has a child" in str(failed[-1][1])


@pytest.mark.timeout(60)
def test_starting_on_a_stopped_supervisor_is_silent(start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    sup.stop(timeout=30)
    failed: list[str] = []
    sup.start_child_nowait(rec.spec("late", worker), on_error=lambda c, _e: failed.append(c))
    assert rec.starts == [] and failed == []
