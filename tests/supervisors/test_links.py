"""Links (exit propagation, trap_exit) and monitors (one Down with the right reason, demonitor)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

import supervisors as sv

from .helpers import wait_until
from .targets import worker


class Proc:
    """An unsupervised process child with its messages and exit recorded."""

    def __init__(self, zygote: sv.Zygote, trap_exit: bool = False) -> None:
        self.messages: list[Any] = []
        self.exits: list[sv.ExitReason] = []
        self.channel: sv.OwnerChannel | None = None
        self.pid = zygote.spawn(
            worker,
            on_start=self._started,
            on_message=self.messages.append,
            on_exit=lambda pid, reason: self.exits.append(reason),
            trap_exit=trap_exit,
        )

    def _started(self, pid: int, channel: sv.OwnerChannel) -> None:
        self.channel = channel

    def send(self, msg: Any) -> None:
        assert self.channel is not None
        self.channel.send(msg)

    def ask(self, msg: list[Any], reply: str) -> list[Any]:
        """Send a command and wait for the reply whose first element is ``reply``."""
        self.send(msg)
        return wait_until(lambda: next((m for m in self.messages if m[0] == reply), None))  # type: ignore[no-any-return]


class Downs:
    """A monitor callback collecting Down messages."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.downs: list[sv.Down] = []

    def __call__(self, down: sv.Down) -> None:
        with self.lock:
            self.downs.append(down)


@pytest.mark.parametrize(
    ("command", "kind"),
    [(None, "killed"), (["raise", "bad"], "exception"), (["exit", 7], "exit_code"), (["return"], "normal")],
)
def test_monitor_fires_once_with_the_reason(zygote: sv.Zygote, command: list[Any] | None, kind: str) -> None:
    p = Proc(zygote)
    downs = Downs()
    ref = zygote.monitor(p.pid, downs)
    ref2 = zygote.monitor(p.pid, downs)
    assert ref != ref2
    if command is None:
        os.kill(p.pid, signal.SIGKILL)
    else:
        p.send(command)
    wait_until(lambda: len(downs.downs) == 2 and p.exits)
    d1, d2 = sorted(downs.downs, key=lambda d: d.ref)
    assert (d1.ref, d1.pid) == (ref, p.pid)
    assert (d2.ref, d2.pid) == (ref2, p.pid)
    assert d1.reason == d2.reason == p.exits[0]
    assert d1.reason.kind == kind
    if kind == "killed":
        assert d1.reason.signal == "SIGKILL"
    elif kind == "exception":
        assert (d1.reason.exc_type, d1.reason.message) == ("ValueError", "bad")
    elif kind == "exit_code":
        assert d1.reason.exit_code == 7
    # fired: cannot be cancelled any more
    assert not zygote.demonitor(ref)


def test_demonitor_cancels(zygote: sv.Zygote) -> None:
    p = Proc(zygote)
    cancelled, kept = Downs(), Downs()
    ref = zygote.monitor(p.pid, cancelled)
    zygote.monitor(p.pid, kept)
    assert zygote.demonitor(ref)
    assert not zygote.demonitor(ref)
    os.kill(p.pid, signal.SIGKILL)
    wait_until(lambda: kept.downs)  # the hub delivers both monitors of a pid in one go
    assert cancelled.downs == []


def test_monitor_of_dead_pid_fires_at_once(zygote: sv.Zygote) -> None:
    p = Proc(zygote)
    p.send(["exit", 5])
    wait_until(lambda: p.exits)
    late = Downs()
    ref = zygote.monitor(p.pid, late)
    (down,) = late.downs
    assert down.ref == ref
    assert down.reason.kind == "exit_code"  # the hub still knows why it died
    never = Downs()
    zygote.monitor(1, never)  # not one of ours
    assert never.downs[0].reason.kind == "noproc"


def test_monitor_can_notify_a_pykka_actor(zygote: sv.Zygote) -> None:
    import pykka

    got: list[Any] = []

    class Watcher(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> None:
            got.append(message)

    ref = Watcher.start()
    try:
        p = Proc(zygote)
        zygote.monitor(p.pid, ref)
        os.kill(p.pid, signal.SIGKILL)
        wait_until(lambda: got)
        assert isinstance(got[0], sv.Down)
        assert got[0].pid == p.pid
    finally:
        ref.stop()


def test_link_propagates_abnormal_exit_both_ways(zygote: sv.Zygote) -> None:
    a, b = Proc(zygote), Proc(zygote)
    zygote.link(a.pid, b.pid)
    assert zygote.links(a.pid) == {b.pid}
    b.send(["raise", "b failed"])
    wait_until(lambda: a.exits and b.exits)
    assert b.exits[0].kind == "exception"
    assert a.exits[0].kind == "killed"
    assert a.exits[0].signal == "SIGKILL"
    assert f"linked process {b.pid}" in (a.exits[0].message or "")
    assert "b failed" in (a.exits[0].message or "")

    c, d = Proc(zygote), Proc(zygote)
    zygote.link(c.pid, d.pid)
    os.kill(c.pid, signal.SIGKILL)  # the other direction, another cause
    wait_until(lambda: d.exits)
    assert d.exits[0].kind == "killed"


def test_normal_exit_does_not_propagate(zygote: sv.Zygote) -> None:
    a, b = Proc(zygote), Proc(zygote)
    zygote.link(a.pid, b.pid)
    a.send(["return"])
    wait_until(lambda: a.exits)
    b.ask(["ping", 1], "pong")  # still alive and serving
    assert b.exits == []
    assert zygote.links(b.pid) == set()


def test_trap_exit_receives_exit_signal_as_message(zygote: sv.Zygote) -> None:
    a = Proc(zygote)
    b = Proc(zygote, trap_exit=True)
    zygote.link(a.pid, b.pid)
    os.kill(a.pid, signal.SIGKILL)
    msg = b.ask(["ping", 1], "exit_signal")
    assert msg[1] == a.pid
    assert msg[2]["kind"] == "killed"
    assert msg[2]["signal"] == "SIGKILL"
    b.ask(["ping", 2], "pong")
    assert b.exits == []


def test_child_side_link_trap_exit_and_monitor(zygote: sv.Zygote) -> None:
    a, b, c = Proc(zygote), Proc(zygote), Proc(zygote)
    b.ask(["trap_exit", True], "trapping")
    b.ask(["link", a.pid], "linked")
    mref = c.ask(["monitor", a.pid], "monitoring")[1]
    assert zygote.links(a.pid) == {b.pid}
    a.send(["raise", "a failed"])
    exit_signal = b.ask(["ping", 1], "exit_signal")
    assert exit_signal[1] == a.pid
    assert exit_signal[2]["kind"] == "exception"
    down = c.ask(["ping", 1], "down")
    assert down[1:3] == [mref, a.pid]
    assert down[3]["message"] == "a failed"
    assert b.exits == [] and c.exits == []


def test_child_side_link_to_dead_pid_is_noproc(zygote: sv.Zygote) -> None:
    a = Proc(zygote)
    a.send(["exit", 0])
    wait_until(lambda: a.exits)
    b = Proc(zygote)
    b.ask(["trap_exit", True], "trapping")
    b.send(["link", a.pid])
    msg = b.ask(["ping", 1], "exit_signal")
    assert msg[2]["kind"] == "noproc"


def test_linked_supervised_children_are_restarted(zygote: sv.Zygote) -> None:
    from .helpers import Recorder, children_by_id

    rec = Recorder()
    sup = sv.Supervisor.start(
        sv.SupervisorSpec(id="s", children=[rec.spec("a", worker), rec.spec("b", worker)]), zygote=zygote
    )
    try:
        before = children_by_id(sup)
        assert before["a"].pid and before["b"].pid
        zygote.link(before["a"].pid, before["b"].pid)
        os.kill(before["a"].pid, signal.SIGKILL)
        wait_until(lambda: all(c.restarts == 1 and c.state == "running" for c in sup.which_children()))
        assert rec.exits_of("b")[0].kind == "killed"
        assert "linked process" in (rec.exits_of("b")[0].message or "")
    finally:
        sup.stop()
