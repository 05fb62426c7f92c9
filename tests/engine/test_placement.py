"""CPU placement (``Engine(engine_cpu=...)``): the engine's threads share one CPU, its workflow processes and activity
workers run on the others (a queue with ``use_engine_cpu`` on any), and the caller's threads are left alone. Read
from the live processes' affinity (``sched_getaffinity``) of real engines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import aion
from aion.engine import _placement
from aion.engine._placement import AUTO, CpuClaim, Placement, place
from aion.errors import InvalidArgumentError
from tests.engine import flows
from tests.helpers import wait_until

CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="placement pins only with two CPUs or more")

#: Threads every running engine has (see docs/architecture.md, "CPU placement").
ENGINE_THREADS = ("EngineCore", "Recorder", "supervisors-hub", "_SupervisorActor", "ScheduleService", "aion-timers")


@pytest.fixture(autouse=True)
def own_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CPU claims of this test's engines only (another engine of the machine may hold the real ones)."""
    claims = tmp_path / "claims"
    monkeypatch.setattr(_placement, "CLAIMS_DIR", claims)
    return claims


def _zygote_pid(data: Path) -> int:
    return int((data / "zygote.session").read_text().split()[0])


def _settles_on(pid: int, cpus: frozenset[int]) -> bool:
    """Whether workflow process ``pid`` comes to run on ``cpus`` (it sets them as its run starts, a moment after
    its process is listed; nothing else changes them)."""

    def on() -> bool:
        try:
            return frozenset(os.sched_getaffinity(pid)) == cpus
        except ProcessLookupError:
            return False

    return bool(wait_until(on, timeout=30))


def _engine_threads() -> dict[str, frozenset[int]]:
    """Each running engine thread (by name) and the CPUs it may run on."""
    return {
        thread.name: frozenset(os.sched_getaffinity(thread.native_id))
        for thread in threading.enumerate()
        if thread.native_id is not None and thread.name.startswith(ENGINE_THREADS)
    }


def _workers_on(engine: aion.Engine, cpus: frozenset[int], count: int, queue: str | None = None) -> bool:
    """Whether the engine has ``count`` activity workers (of task queue ``queue``, or of all) and each runs on
    ``cpus`` (a worker sets its CPUs as its target starts, a moment after its process is listed)."""
    pids = _worker_pids(engine.supervision_tree(), queue)
    try:
        return len(pids) == count and all(frozenset(os.sched_getaffinity(pid)) == cpus for pid in pids)
    except ProcessLookupError:  # one was replaced meanwhile
        return False


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a supervision tree."""
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)


def _idle_hosts(engine: aion.Engine, children: list[int]) -> list[int]:
    """Of the zygote's ``children``, those the supervision tree does not list (idle pool hosts, the nursery)."""
    tree = engine.supervision_tree()
    listed = {int(node["pid"]) for node in _nodes(tree) if node.get("kind") == "process" and node.get("pid")}
    return [pid for pid in children if pid not in listed]


def _worker_pids(tree: dict[str, Any], queue: str | None = None) -> list[int]:
    """The pids of the activity workers in ``tree`` (of task queue ``queue`` only, when given)."""
    return [
        int(node["pid"])
        for node in _nodes(tree)
        if node.get("meta", {}).get("role") == "activity_worker"
        and (queue is None or node["meta"].get("task_queue") == queue)
    ]


@pytest.fixture
def waiting_run(tmp_path: Path, log: str, request: pytest.FixtureRequest) -> Iterator[tuple[aion.Engine, int]]:
    """An engine with ``engine_cpu=request.param`` and a run waiting on a signal in its process (its pid)."""
    with aion.Engine(
        tmp_path / "data",
        workflows=flows.ALL_WORKFLOWS,
        activities=flows.ALL_ACTIVITIES,
        activity_workers=2,
        engine_cpu=request.param,
    ) as engine:
        handle = engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id="waits")
        pid = wait_until(lambda: engine.workflow_pid("waits"), timeout=30)
        yield engine, pid
        handle.signal("item", 1)
        assert handle.result(timeout=30) == [1]


@needs_two_cpus
@pytest.mark.timeout(60)
@pytest.mark.parametrize("waiting_run", [AUTO], indirect=True)
def test_the_engine_threads_share_one_cpu_and_its_workflow_processes_run_on_the_others(
    waiting_run: tuple[aion.Engine, int],
) -> None:
    engine, workflow_pid = waiting_run
    engine_cpu = max(CPUS)
    threads = _engine_threads()
    assert {name.rstrip("-0123456789") for name in threads} >= {"EngineCore", "Recorder", "supervisors-hub"}
    assert set(threads.values()) == {frozenset({engine_cpu})}, threads
    assert frozenset(os.sched_getaffinity(0)) == CPUS  # the caller's thread is given its CPUs back
    hosts = CPUS - {engine_cpu}
    assert _settles_on(workflow_pid, hosts)
    zygote = _zygote_pid(engine.data_dir)
    assert frozenset(os.sched_getaffinity(zygote)) == hosts  # it hands every run its process: beside them
    # Its idle pool hosts (and the nursery that forks them) keep every CPU: refilling the pool after a crash may
    # use the engine's CPU while the restarted run replays on the others.
    idle = _idle_hosts(engine, [child.pid for child in psutil.Process(zygote).children() if child.pid != workflow_pid])
    assert idle and all(frozenset(os.sched_getaffinity(pid)) == CPUS for pid in idle)
    # Activities taking CPU time must not slow the engine's threads: the workers run beside the workflow processes.
    wait_until(lambda: _workers_on(engine, hosts, 2), timeout=30)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("waiting_run", [None], indirect=True)
def test_engine_cpu_none_pins_nothing(waiting_run: tuple[aion.Engine, int]) -> None:
    engine, workflow_pid = waiting_run
    assert set(_engine_threads().values()) == {CPUS}
    assert frozenset(os.sched_getaffinity(workflow_pid)) == CPUS
    assert frozenset(os.sched_getaffinity(_zygote_pid(engine.data_dir))) == CPUS
    wait_until(lambda: _workers_on(engine, CPUS, 2), timeout=30)


@needs_two_cpus
@pytest.mark.timeout(120)
def test_a_restarted_workflow_process_and_a_restarted_zygote_keep_the_placement(tmp_path: Path, log: str) -> None:
    engine_cpu = min(CPUS)  # a CPU named, not chosen
    hosts = CPUS - {engine_cpu}
    data = tmp_path / "data"
    with aion.Engine(
        data, workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=2, engine_cpu=engine_cpu
    ) as engine:
        handle = engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id="waits")
        first = wait_until(lambda: engine.workflow_pid("waits"), timeout=30)
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: engine.workflow_pid("waits") not in (None, first) and engine.workflow_pid("waits"))
        assert _settles_on(second, hosts)
        zygote = _zygote_pid(data)
        os.kill(zygote, signal.SIGKILL)
        wait_until(lambda: _zygote_pid(data) != zygote, timeout=30)
        assert frozenset(os.sched_getaffinity(_zygote_pid(data))) == hosts  # forked again by a pinned thread
        third = wait_until(lambda: engine.workflow_pid("waits") not in (None, second) and engine.workflow_pid("waits"))
        assert _settles_on(third, hosts)
        wait_until(lambda: _workers_on(engine, hosts, 2), timeout=30)
        assert set(_engine_threads().values()) == {frozenset({engine_cpu})}
        handle.signal("item", 1)
        assert handle.result(timeout=60) == [1]


@needs_two_cpus
@pytest.mark.timeout(90)
def test_a_queue_with_use_engine_cpu_runs_its_workers_on_every_cpu_and_the_others_stay_off_the_engines(
    tmp_path: Path, log: str
) -> None:
    engine_cpu = max(CPUS)
    hosts = CPUS - {engine_cpu}
    with aion.Engine(
        tmp_path / "data",
        workflows=flows.ALL_WORKFLOWS,
        activities=flows.ALL_ACTIVITIES,
        task_queues={
            "default": aion.LocalQueue(workers=1),
            "heavy": aion.LocalQueue(workers=2, use_engine_cpu=True),
        },
        engine_cpu=engine_cpu,
    ) as engine:
        wait_until(lambda: _workers_on(engine, CPUS, 2, "heavy"), timeout=30)
        wait_until(lambda: _workers_on(engine, hosts, 1, "default"), timeout=30)
        # A replaced worker of the queue is placed as the first was.
        first = _worker_pids(engine.supervision_tree(), "heavy")[0]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: first not in _worker_pids(engine.supervision_tree(), "heavy"), timeout=30)
        wait_until(lambda: _workers_on(engine, CPUS, 2, "heavy"), timeout=30)


@needs_two_cpus
@pytest.mark.timeout(60)
def test_an_engine_started_from_a_thread_on_one_cpu_pins_nothing(tmp_path: Path, log: str) -> None:
    only = min(CPUS)
    seen: dict[str, Any] = {}

    def run() -> None:
        os.sched_setaffinity(0, {only})
        with aion.Engine(
            tmp_path / "data", workflows=flows.ALL_WORKFLOWS, activities=flows.ALL_ACTIVITIES, activity_workers=1
        ) as engine:
            handle = engine.start_workflow(flows.waits_for_signals, log, 1, workflow_id="waits")
            pid = wait_until(lambda: engine.workflow_pid("waits"), timeout=30)
            seen["threads"] = set(_engine_threads().values())
            seen["workflow"] = frozenset(os.sched_getaffinity(pid))
            seen["workers"] = _workers_on(engine, frozenset({only}), 1)
            handle.signal("item", 1)
            seen["result"] = handle.result(timeout=30)

    starter = threading.Thread(target=run)
    starter.start()
    starter.join(50)
    assert seen.get("result") == [1], seen
    one = frozenset({only})
    assert seen["threads"] == {one} and seen["workflow"] == one and seen["workers"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("bad", [True, -1, 1.0, "0", "any", [0], 1 << 20])
def test_a_bad_engine_cpu_is_refused_by_name(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="engine_cpu"):
        aion.Engine(tmp_path / "data", workflows=flows.ALL_WORKFLOWS, engine_cpu=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "data").exists()  # refused before anything is made


@pytest.mark.timeout(10)
def test_the_plan_for_each_option() -> None:
    two, four = frozenset({0, 1}), frozenset({2, 3, 5, 7})
    assert Placement.plan(AUTO, two) == Placement(1, frozenset({0}), two)
    assert Placement.plan(AUTO, four) == Placement(7, frozenset({2, 3, 5}), four)
    assert Placement.plan(3, four) == Placement(3, frozenset({2, 5, 7}), four)
    assert Placement.plan(AUTO, frozenset({4})) == Placement(None, frozenset({4}), frozenset({4}))
    assert Placement.plan(4, frozenset({4})) == Placement(4, frozenset({4}), frozenset({4}))
    assert Placement.plan(None, four) == Placement(None, four, four)
    assert Placement.plan(AUTO, None) == Placement(None, None, None)
    with pytest.raises(InvalidArgumentError, match=r"engine_cpu=1 is not one of the CPUs .*\(2, 3, 5, 7\)"):
        Placement.plan(1, four)


@needs_two_cpus
@pytest.mark.timeout(60)
def test_engines_running_together_claim_different_cpus(tmp_path: Path, log: str, own_claims: Path) -> None:
    high, low = sorted(CPUS)[-1], sorted(CPUS)[-2]

    def engine(name: str) -> aion.Engine:
        return aion.Engine(tmp_path / name, workflows=flows.ALL_WORKFLOWS, activity_workers=1)

    def hosts_on(running: aion.Engine, cpus: frozenset[int]) -> bool:
        """Whether a workflow process of ``running`` comes to run on ``cpus`` (all but the engine's)."""
        handle = running.start_workflow(flows.waits_for_signals, log, 1)
        settled = _settles_on(wait_until(lambda: running.workflow_pid(handle.workflow_id)), cpus)
        handle.signal("item", 1)
        assert handle.result(timeout=30) == [1]
        return settled

    with engine("one") as first:
        assert hosts_on(first, CPUS - {high})
        zygote = _zygote_pid(tmp_path / "one")
        held = [os.readlink(f"/proc/{zygote}/fd/{fd}") for fd in os.listdir(f"/proc/{zygote}/fd")]
        assert not any(path.startswith(str(own_claims)) for path in held)  # released with the engine, even by SIGKILL
        with engine("two") as second:
            assert hosts_on(second, CPUS - {low})
    with engine("three") as third:
        assert hosts_on(third, CPUS - {high})  # given back


@pytest.mark.timeout(30)
def test_a_claim_is_held_until_released_and_then_free(own_claims: Path) -> None:
    claim = CpuClaim.take(3)
    assert claim is not None and CpuClaim.take(3) is None
    claim.release()
    claim.release()  # idempotent
    again = CpuClaim.take(3)
    assert again is not None
    again.release()


@pytest.mark.timeout(30)
def test_a_claim_dies_with_its_process(own_claims: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; from aion.engine import _placement as p; "
        "p.CLAIMS_DIR = Path(sys.argv[1]); claim = p.CpuClaim.take(5); print(claim is not None, flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(own_claims)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert CpuClaim.take(5) is None
    finally:
        holder.kill()
        holder.wait()
    claim = CpuClaim.take(5)
    assert claim is not None
    claim.release()


@pytest.mark.timeout(30)
def test_auto_takes_the_highest_cpu_not_claimed_and_an_explicit_cpu_claims_nothing(own_claims: Path) -> None:
    four = frozenset({2, 3, 5, 7})
    held = CpuClaim.take(7)
    assert held is not None
    placement, claim = place(AUTO, four)
    assert placement.engine_cpu == 5 and claim is not None and claim.cpu == 5
    others = [CpuClaim.take(cpu) for cpu in (2, 3)]
    assert place(AUTO, four)[0].engine_cpu == 7  # all claimed: the highest, unclaimed
    assert place(3, four) == (Placement(3, frozenset({2, 5, 7}), four), None)
    assert place(AUTO, frozenset({2})) == (Placement(None, frozenset({2}), frozenset({2})), None)
    for taken in (held, claim, *others):
        assert taken is not None
        taken.release()
