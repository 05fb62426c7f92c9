"""The zygote's CPUs (``Zygote.start(cpus=..., pool_cpus=...)``): the zygote and every process it forks itself run
on ``cpus``, its idle pool hosts (and a child handed one) on ``pool_cpus``, restarts of the zygote included; by
default both are those of the thread that starts it, whichever thread forks it. A CPU the machine does not have is
refused by name; a zygote restarted after the machine's cpuset lost its CPUs runs on those left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

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
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("cpuset_owner.py")
#: Where cgroup v1 keeps its cpusets (the test makes one of its own there, as root).
CPUSETS = Path("/sys/fs/cgroup/cpuset")


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


@pytest.mark.parametrize("argument", ["cpus", "pool_cpus"])
def test_a_cpu_the_machine_does_not_have_is_refused_by_name(argument: str) -> None:
    beyond = os.sysconf("SC_NPROCESSORS_CONF") + 7
    with pytest.raises(ValueError, match=rf"{argument} names CPUs this machine does not have: {beyond}\b"):
        sv.Zygote.start(**{argument: [min(CPUS), beyond]})
    with pytest.raises(ValueError, match=rf"{argument} names CPUs this machine does not have: -1\b"):
        sv.Zygote.start(**{argument: [-1]})


def _can_make_cpusets() -> bool:
    return os.geteuid() == 0 and (CPUSETS / "cpuset.cpus").is_file() and os.access(CPUSETS, os.W_OK)


@contextlib.contextmanager
def _cpuset(cpus: frozenset[int]) -> Iterator[Path]:
    """A cgroup v1 cpuset of its own on ``cpus``, removed afterwards (once every process in it has gone)."""
    group = CPUSETS / f"aion-test-{os.getpid()}-{threading.get_ident()}"
    group.mkdir()
    try:
        (group / "cpuset.mems").write_text((CPUSETS / "cpuset.mems").read_text())
        (group / "cpuset.cpus").write_text(",".join(str(cpu) for cpu in sorted(cpus)))
        yield group
    finally:
        wait_until(lambda: not (group / "cgroup.procs").read_text().strip(), timeout=30)
        group.rmdir()


@pytest.mark.skipif(not _can_make_cpusets(), reason="needs root and cgroup v1's cpuset hierarchy")
def test_a_zygote_restarted_after_the_cpuset_lost_its_cpus_runs_on_the_cpus_left() -> None:
    """The zygote and its pool are given one CPU; the machine's cpuset then loses it. The zygote killed then is
    forked again, and so are its nursery, its warm pool and the child: on the CPU the cpuset kept."""
    kept, lost = min(CPUS), max(CPUS)
    with _cpuset(frozenset({kept, lost})) as group:
        owner = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(lost)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert owner.stdin is not None and owner.stdout is not None
            (group / "cgroup.procs").write_text(str(owner.pid))
            owner.stdin.write("inside\n")  # it forks its zygote only now: every process of it is in the cpuset
            owner.stdin.flush()
            assert owner.stdout.readline().strip() == "ready"
            zygote = psutil.Process(owner.pid).children()[0].pid
            assert _cpus(zygote) == frozenset({lost})
            (group / "cpuset.cpus").write_text(str(kept))
            owner.stdin.write("shrunk\n")
            owner.stdin.flush()
            report = json.loads(owner.stdout.readline())
            assert report == {"zygote": [kept], "child": [kept], "nursery": [kept], "pool": [kept]}, report
            assert owner.wait(timeout=30) == 0
        finally:
            owner.kill()
            owner.wait(timeout=30)


def _run_on_in_a_child(cpus: str) -> dict[str, object]:
    """``supervisors.run_on`` called in a fresh interpreter (not to move the test process): its result and CPUs."""
    code = (
        "import json, os, supervisors as sv; "
        f"done = sv.run_on({cpus}); "
        "print(json.dumps({'done': done, 'cpus': sorted(os.sched_getaffinity(0))}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    return dict(json.loads(output))


def test_run_on_moves_the_calling_process_and_says_so() -> None:
    one = max(CPUS)
    assert _run_on_in_a_child(f"{{{one}}}") == {"done": True, "cpus": [one]}


def test_run_on_keeps_the_cpus_it_has_when_it_cannot_move() -> None:
    beyond = os.sysconf("SC_NPROCESSORS_CONF") + 7  # no such CPU: the OS refuses the set
    assert _run_on_in_a_child(f"{{{beyond}}}") == {"done": False, "cpus": sorted(CPUS)}
    assert _run_on_in_a_child("None") == {"done": False, "cpus": sorted(CPUS)}
