"""A supervised zygote (``Zygote.start(max_restarts=...)``): killed, it is replaced, and the supervisors restart
their process children on the new one without counting it against anybody's intensity; past its own intensity it
gives up and says why."""

from __future__ import annotations

import logging
import os
import signal
import threading

import pytest

import supervisors as sv
from supervisors import _decisions as decisions

from .helpers import wait_until
from .targets import worker


def test_an_exit_with_the_zygote_is_restarted_and_counted_nowhere() -> None:
    class Child:
        restart = sv.Restart.PERMANENT
        running = False
        dynamic = False
        intensity = decisions.Intensity(1, 5.0, (0.0,))

    supervisor = decisions.Intensity(1, 5.0, (0.0,))
    decision = decisions.decide_exit(
        failed=Child(),
        reason=sv.ExitReason.zygote_exited(),
        children=[],
        strategy=sv.Strategy.ONE_FOR_ONE,
        supervisor=supervisor,
        now=1.0,
    )
    assert decision.verdict is decisions.Verdict.RESTART
    assert decision.supervisor == supervisor and decision.child == Child.intensity


@pytest.mark.timeout(60)
def test_a_killed_zygote_is_replaced_and_its_children_restarted_on_the_new_one() -> None:
    restarted: list[tuple[int, int]] = []
    gave_up: list[str] = []
    zygote = sv.Zygote.start(
        warm_pool=1,
        max_restarts=2,
        max_seconds=60.0,
        on_restart=lambda old, new: restarted.append((old, new)),
        on_give_up=gave_up.append,
    )
    sup = sv.Supervisor.start(
        sv.SupervisorSpec(id="root", max_restarts=1, children=[sv.ProcessSpec(id="w", target=worker)]),
        zygote=zygote,
    )
    try:
        for round_ in range(2):
            first_zygote, first_child = zygote.pid, sup.pid_of("w")
            os.kill(first_zygote, signal.SIGKILL)
            wait_until(lambda n=round_ + 1: len(restarted) == n, timeout=30)
            wait_until(lambda old=first_child: sup.pid_of("w") not in (None, old), timeout=30)
            assert zygote.pid != first_zygote and zygote.alive
            assert sup.pid_of("w") in zygote.pids()
        assert sup.tree()["children"][0]["state"] == "running"  # twice lost, never counted: max_restarts=1
        os.kill(zygote.pid, signal.SIGKILL)  # the third death in the window: past its intensity
        wait_until(lambda: gave_up, timeout=30)
        assert "more than 2 times" in gave_up[0] and zygote.gave_up == gave_up[0]
    finally:
        done = threading.Event()
        threading.Thread(target=lambda: (sup.stop(), done.set()), daemon=True).start()
        done.wait(30)
        zygote.stop()


@pytest.mark.timeout(60)
def test_restarts_that_keep_failing_warn_once_not_once_each(caplog: pytest.LogCaptureFixture) -> None:
    # With its zygote gone for good, every restart of a process child fails at once, again and again up to the
    # supervisor's intensity: one warning for the streak, the rest at DEBUG.
    caplog.set_level(logging.DEBUG, logger="supervisors")
    gave_up: list[str] = []
    zygote = sv.Zygote.start(max_restarts=0, max_seconds=60.0, on_give_up=gave_up.append)
    sup = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root", max_restarts=20, max_seconds=60.0, children=[sv.ProcessSpec(id="w", target=worker)]
        ),
        zygote=zygote,
    )
    try:
        os.kill(zygote.pid, signal.SIGKILL)
        wait_until(lambda: gave_up, timeout=30)
        wait_until(lambda: not sup.is_alive(), timeout=30)  # past its intensity: it escalates
        failed = [r for r in caplog.records if r.getMessage().startswith("restarting child 'w' of 'root' failed")]
        assert [r.levelno for r in failed[:1]] == [logging.WARNING]
        assert len(failed) > 5 and all(r.levelno == logging.DEBUG for r in failed[1:])
    finally:
        done = threading.Event()
        threading.Thread(target=lambda: (sup.stop(), done.set()), daemon=True).start()
        done.wait(30)
        zygote.stop()
