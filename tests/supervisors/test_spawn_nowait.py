"""Spawns nobody waits for: `Supervisor.start_child_nowait` asks the zygote for a process child and goes on to
its next message, whatever needs the child waits for its spawn's answer, `Hub.spawn_nowait` tickets time out,
and a burst of spawns takes the hosts whose targets returned instead of forking new processes.

The zygote is frozen (``SIGSTOP``) to hold a spawn's answer back for as long as a test needs it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pykka
import pytest

import supervisors as sv
from supervisors._specs import target_ref
from supervisors._tickets import SpawnTicket
from tests.helpers import is_gone

from .helpers import Recorder, wait_until
from .targets import crash_n_times, worker

StartSup = Callable[[sv.SupervisorSpec], sv.Supervisor]


@contextlib.contextmanager
def frozen(zygote: sv.Zygote) -> Iterator[Callable[[], None]]:
    """Stop the zygote's process until the block ends or the yielded ``thaw()`` is called (its children run
    on: only the zygote's answers are held back)."""
    os.kill(zygote.pid, signal.SIGSTOP)
    thawed = False

    def thaw() -> None:
        nonlocal thawed
        if not thawed:
            thawed = True
            os.kill(zygote.pid, signal.SIGCONT)

    try:
        yield thaw
    finally:
        thaw()


class _Idle(pykka.ThreadingActor):
    """An actor child that does nothing."""


@pytest.mark.timeout(60)
def test_a_spawn_on_its_way_does_not_hold_up_its_supervisor(zygote: sv.Zygote, start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    errors: list[BaseException] = []
    with frozen(zygote) as thaw:
        sup.start_child_nowait(rec.spec("p", worker), on_error=lambda _c, e: errors.append(e))
        # The zygote cannot answer; a supervisor waiting for it could not start this child until the spawn timed
        # out (10 s).
        started = threading.Event()
        threading.Thread(
            target=lambda: (sup.start_child(sv.ActorSpec(id="a", actor_class=_Idle)), started.set())
        ).start()
        assert started.wait(8)
        assert rec.starts == []
        thaw()
        wait_until(lambda: [child for child, _ in rec.starts] == ["p"], timeout=20)
    rec.ping("p", 1)
    assert {info.id for info in sup.which_children()} == {"p", "a"}
    assert errors == []


@pytest.mark.timeout(60)
def test_what_needs_a_child_being_started_waits_for_its_spawn(zygote: sv.Zygote, start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    reasons: list[sv.ExitReason | None] = []
    with frozen(zygote) as thaw:
        sup.start_child_nowait(rec.spec("p", worker), on_error=None)
        stopper = threading.Thread(target=lambda: reasons.append(sup.terminate_child("p")))
        stopper.start()
        thaw()
        stopper.join(30)
    assert not stopper.is_alive()
    ((child_id, pid),) = rec.starts
    assert child_id == "p"
    assert reasons and reasons[0] is not None and reasons[0].kind == "shutdown"
    wait_until(lambda: is_gone(pid), timeout=20)
    assert sup.which_children() == []  # a dynamic child, terminated: removed


@pytest.mark.timeout(60)
def test_the_same_id_cannot_be_started_while_its_spawn_is_on_its_way(zygote: sv.Zygote, start_sup: StartSup) -> None:
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    failed: list[BaseException] = []
    with frozen(zygote):
        sup.start_child_nowait(rec.spec("p", worker), on_error=lambda _c, e: failed.append(e))
        sup.start_child_nowait(rec.spec("p", worker), on_error=lambda _c, e: failed.append(e))
        wait_until(lambda: failed, timeout=20)
    assert isinstance(failed[0], sv.SupervisorError) and "already has a child 'p'" in str(failed[0])
    wait_until(lambda: len(rec.starts) == 1, timeout=20)
    assert [info.id for info in sup.which_children()] == ["p"]
    assert len(failed) == 1


@pytest.mark.timeout(60)
def test_a_ticket_the_zygote_does_not_answer_in_time_fails_and_its_late_process_is_ended() -> None:
    zygote = sv.Zygote.start(warm_pool=0)  # no pool hosts: every child of the zygote is one it was asked for
    try:
        answered: list[SpawnTicket] = []
        started: list[int] = []
        with frozen(zygote):
            ticket = zygote.hub.spawn_nowait(
                target_ref(worker),
                [],
                on_start=lambda pid, _channel: started.append(pid),
                on_message=None,
                on_exit=None,
                on_done=answered.append,
                trap_exit=False,
                timeout=0.5,
            )
            assert ticket is not None
            assert ticket.done.wait(20)
            assert answered == [ticket]
            assert ticket.proc is None
            assert ticket.error is not None and "did not start" in ticket.error and "within 0.5s" in ticket.error
        # Thawed, the zygote starts the process after all. The zygote and the hub take requests and answers in
        # order, so once a later spawn is answered, the hub has seen the late one: nobody owns it, it is ended.
        later = zygote.spawn(worker)
        wait_until(lambda: {child.pid for child in psutil.Process(zygote.pid).children()} == {later}, timeout=20)
        assert started == []
    finally:
        zygote.stop()


@pytest.mark.timeout(60)
def test_a_burst_of_spawns_takes_the_hosts_whose_targets_returned(zygote: sv.Zygote) -> None:
    hub = zygote.hub
    exits: list[tuple[int, sv.ExitReason]] = []
    hosts = [
        zygote.spawn(worker, on_exit=lambda pid, reason: exits.append((pid, reason)), recycle=True) for _ in range(3)
    ]
    tickets: list[SpawnTicket] = []
    with frozen(zygote):
        for _ in hosts:  # asked first: the zygote, thawed, finds its control socket ready before the hosts'
            ticket = hub.spawn_nowait(
                target_ref(worker),
                [],
                on_start=None,
                on_message=None,
                on_exit=None,
                on_done=lambda _ticket: None,
                trap_exit=False,
                timeout=30.0,
                recycle=True,
            )
            assert ticket is not None
            tickets.append(ticket)
        for pid in hosts:
            proc = hub.proc(pid)
            assert proc is not None
            proc.channel.send(["return"])
        # Each host's target returned (the hub read the end of its channel), then it said "done" to the zygote
        # and waits for its next target: asleep in that read.
        for pid in hosts:
            wait_until(lambda pid=pid: not _registered(hub, pid), timeout=20)
            wait_until(lambda pid=pid: psutil.Process(pid).status() == psutil.STATUS_SLEEPING, timeout=20)
    for ticket in tickets:
        assert ticket.done.wait(20)
    assert sorted(ticket.proc.pid for ticket in tickets if ticket.proc is not None) == sorted(hosts)
    wait_until(lambda: len(exits) == 3, timeout=20)
    assert all(reason.kind == "normal" for _, reason in exits)
    for ticket in tickets:
        assert ticket.proc is not None
        ticket.proc.channel.send(["return"])


def _registered(hub: Any, pid: int) -> bool:
    proc = hub.proc(pid)
    return proc is not None and proc.registered


@pytest.mark.timeout(60)
def test_a_child_started_without_waiting_is_dated_by_its_spawn_not_by_the_first_look_at_it(
    zygote: sv.Zygote, start_sup: StartSup
) -> None:
    # A successful spawn is not told to the supervisor: the answer is taken when something needs the child. The
    # child's start is still the answer's time.
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    sup.start_child_nowait(rec.spec("p", worker), on_error=None)
    wait_until(lambda: rec.starts, timeout=20)
    running_since = time.time()
    time.sleep(0.5)  # time passing is what is looked at, not a condition waited for
    (node,) = sup.tree()["children"]
    assert node["id"] == "p" and node["state"] == "running"
    assert node["uptime"] >= 0.5
    assert node["started_at"] <= running_since


@pytest.mark.timeout(60)
def test_a_crash_of_a_child_nothing_looked_at_is_restarted(
    zygote: sv.Zygote, start_sup: StartSup, tmp_path: Path
) -> None:
    # Its exit is the first thing that needs the child: the supervisor takes the spawn's answer there, then
    # restarts it as it would any child.
    rec = Recorder()
    sup = start_sup(sv.SupervisorSpec(id="root"))
    counter = tmp_path / "runs"
    sup.start_child_nowait(rec.spec("p", crash_n_times, str(counter), 1, restart=sv.Restart.TRANSIENT), on_error=None)
    wait_until(lambda: len(rec.starts) == 2, timeout=20)
    (crash,) = rec.exits_of("p")
    assert crash.kind == "exception" and "crash 1" in str(crash)
    rec.ping("p", 1)
    (info,) = sup.which_children()
    assert info.restarts == 1 and info.state == "running" and info.pid == rec.starts[1][1]
