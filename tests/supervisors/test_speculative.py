"""Speculative restarts from the warm pool: the zygote starts the replacement when it reaps a crashed child,
and the supervisor adopts it or kills it. What a supervisor's user observes must not change."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import psutil
import pykka
import pytest

import supervisors as sv
from tests.helpers import process_or_none

from .helpers import Recorder, children_by_id, wait_until
from .targets import always_crash, graceful, worker


@pytest.fixture
def zygote() -> Iterator[sv.Zygote]:
    """Overrides the suite's zygote: speculation needs a deeper warm pool (``start_sup`` starts on it)."""
    z = sv.Zygote.start(warm_pool=3)
    try:
        yield z
    finally:
        z.stop()


def _zygote_children(zygote: sv.Zygote) -> set[int]:
    """Live (non-zombie) children of the zygote: process children and idle pool hosts."""
    out = set()
    for proc in psutil.Process(zygote.pid).children():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def _settled(zygote: sv.Zygote, expected_children: int) -> bool:
    """The zygote runs exactly ``expected_children`` children plus a full pool (and the nursery)."""
    nursery = zygote.hub.nursery_pid
    return nursery != 0 and len(_zygote_children(zygote) - {nursery}) == expected_children + zygote.warm_pool


def _pid_of(sup: sv.Supervisor, child_id: str) -> int | None:
    """The child's pid, None if it is not running or the supervisor is gone."""
    try:
        return sup.pid_of(child_id)
    except pykka.ActorDeadError:
        return None


def _wait_pool_full(zygote: sv.Zygote, children: int) -> None:
    # Refilling the pool forks and warms hosts: on a loaded 2-core machine that has taken over 10 s.
    wait_until(lambda: _settled(zygote, children), timeout=30.0)


def test_sigkill_restart_is_speculative_and_observably_the_same(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder
) -> None:
    events: list[tuple[str, int]] = []

    def on_start(cid: str, pid: int, ch: sv.OwnerChannel) -> None:
        events.append(("start", pid))
        rec.on_start(cid, pid, ch)

    def on_exit(cid: str, reason: sv.ExitReason) -> None:
        events.append(("exit", 0))
        rec.on_exit(cid, reason)

    spec = sv.ProcessSpec(id="w", target=worker, on_start=on_start, on_message=rec.on_message, on_exit=on_exit)
    sup = start_sup(sv.SupervisorSpec(id="s", max_restarts=50, max_seconds=60, children=[spec]))
    hub = zygote.hub
    pid = sup.pid_of("w")
    assert pid is not None
    for i in range(5):
        _wait_pool_full(zygote, 1)
        before = hub.spares_adopted
        os.kill(pid, signal.SIGKILL)
        new = wait_until(lambda old=pid: (p := sup.pid_of("w")) not in (None, old) and p)
        rec.ping("w", i)
        assert hub.spares_adopted == before + 1
        pid = new
    info = children_by_id(sup)["w"]
    assert info.restarts == 5
    assert info.last_exit is not None and info.last_exit.kind == "killed"
    assert [r.signal for r in rec.exits_of("w")] == ["SIGKILL"] * 5
    # on_exit of an incarnation always comes before on_start of the next, and each start has its own pid
    assert [e[0] for e in events] == ["start"] + ["exit", "start"] * 5
    assert len({p for kind, p in events if kind == "start"}) == 6
    assert hub.spares_discarded == 0


def test_exception_restart_keeps_the_traceback(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s", children=[rec.spec("w", worker)]))
    old = sup.pid_of("w")
    _wait_pool_full(zygote, 1)
    rec.channels["w"].send(["raise", "boom"])
    wait_until(lambda: sup.pid_of("w") not in (None, old))
    rec.ping("w", 1)
    (reason,) = rec.exits_of("w")
    assert reason.kind == "exception" and reason.exc_type == "ValueError" and reason.message == "boom"
    assert zygote.hub.spares_adopted == 1


def test_messages_of_the_replacement_come_after_its_on_start(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote
) -> None:
    log: list[str] = []
    spec = sv.ProcessSpec(
        id="g",
        target=graceful,  # sends "ready" as soon as it runs, possibly before it is adopted
        on_start=lambda cid, pid, ch: log.append(f"start {pid}"),
        on_message=lambda cid, msg: log.append(f"msg {msg}"),
        on_exit=lambda cid, reason: log.append("exit"),
    )
    sup = start_sup(sv.SupervisorSpec(id="s", max_restarts=50, max_seconds=60, children=[spec]))
    for i in range(5):
        wait_until(lambda i=i: log.count("msg ready") == i + 1)
        _wait_pool_full(zygote, 1)
        pid = sup.pid_of("g")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: log.count("msg ready") == 6)
    kinds = [entry.split()[0] for entry in log]
    assert kinds == ["start", "msg"] + ["exit", "start", "msg"] * 5
    assert zygote.hub.spares_adopted == 5


def test_supervisor_giving_up_kills_the_replacement(zygote: sv.Zygote, rec: Recorder) -> None:
    root = sv.Supervisor.start(
        sv.SupervisorSpec(id="root", max_restarts=2, max_seconds=60, children=[rec.spec("w", worker)]),
        zygote=zygote,
    )
    try:
        for _ in range(3):
            wait_until(lambda: _pid_of(root, "w") is not None)
            _wait_pool_full(zygote, 1)
            pid = _pid_of(root, "w")
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda old=pid: not root.is_alive() or _pid_of(root, "w") not in (None, old))
        reason = root.wait(timeout=10)
        assert reason is not None and reason.exc_type == "supervisors.MaxRestartsExceeded"
        # 1 start + 2 restarts; the third crash escalates: no on_start for anything after it
        assert len(rec.starts) == 3
        assert len(rec.exits_of("w")) == 3
        # at the limit, the last incarnation was not armed: nothing was started only to be killed
        assert zygote.hub.spares_discarded == 0
        wait_until(lambda: zygote.pids() == [])
        _wait_pool_full(zygote, 0)
    finally:
        root.stop(timeout=10)


def test_replacement_rejected_when_a_sibling_filled_the_intensity(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder
) -> None:
    """Armed while the intensity had room; a sibling's restarts fill it; the next crash escalates."""
    root = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root",
            max_restarts=1,
            max_seconds=60,
            children=[rec.spec("a", worker), rec.spec("b", worker)],
        ),
        zygote=zygote,
    )
    try:
        _wait_pool_full(zygote, 2)
        a = root.pid_of("a")
        assert a is not None
        os.kill(a, signal.SIGKILL)  # restart 1 of 1: "b" is disarmed, since the next crash escalates
        wait_until(lambda: root.pid_of("a") not in (None, a))
        _wait_pool_full(zygote, 2)
        b = root.pid_of("b")
        assert b is not None
        os.kill(b, signal.SIGKILL)
        reason = root.wait(timeout=10)
        assert reason is not None and reason.exc_type == "supervisors.MaxRestartsExceeded"
        assert [cid for cid, _ in rec.starts] == ["a", "b", "a"]
        wait_until(lambda: zygote.pids() == [])
        _wait_pool_full(zygote, 0)
    finally:
        root.stop(timeout=10)


def test_instant_crashes_of_replacements_are_counted(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder
) -> None:
    """A replacement that dies before it is adopted: its exit is held, then handled as a crash of it."""
    sup = start_sup(sv.SupervisorSpec(id="s", max_restarts=100, max_seconds=60))
    sup.start_child(rec.spec("c", always_crash, restart=sv.Restart.TRANSIENT, max_restarts=4, max_seconds=60))
    wait_until(lambda: rec.give_ups)
    assert len(rec.starts) == 5
    assert [r.exc_type for r in rec.exits_of("c")] == ["RuntimeError"] * 5
    assert [cid for cid, _ in rec.give_ups] == ["c"]
    assert "c" not in children_by_id(sup)
    wait_until(lambda: _settled(zygote, 0), timeout=10)


def test_transient_normal_exit_and_terminate_start_nothing(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="s"))
    sup.start_child(rec.spec("t", worker, restart=sv.Restart.TRANSIENT))
    sup.start_child(rec.spec("p", worker))
    _wait_pool_full(zygote, 2)
    rec.channels["t"].send(["return"])
    wait_until(lambda: rec.exits_of("t"))
    reason = sup.terminate_child("p", kill=True)
    assert reason is not None and reason.kind == "shutdown" and reason.signal == "SIGKILL"
    time.sleep(0.05)
    _wait_pool_full(zygote, 0)
    assert len(rec.starts) == 2
    assert zygote.hub.spares_adopted == 0
    assert zygote.hub.spares_discarded == 0


@pytest.mark.parametrize("strategy", [sv.Strategy.ONE_FOR_ALL, sv.Strategy.REST_FOR_ONE])
def test_group_strategies_do_not_speculate(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], zygote: sv.Zygote, rec: Recorder, strategy: sv.Strategy
) -> None:
    sup = start_sup(
        sv.SupervisorSpec(id="s", strategy=strategy, children=[rec.spec("a", worker), rec.spec("b", worker)])
    )
    _wait_pool_full(zygote, 2)
    a = sup.pid_of("a")
    assert a is not None
    os.kill(a, signal.SIGKILL)
    wait_until(lambda: len(rec.starts) == 4)
    assert [cid for cid, _ in rec.starts] == ["a", "b", "a", "b"]
    assert [cid for cid, _ in rec.exits] == ["a", "b"]
    assert zygote.hub.spares_adopted == 0
    assert zygote.hub.spares_discarded == 0


def test_stopping_with_replacements_in_flight_leaks_nothing(zygote: sv.Zygote, rec: Recorder) -> None:
    root = sv.Supervisor.start(
        sv.SupervisorSpec(
            id="root", max_restarts=1000, max_seconds=60, children=[rec.spec(f"w{i}", worker) for i in range(3)]
        ),
        zygote=zygote,
    )
    _wait_pool_full(zygote, 3)
    for info in root.which_children():
        assert info.pid is not None
        os.kill(info.pid, signal.SIGKILL)
    root.stop(timeout=10)
    assert zygote.pids() == []
    wait_until(lambda: _settled(zygote, 0), timeout=10)


def test_pool_refills_through_a_new_nursery_when_it_is_killed(zygote: sv.Zygote) -> None:
    hub = zygote.hub
    _wait_pool_full(zygote, 0)
    first = hub.nursery_pid
    os.kill(first, signal.SIGKILL)
    pids = [zygote.spawn(worker) for _ in range(4)]  # drains the pool: a new nursery refills it
    wait_until(lambda: hub.nursery_pid not in (0, first))
    _wait_pool_full(zygote, 4)
    for pid in pids:
        zygote.terminate(pid, kill=True)
    _wait_pool_full(zygote, 0)


def test_an_idle_host_killed_is_replaced(zygote: sv.Zygote) -> None:
    _wait_pool_full(zygote, 0)
    hosts = _zygote_children(zygote) - {zygote.hub.nursery_pid}
    victim = hosts.pop()
    os.kill(victim, signal.SIGKILL)
    # os.kill returns before the signal lands: until the victim is gone, the pool still looks full with it.
    wait_until(lambda: victim not in _zygote_children(zygote))
    _wait_pool_full(zygote, 0)
    pid = zygote.spawn(worker)
    assert pid in _zygote_children(zygote)
    zygote.terminate(pid, kill=True)


@pytest.mark.timeout(120)
def test_hosts_killed_on_their_way_are_replaced(zygote: sv.Zygote) -> None:
    """Hosts die at every stage of their making (in the nursery's intermediate, on their way to the zygote,
    idle in the pool): each one lost is forked again, and the pool ends full, never wedged short of it."""
    _wait_pool_full(zygote, 0)
    killed = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        nursery = zygote.hub.nursery_pid
        try:
            victims = psutil.Process(nursery).children(recursive=True) if nursery else []
        except psutil.NoSuchProcess:
            victims = []
        # A child listed may be reaped before it is looked up.
        listed = map(process_or_none, _zygote_children(zygote) - {nursery})
        victims += [proc for proc in listed if proc is not None]
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
                killed += 1
    assert killed > 0
    _wait_pool_full(zygote, 0)
    pid = zygote.spawn(worker)
    assert pid in _zygote_children(zygote)
    zygote.terminate(pid, kill=True)
