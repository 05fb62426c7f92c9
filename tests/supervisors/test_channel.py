"""The msgpack channel between a process child and its owner."""

from __future__ import annotations

import fcntl
import os
import resource
import socket
import threading
from typing import Any

import pytest

import supervisors as sv

from .helpers import wait_until
from .targets import chatter, echo_all, recv_timeout


class Owner:
    def __init__(self, zygote: sv.Zygote, target: Any, *args: Any) -> None:
        self.messages: list[Any] = []
        self.exits: list[sv.ExitReason] = []
        self.channel: sv.OwnerChannel | None = None
        self.pid = zygote.spawn(
            target,
            args,
            on_start=lambda pid, ch: setattr(self, "channel", ch),
            on_message=self.messages.append,
            on_exit=lambda pid, r: self.exits.append(r),
        )
        assert self.channel is not None  # on_start ran before spawn returned


def test_round_trip_of_msgpack_types(zygote: sv.Zygote) -> None:
    o = Owner(zygote, echo_all)
    assert o.channel is not None and o.channel.pid == o.pid
    values: list[Any] = [None, True, 3, -(2**40), 1.5, "héllo", b"\x00\xff", [1, [2, "x"]], {"k": {"n": [1]}}, {1: 2}]
    for v in values:
        o.channel.send(v)
    big = b"x" * (3 << 20)
    o.channel.send(big)
    wait_until(lambda: len(o.messages) == len(values) + 1)
    assert o.messages[:-1] == values
    assert o.messages[-1] == big


def test_concurrent_sends_both_ways(zygote: sv.Zygote) -> None:
    o = Owner(zygote, chatter, 4, 500)
    wait_until(lambda: "done" in o.messages)
    frames = [m for m in o.messages if m != "done"]
    assert len(frames) == 2000
    for t in range(4):
        assert [i for tt, i in frames if tt == t] == list(range(500))  # per-thread order kept
    o.channel.send("bye")  # type: ignore[union-attr]
    wait_until(lambda: o.exits)
    assert o.exits[0].kind == "normal"

    e = Owner(zygote, echo_all)
    assert e.channel is not None

    def blast(t: int) -> None:
        for i in range(300):
            e.channel.send([t, i])  # type: ignore[union-attr]

    threads = [threading.Thread(target=blast, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wait_until(lambda: len(e.messages) == 1200)
    for t in range(4):
        assert [i for tt, i in e.messages if tt == t] == list(range(300))


def test_recv_timeout_poll_and_eof(zygote: sv.Zygote) -> None:
    o = Owner(zygote, recv_timeout)
    wait_until(lambda: "go" in o.messages)
    assert o.messages[:3] == ["timeout", ["poll", False], "go"]
    o.channel.send({"x": 1})  # type: ignore[union-attr]
    wait_until(lambda: len(o.messages) == 5)
    assert o.messages[3:] == [["poll", True], ["got", {"x": 1}]]
    assert o.exits == []


def test_send_to_dead_child_raises(zygote: sv.Zygote) -> None:
    o = Owner(zygote, echo_all)
    o.channel.send(["a"])  # type: ignore[union-attr]
    zygote.terminate(o.pid, kill=True)
    assert o.exits[0].kind == "shutdown"
    assert o.channel is not None and o.channel.closed
    try:
        o.channel.send("late")
    except sv.ChannelClosedError:
        pass
    else:
        raise AssertionError("send after exit must raise ChannelClosedError")


def test_cold_fork_without_pool() -> None:
    z = sv.Zygote.start(warm_pool=0, preload=["json"])
    try:
        o = Owner(z, echo_all)
        o.channel.send("hi")  # type: ignore[union-attr]
        wait_until(lambda: o.messages == ["hi"])
    finally:
        z.stop()


def test_preload_failure_is_reported() -> None:
    try:
        sv.Zygote.start(preload=["no_such_module_for_the_zygote"])
    except sv.ZygoteError as exc:
        assert "no_such_module_for_the_zygote" in str(exc)
    else:
        raise AssertionError("expected ZygoteError")


def test_a_channel_on_a_descriptor_above_1023_waits_like_any_other() -> None:
    """A process that holds many descriptors gets a channel numbered 1024 or more (select() cannot wait on it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} leaves no descriptor above 1023")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    high = fcntl.fcntl(b.fileno(), fcntl.F_DUPFD_CLOEXEC, 1100)  # the lowest free one from 1100 up
    b.close()
    channel = sv.Channel(socket.socket(fileno=high))
    owner = sv.OwnerChannel(a)
    try:
        assert channel.fileno() > 1023
        assert channel.poll(0.0) is False
        with pytest.raises(TimeoutError):
            channel.recv(timeout=0.01)
        owner.send(["hello", 1])
        assert channel.poll(5.0) is True
        assert channel.recv(timeout=5.0) == ["hello", 1]
        owner.close()
        with pytest.raises(sv.ChannelClosedError):
            channel.recv(timeout=5.0)
    finally:
        channel.close()
        owner.close()
        if soft != resource.RLIM_INFINITY and soft < 1200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(30)
def test_recv_without_a_timeout_waits_for_the_owner_even_on_a_non_blocking_descriptor() -> None:
    """``recv()`` without a timeout waits in the read itself; a descriptor left non-blocking (its flags are
    shared by every copy of it) must make it wait all the same, not raise ``BlockingIOError``."""
    for blocking in (True, False):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        os.set_blocking(b.fileno(), blocking)
        channel = sv.Channel(socket.socket(fileno=b.detach()))
        owner = sv.OwnerChannel(a)
        try:
            later = threading.Timer(0.05, owner.send, args=(["late", blocking],))
            later.start()
            assert channel.recv() == ["late", blocking]
            later.join()
            owner.close()
            with pytest.raises(sv.ChannelClosedError):
                channel.recv()
        finally:
            channel.close()
            owner.close()
