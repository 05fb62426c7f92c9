"""The zygote's CPUs (``Zygote.start(cpus=..., pool_cpus=...)``): the zygote and every process it forks itself run
on ``cpus``, its idle pool hosts (and a child handed one) on ``pool_cpus``, restarts of the zygote included; by
default both are those of the thread that starts it, whichever thread forks it."""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest

import supervisors as sv

from .helpers import wait_until
from .targets import worker

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs or more"
    ),
]

CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


def _cpus(pid: int) -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(pid))
    except ProcessLookupError:
        return None


def _child_pid(zygote: sv.Zygote) -> tuple[sv.Supervisor, int]:
    root = sv.Supervisor.start(
        sv.SupervisorSpec(id="root", children=[sv.ProcessSpec(id="w", target=worker)]), zygote=zygote
    )
    return root, int(root.tree()["children"][0]["pid"])


def test_the_zygote_and_its_children_run_on_the_cpus_given() -> None:
    one = frozenset({min(CPUS)})
    zygote = sv.Zygote.start(warm_pool=1, cpus=one, max_restarts=1)
    try:
        assert frozenset(os.sched_getaffinity(zygote.pid)) == one
        root, pid = _child_pid(zygote)
        assert frozenset(os.sched_getaffinity(pid)) == one
        first = zygote.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: zygote.pid != first and zygote.alive, timeout=30)
        assert frozenset(os.sched_getaffinity(zygote.pid)) == one  # a restart keeps them
        wait_until(lambda: root.tree()["children"][0]["pid"] not in (None, pid), timeout=30)
        assert frozenset(os.sched_getaffinity(int(root.tree()["children"][0]["pid"]))) == one
        root.stop()
    finally:
        zygote.stop()
    assert frozenset(os.sched_getaffinity(0)) == CPUS  # the caller's own are untouched


def test_by_default_the_zygote_runs_on_the_cpus_of_the_thread_that_starts_it() -> None:
    one = frozenset({max(CPUS)})
    started: list[sv.Zygote] = []

    def start() -> None:
        os.sched_setaffinity(0, one)
        started.append(sv.Zygote.start(warm_pool=0))

    starter = threading.Thread(target=start)
    starter.start()
    starter.join(30)
    (zygote,) = started
    try:
        assert frozenset(os.sched_getaffinity(zygote.pid)) == one
    finally:
        zygote.stop()
    zygote = sv.Zygote.start(warm_pool=0)  # from this thread, after one was started elsewhere: its own CPUs
    try:
        assert frozenset(os.sched_getaffinity(zygote.pid)) == CPUS
    finally:
        zygote.stop()


def test_idle_pool_hosts_run_on_the_pool_cpus_and_a_child_handed_one_keeps_them() -> None:
    low, high = frozenset({min(CPUS)}), frozenset({max(CPUS)})
    zygote = sv.Zygote.start(warm_pool=2, cpus=low, pool_cpus=high)
    try:
        assert frozenset(os.sched_getaffinity(zygote.pid)) == low
        nursery = wait_until(lambda: zygote._hub.nursery_pid, timeout=30)
        # it sets its CPUs right after its fork, a moment after the zygote announced it
        wait_until(lambda: frozenset(os.sched_getaffinity(nursery)) == high, timeout=30)
        # the warm pool filled: the nursery and two idle hosts (forked by it) on the pool's CPUs
        wait_until(lambda: sum(_cpus(child.pid) == high for child in psutil.Process(zygote.pid).children()) >= 3)
        root = sv.Supervisor.start(
            sv.SupervisorSpec(
                id="root", children=[sv.ProcessSpec(id=f"w{index}", target=worker) for index in range(4)]
            ),
            zygote=zygote,
        )
        spawned = {
            int(child["pid"]): frozenset(os.sched_getaffinity(int(child["pid"]))) for child in root.tree()["children"]
        }
        root.stop()
    finally:
        zygote.stop()
    # Two children were handed the warm pool's hosts, the rest were forked by the zygote itself (or handed the
    # refilled pool's): each runs on one of the two sets, and the pool's was used.
    assert set(spawned.values()) <= {low, high} and high in spawned.values(), spawned


def test_no_cpu_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one CPU"):
        sv.Zygote.start(cpus=())
    with pytest.raises(ValueError, match="at least one CPU"):
        sv.Zygote.start(pool_cpus=())
