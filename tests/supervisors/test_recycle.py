"""Recyclable process children: a process whose target returned normally hosts the next child of the same
target, and nothing aimed at its earlier incarnation ever reaches a later one."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

import supervisors as sv
from supervisors._hub import Hub, Proc
from supervisors._pool import RECYCLED_IDLE_FLOOR
from supervisors._specs import target_ref
from tests.helpers import is_gone

from .helpers import Recorder, wait_until
from .targets import echo_all, graceful_worker, worker


class _Child:
    """One unsupervised process child of the zygote, with what it sent and how it exited."""

    def __init__(self, zygote: sv.Zygote, target: Callable[..., Any], recycle: bool = True) -> None:
        self.messages: list[Any] = []
        self.exit: sv.ExitReason | None = None
        self.exited = threading.Event()
        self.pid = zygote.spawn(target, on_message=self.messages.append, on_exit=self._on_exit, recycle=recycle)
        channel = zygote.channel(self.pid)
        assert channel is not None
        self.channel = channel

    def _on_exit(self, pid: int, reason: sv.ExitReason) -> None:
        self.exit = reason
        self.exited.set()

    def ping(self, token: object) -> None:
        self.channel.send(["ping", token])
        wait_until(lambda: ["pong", token] in self.messages)

    def finish(self) -> sv.ExitReason:
        """Make the target return normally; its exit reason."""
        self.channel.send(["return"])
        assert self.exited.wait(10)
        assert self.exit is not None
        return self.exit


@pytest.fixture(params=[0, 2], ids=["cold-fork", "warm-pool"])
def zygote(request: pytest.FixtureRequest) -> Iterator[sv.Zygote]:
    """Recycling works for children forked on demand and for children handed to a pool host alike."""
    z = sv.Zygote.start(warm_pool=request.param)
    try:
        yield z
    finally:
        z.stop()


@pytest.mark.timeout(60)
def test_a_recyclable_child_that_returns_hosts_the_next_child_of_its_target(zygote: sv.Zygote) -> None:
    first = _Child(zygote, worker)
    first.ping(1)
    assert first.finish().kind == "normal"
    assert psutil.pid_exists(first.pid)  # kept, not ended
    second = _Child(zygote, worker)
    assert second.pid == first.pid
    second.ping(2)
    assert not second.exited.is_set()
    assert second.finish().kind == "normal"


@pytest.mark.timeout(60)
def test_a_recycled_process_serves_only_its_own_target(zygote: sv.Zygote) -> None:
    first = _Child(zygote, worker)
    first.finish()
    other = _Child(zygote, echo_all)
    assert other.pid != first.pid
    other.channel.send("hello")
    wait_until(lambda: "hello" in other.messages)
    zygote.terminate(other.pid, kill=True)


@pytest.mark.timeout(60)
def test_a_signal_for_an_earlier_incarnation_never_reaches_the_later_one(zygote: sv.Zygote) -> None:
    first = _Child(zygote, worker)
    earlier = zygote.hub.proc(first.pid)
    assert earlier is not None
    first.finish()
    second = _Child(zygote, worker)
    assert second.pid == first.pid
    zygote.hub.signal_proc(earlier, signal.SIGKILL)
    assert zygote.hub.terminate_proc(earlier, 1.0, kill=True) is not None  # already over: its own reason
    second.ping("still here")  # the zygote handles messages in order: the SIGKILL was ignored before this
    assert not second.exited.is_set()
    zygote.terminate(second.pid, kill=True)
    assert second.exited.wait(10)
    assert second.exit is not None and second.exit.kind == "shutdown"


@pytest.mark.timeout(60)
def test_a_child_that_fails_or_is_killed_is_not_recycled(zygote: sv.Zygote) -> None:
    failing = _Child(zygote, worker)
    failing.channel.send(["raise", "boom"])
    assert failing.exited.wait(10)
    assert failing.exit is not None and failing.exit.kind == "exception"
    wait_until(lambda: not psutil.pid_exists(failing.pid))
    killed = _Child(zygote, worker)
    assert killed.pid != failing.pid
    zygote.signal(killed.pid, signal.SIGKILL)
    assert killed.exited.wait(10)
    assert killed.exit is not None and killed.exit.kind == "killed"
    after = _Child(zygote, worker)
    assert after.pid not in {failing.pid, killed.pid}
    zygote.terminate(after.pid, kill=True)


@pytest.mark.timeout(60)
def test_a_later_incarnation_still_runs_its_finally_blocks_when_stopped(zygote: sv.Zygote) -> None:
    # The SIGTERM handler that raises inside a target is installed once per process: the second target a
    # recycled process runs must be stopped as gracefully as the first.
    first = _Child(zygote, graceful_worker)
    wait_until(lambda: "ready" in first.messages)
    assert first.finish().kind == "normal"
    second = _Child(zygote, graceful_worker)
    assert second.pid == first.pid
    wait_until(lambda: "ready" in second.messages)
    reason = zygote.terminate(second.pid, timeout=10)
    assert reason is not None and reason.kind == "shutdown" and reason.signal == "SIGTERM"
    assert "cleaned-up" in second.messages
    wait_until(lambda: not psutil.pid_exists(second.pid))


@pytest.mark.timeout(60)
def test_a_sigterm_while_a_recycled_process_waits_for_its_next_target_ends_it(zygote: sv.Zygote) -> None:
    first = _Child(zygote, worker)
    assert first.finish().kind == "normal"
    assert psutil.pid_exists(first.pid)
    psutil.Process(first.pid).terminate()  # SIGTERM, between two targets
    wait_until(lambda: not psutil.pid_exists(first.pid))
    after = _Child(zygote, worker)
    assert after.pid != first.pid
    after.ping(1)


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler of its own for SIGTERM (``SigCgt`` of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.timeout(60)
def test_a_recycled_process_leaves_sigterm_to_the_kernel_between_targets(zygote: sv.Zygote) -> None:
    # A Python handler cannot be relied on while the process waits for its next target: a SIGTERM landing after
    # the interpreter's last check and before the wait blocks would run it only once a target came (seen as a
    # process that outlived its SIGTERM). Its targets still get the handler, for their `finally` blocks.
    first = _Child(zygote, worker)
    first.ping(1)
    assert _catches_sigterm(first.pid)
    assert first.finish().kind == "normal"
    assert not _catches_sigterm(first.pid)
    second = _Child(zygote, worker)
    assert second.pid == first.pid
    second.ping(2)
    assert _catches_sigterm(second.pid)


@pytest.mark.timeout(60)
def test_a_child_not_marked_recyclable_exits_when_its_target_returns(zygote: sv.Zygote) -> None:
    child = _Child(zygote, worker, recycle=False)
    assert child.finish().kind == "normal"
    wait_until(lambda: not psutil.pid_exists(child.pid))


@pytest.mark.timeout(60)
def test_idle_recycled_processes_die_with_the_zygote() -> None:
    zygote = sv.Zygote.start()
    children = [_Child(zygote, worker) for _ in range(3)]
    for child in children:
        child.finish()
    pids = [child.pid for child in children]
    assert all(psutil.pid_exists(pid) for pid in pids)
    zygote.stop()
    wait_until(lambda: not any(psutil.pid_exists(pid) for pid in pids))


@pytest.mark.timeout(60)
def test_supervised_recyclable_children_kill_child_reaches_only_the_running_incarnation(
    start_sup: Callable[[sv.SupervisorSpec], sv.Supervisor], rec: Recorder
) -> None:
    sup = start_sup(sv.SupervisorSpec(id="root", max_restarts=10))
    pid = sup.start_child(rec.spec("a", worker, restart=sv.Restart.TRANSIENT, recycle=True))
    rec.ping("a", 1)
    rec.channels["a"].send(["return"])
    wait_until(lambda: [r.kind for r in rec.exits_of("a")] == ["normal"])
    assert sup.kill_child("a") is False  # ended: nothing to kill
    again = sup.start_child(rec.spec("b", worker, restart=sv.Restart.TRANSIENT, recycle=True))
    assert again == pid
    assert sup.kill_child("b") is True
    wait_until(lambda: [r.kind for r in rec.exits_of("b")] == ["killed"])
    wait_until(lambda: sup.pid_of("b") not in (None, pid))  # restarted in a new process
    rec.ping("b", 2)


def _spawn_recyclable(
    hub: Hub,
    ref: str,
    *,
    on_exit: Callable[[int, sv.ExitReason, Proc | None], None],
    on_message: Callable[[Any], None] | None = None,
    arm: bool = False,
) -> Proc:
    """A recyclable process child of ``ref`` started through the hub (``arm``: restarted speculatively)."""
    return hub.spawn(
        ref,
        [],
        on_start=None,
        on_message=on_message,
        trap_exit=False,
        timeout=10,
        arm=arm,
        recycle=True,
        on_exit=on_exit,
    )


@pytest.mark.timeout(60)
def test_a_spare_that_returned_before_adoption_leaves_the_next_incarnation_of_its_pid_alone() -> None:
    """A speculative replacement (a spare) that returns normally before its owner decides is recycled at once and
    may host the next child of its target; adopting the spare then (its held exit is finished) must not take the
    record of that later child, whose messages and exit must still arrive."""
    zygote = sv.Zygote.start(warm_pool=1)
    hub = zygote.hub
    spares: dict[int, Proc | None] = {}
    ref = target_ref(worker)
    try:

        def crash_with_a_spare() -> Proc | None:
            first = _spawn_recyclable(
                hub, ref, on_exit=lambda pid, _reason, spare: spares.__setitem__(pid, spare), arm=True
            )
            first.channel.send(["exit", 3])
            assert first.exited.wait(10)
            return spares[first.pid]  # None when the pool had no host ready yet: try again

        spare = wait_until(crash_with_a_spare, timeout=30)
        assert spare.provisional
        spare.channel.send(["return"])  # it returns normally while provisional: its exit is held
        wait_until(lambda: spare.held is not None)
        later_messages: list[Any] = []
        later_exits: list[sv.ExitReason] = []
        later = _spawn_recyclable(
            hub, ref, on_message=later_messages.append, on_exit=lambda _pid, reason, _spare: later_exits.append(reason)
        )
        assert later.pid == spare.pid  # the spare's host, recycled
        adopted_exits: list[sv.ExitReason] = []
        assert hub.adopt(
            spare,
            on_start=None,
            on_message=None,
            on_exit=lambda _pid, reason, _spare: adopted_exits.append(reason),
        )
        assert [r.kind for r in adopted_exits] == ["normal"]
        assert hub.proc(later.pid) is later
        later.channel.send(["ping", "later"])
        wait_until(lambda: ["pong", "later"] in later_messages)
        later.channel.send(["return"])
        wait_until(lambda: later_exits)
        assert [r.kind for r in later_exits] == ["normal"]
    finally:
        zygote.stop()


@pytest.mark.timeout(60)
def test_a_spawn_that_timed_out_never_starts_a_child_behind_its_callers_back() -> None:
    """``spawn`` gave up waiting (SpawnError): when the zygote's answer comes later, the process it started has no
    owner. It must not be given to ``on_start`` nor kept: its caller was told it does not exist."""
    zygote = sv.Zygote.start()
    hub = zygote.hub
    gate = threading.Event()
    started: list[int] = []
    try:
        hub._post(lambda: gate.wait(30))  # the hub thread is busy: the zygote's answer waits in the socket
        with pytest.raises(sv.SpawnError):
            hub.spawn(
                target_ref(worker),
                [],
                on_start=lambda pid, _ch: started.append(pid),
                on_message=None,
                on_exit=None,
                trap_exit=False,
                timeout=0.2,
            )
        orphan = wait_until(lambda: psutil.Process(zygote.pid).children(), timeout=10)[0].pid
        gate.set()
        after = zygote.spawn(worker)  # answered after the late one: the hub has handled both
        assert started == []
        assert hub.pids() == [after]
        assert hub._pending == {}
        wait_until(lambda: is_gone(orphan))
    finally:
        gate.set()
        zygote.stop()


@pytest.mark.timeout(60)
def test_a_speculative_restart_takes_an_idle_recycled_host_of_the_same_target() -> None:
    """The replacement of an armed child that crashed is a recycled host of its target when one is idle (its code
    is warm), even with no pool host at all."""
    zygote = sv.Zygote.start(warm_pool=0)
    hub = zygote.hub
    ref = target_ref(worker)
    spares: dict[int, Proc | None] = {}
    exits: list[sv.ExitReason] = []
    try:
        first = _spawn_recyclable(
            hub, ref, on_exit=lambda pid, _reason, spare: spares.__setitem__(pid, spare), arm=True
        )
        other = _spawn_recyclable(hub, ref, on_exit=lambda _pid, reason, _spare: exits.append(reason))
        other.channel.send(["return"])  # its host is kept, idle, for the next child of the target
        wait_until(lambda: [r.kind for r in exits] == ["normal"])
        first.channel.send(["exit", 3])
        assert first.exited.wait(10)
        spare = spares[first.pid]
        assert spare is not None and spare.pid == other.pid
        assert spare.provisional
        messages: list[Any] = []
        assert hub.adopt(spare, on_start=None, on_message=messages.append, on_exit=None)
        spare.channel.send(["ping", "again"])
        wait_until(lambda: ["pong", "again"] in messages)
    finally:
        zygote.stop()


@pytest.mark.timeout(60)
def test_idle_recycled_hosts_beyond_the_floor_exit_once_idle_long_enough_the_longest_idle_first() -> None:
    """After a burst, the recycled hosts a steady load does not need go: beyond `RECYCLED_IDLE_FLOOR` per target,
    a host idle for `RECYCLED_IDLE_SECONDS` exits, the longest idle first; a spawn takes the most recently idle."""
    zygote = sv.Zygote.start()
    try:
        children = [_Child(zygote, worker) for _ in range(RECYCLED_IDLE_FLOOR + 4)]  # all running at once
        for child in children:
            child.finish()  # in this order: the first finished has been idle the longest
        pids = [child.pid for child in children]
        newest = _Child(zygote, worker)
        assert newest.pid == pids[-1]  # the most recently idle host is handed the next child
        newest.finish()
        wait_until(lambda: sum(is_gone(pid) for pid in pids) == 4, timeout=30)
        assert all(is_gone(pid) for pid in pids[:4])
        assert not any(is_gone(pid) for pid in pids[4:])
        again = _Child(zygote, worker)  # the survivors still host children
        again.ping("still")
        assert again.pid in pids[4:]
    finally:
        zygote.stop()
