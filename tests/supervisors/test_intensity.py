"""Restart intensity: a crash loop makes a supervisor give up and escalate; per-child intensity does not."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import supervisors as sv

from .helpers import Recorder, children_by_id, wait_until
from .targets import always_crash, crash_n_times, worker


def test_crash_loop_escalates_to_parent_which_applies_one_for_all(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor],
    rec: Recorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="supervisors")
    counter = str(tmp_path / "runs")
    inner = sv.SupervisorSpec(
        id="inner",
        strategy=sv.Strategy.ONE_FOR_ONE,
        max_restarts=2,
        max_seconds=30,
        children=[rec.spec("crasher", crash_n_times, counter, 3)],
    )
    root = start_sup(
        sv.SupervisorSpec(
            id="root",
            strategy=sv.Strategy.ONE_FOR_ALL,
            max_restarts=5,
            max_seconds=30,
            children=[inner, rec.spec("sibling", worker)],
        )
    )
    # (the crasher restarts concurrently, so the sibling's start is not necessarily the last one)
    first_sibling = next(start for start in rec.starts if start[0] == "sibling")

    # 3 crashes: the 3rd exceeds inner's 2 restarts in 30 s, so inner gives up; root restarts inner and,
    # one_for_all, the sibling; the 4th run of the crasher stays up.
    wait_until(lambda: children_by_id(root)["inner"].restarts == 1)
    info = children_by_id(root)
    assert info["inner"].state == "running"
    assert info["inner"].last_exit is not None
    assert info["inner"].last_exit.kind == "exception"
    assert info["inner"].last_exit.exc_type == "supervisors.MaxRestartsExceeded"
    assert "crash 3" in (info["inner"].last_exit.message or "")
    assert info["sibling"].restarts == 1
    assert info["sibling"].pid != first_sibling[1]
    assert [r.kind for r in rec.exits_of("sibling")] == ["shutdown"]
    assert [r.message for r in rec.exits_of("crasher")][:3] == ["crash 1", "crash 2", "crash 3"]
    wait_until(lambda: Path(counter).read_text() == "4")  # the 4th run started (and stays up)
    # The escalation is logged at ERROR with its fields (what ``aion serve --log-format json`` writes as keys).
    (escalation,) = [r for r in caplog.records if "shutting down" in r.getMessage()]
    assert escalation.levelno == logging.ERROR
    assert escalation.__dict__["supervisor"] == "inner"
    assert escalation.__dict__["child_id"] == "crasher"
    assert "crash 3" in escalation.__dict__["reason"]

    tree = root.tree()
    inner_node = next(n for n in tree["children"] if n["id"] == "inner")
    (crasher,) = inner_node["children"]
    assert crasher["state"] == "running"
    assert crasher["restarts"] == 0  # a fresh supervisor, a fresh child
    rec.ping("crasher", "alive")
    assert root.is_alive()


def test_root_that_gives_up_stops_everything(zygote: sv.Zygote, rec: Recorder) -> None:
    root = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root",
            max_restarts=2,
            max_seconds=30,
            children=[rec.spec("steady", worker), rec.spec("crasher", always_crash)],
        ),
        zygote=zygote,
    )
    try:
        reason = root.wait(timeout=20)
        assert reason is not None
        assert reason.kind == "exception"
        assert reason.is_abnormal
        assert reason.exc_type == "supervisors.MaxRestartsExceeded"
        assert not root.is_alive()
        assert len(rec.exits_of("crasher")) == 3
        assert [r.kind for r in rec.exits_of("steady")] == ["shutdown"]
        wait_until(lambda: zygote.pids() == [])
    finally:
        root.stop(timeout=10)


def test_per_child_intensity_gives_up_without_escalating(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(
        sv.SupervisorSpec(
            id="runs",
            max_restarts=100,
            max_seconds=10,
            children=[rec.spec("steady", worker)],
        )
    )
    steady_pid = children_by_id(sup)["steady"].pid
    sup.start_child(rec.spec("run-1", always_crash, restart=sv.Restart.TRANSIENT, max_restarts=2, max_seconds=60))
    wait_until(lambda: rec.give_ups)
    (gave_up,) = rec.give_ups
    assert gave_up[0] == "run-1"
    assert gave_up[1].kind == "exception"
    assert gave_up[1].message == "always"
    assert len(rec.exits_of("run-1")) == 3
    info = children_by_id(sup)
    assert "run-1" not in info
    assert info["steady"].pid == steady_pid
    assert info["steady"].restarts == 0
    assert sup.is_alive()


def test_intensity_window_forgets_old_restarts(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s", max_restarts=1, max_seconds=0.05, children=[rec.spec("a", worker)]))
    for n in range(1, 4):
        before = len(rec.exits_of("a"))
        pid = children_by_id(sup)["a"].pid
        assert pid is not None
        # wait out the window (on a condition, not a sleep), so each crash is alone in it
        wait_until(lambda: sup.tree()["children"][0]["uptime"] > 0.06)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda before=before: len(rec.exits_of("a")) > before)  # type: ignore[misc]
        wait_until(lambda n=n: children_by_id(sup)["a"].restarts == n)  # type: ignore[misc]
    assert sup.is_alive()


def test_child_supervisor_reaches_the_incarnation_running_now(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder, tmp_path: Path
) -> None:
    counter = str(tmp_path / "runs")
    root = start_sup(sv.SupervisorSpec(id="root", max_restarts=5, max_seconds=30, children=[rec.spec("w", worker)]))
    inner = sv.SupervisorSpec(
        id="inner", max_restarts=2, max_seconds=30, children=[rec.spec("crasher", crash_n_times, counter, 3)]
    )
    first = root.start_child(inner)
    # the 3rd crash exceeds inner's intensity: it escalates, and the root starts a new inner
    wait_until(lambda: children_by_id(root)["inner"].restarts == 1)
    now = root.child_supervisor("inner")
    assert now is not None and now.is_alive()
    assert not first.is_alive()  # the handle of the first incarnation reaches nothing any more
    wait_until(lambda: now.pid_of("crasher") is not None)
    assert root.child_supervisor("w") is None  # a process, not a supervisor
    assert root.child_supervisor("nope") is None
