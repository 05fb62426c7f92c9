"""Every strategy x restart type x way of dying: the right children restart, with the right counts and reasons."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

import supervisors as sv

from .helpers import Recorder, children_by_id, wait_until
from .targets import worker

CRASHES = ["sigkill", "exception", "exit3", "return"]


def _crash(rec: Recorder, pid: int, how: str) -> None:
    channel = rec.channels["b"]
    if how == "sigkill":
        os.kill(pid, signal.SIGKILL)
    elif how == "exception":
        channel.send(["raise", "boom"])
    elif how == "exit3":
        channel.send(["exit", 3])
    else:
        channel.send(["return"])


def _check_reason(reason: sv.ExitReason, how: str) -> None:
    if how == "sigkill":
        assert reason.kind == "killed"
        assert reason.signal == "SIGKILL"
        assert reason.is_abnormal
    elif how == "exception":
        assert reason.kind == "exception"
        assert reason.exc_type == "ValueError"
        assert reason.message == "boom"
        assert reason.traceback is not None
        assert "raise ValueError" in reason.traceback
        assert reason.is_abnormal
    elif how == "exit3":
        assert reason.kind == "exit_code"
        assert reason.exit_code == 3
        assert reason.is_abnormal
    else:
        assert reason.kind == "normal"
        assert not reason.is_abnormal


@pytest.mark.parametrize("how", CRASHES)
@pytest.mark.parametrize("restart", list(sv.Restart))
@pytest.mark.parametrize("strategy", list(sv.Strategy))
def test_strategy_restart_matrix(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor],
    rec: Recorder,
    strategy: sv.Strategy,
    restart: sv.Restart,
    how: str,
) -> None:
    sup = start_sup(
        sv.SupervisorSpec(
            id="sup",
            strategy=strategy,
            max_restarts=10,
            max_seconds=10,
            children=[rec.spec(cid, worker, restart=restart, shutdown_timeout=2.0) for cid in "abc"],
        )
    )
    before = children_by_id(sup)
    assert [c.state for c in before.values()] == ["running"] * 3
    for cid in "abc":
        rec.ping(cid, f"{cid}-0")
    pid_b = before["b"].pid
    assert pid_b is not None

    _crash(rec, pid_b, how)

    b_restarts = restart == sv.Restart.PERMANENT or (restart == sv.Restart.TRANSIENT and how != "return")
    if b_restarts:
        wait_until(lambda: children_by_id(sup)["b"].restarts == 1 and children_by_id(sup)["b"].state == "running")
        expected = {
            sv.Strategy.ONE_FOR_ONE: {"b"},
            sv.Strategy.ONE_FOR_ALL: {"a", "b", "c"},
            sv.Strategy.REST_FOR_ONE: {"b", "c"},
        }[strategy]
    else:
        wait_until(lambda: rec.exits_of("b"))
        expected = set()

    after = children_by_id(sup)
    _check_reason(rec.exits_of("b")[0], how)
    for cid in "abc":
        if cid == "b" and not b_restarts:
            if restart == sv.Restart.TEMPORARY:
                assert "b" not in after  # temporary children are removed
            else:
                assert after["b"].state == "stopped"  # a static transient child that exited normally
                assert after["b"].restarts == 0
                _check_reason(after["b"].last_exit, how)  # type: ignore[arg-type]
            continue
        info = after[cid]
        assert info.state == "running"
        if cid in expected:
            assert info.restarts == 1, cid
            assert info.pid != before[cid].pid, cid
            assert info.last_exit is not None
            if cid != "b":
                assert info.last_exit.kind == "shutdown"  # stopped by the strategy, not crashed
                assert [r.kind for r in rec.exits_of(cid)] == ["shutdown"]
            rec.ping(cid, f"{cid}-1")  # the new incarnation answers on its new channel
        else:
            assert info.restarts == 0, cid
            assert info.pid == before[cid].pid, cid
            assert rec.exits_of(cid) == []
    assert sup.is_alive()


def test_one_for_all_drops_temporary_siblings(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(
        sv.SupervisorSpec(
            id="sup",
            strategy=sv.Strategy.ONE_FOR_ALL,
            children=[
                rec.spec("a", worker, restart=sv.Restart.TEMPORARY),
                rec.spec("b", worker),
                rec.spec("c", worker, restart=sv.Restart.TRANSIENT),
            ],
        )
    )
    pid_b = children_by_id(sup)["b"].pid
    assert pid_b is not None
    os.kill(pid_b, signal.SIGKILL)
    wait_until(lambda: children_by_id(sup)["b"].restarts == 1)
    after = children_by_id(sup)
    assert set(after) == {"b", "c"}
    assert after["c"].restarts == 1
    assert [r.kind for r in rec.exits_of("a")] == ["shutdown"]


def test_restart_on_each_crash_counts_up(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="sup", max_restarts=10, children=[rec.spec("a", worker)]))
    for n in range(1, 4):
        pid = children_by_id(sup)["a"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda n=n: children_by_id(sup)["a"].restarts == n)  # type: ignore[misc]
        rec.ping("a", n)
    assert [r.signal for r in rec.exits_of("a")] == ["SIGKILL"] * 3
    assert len({pid for cid, pid in rec.starts if cid == "a"}) == 4
