"""A process child's channel is made by the zygote (a fresh pair for a fork, the pair a pool or recycled host was
made with for a hand-off) and its owner's end handed to the engine with ``spawned``: it carries frames both ways,
large messages included, and is not inherited by programs the engine runs."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import supervisors as sv

from .helpers import wait_until
from .targets import worker


@pytest.fixture(params=[0, 2], ids=["cold-fork", "warm-pool"])
def zygote(request: pytest.FixtureRequest) -> Iterator[sv.Zygote]:
    z = sv.Zygote.start(warm_pool=request.param)
    try:
        yield z
    finally:
        z.stop()


def _round_trip(zygote: sv.Zygote, *, recycle: bool) -> tuple[int, sv.ExitReason]:
    """Spawn `worker`, echo a small and a large message through its channel, make it return; its pid and exit."""
    messages: list[Any] = []
    exits: list[sv.ExitReason] = []
    exited = threading.Event()

    def on_exit(_pid: int, reason: sv.ExitReason) -> None:
        exits.append(reason)
        exited.set()

    pid = zygote.spawn(worker, on_message=messages.append, on_exit=on_exit, recycle=recycle)
    channel = zygote.channel(pid)
    assert channel is not None
    assert not os.get_inheritable(channel.fileno())
    assert channel._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 1 << 20
    big = "x" * (3 << 20)  # larger than both socket buffers: read in many recv calls
    channel.send(["ping", 1])
    channel.send(["echo", big])
    wait_until(lambda: len(messages) == 2, timeout=20)
    assert messages == [["pong", 1], ["echo", big]]
    channel.send(["return"])
    assert exited.wait(10)
    return pid, exits[0]


@pytest.mark.timeout(60)
def test_channels_from_the_zygote_carry_frames_both_ways(zygote: sv.Zygote) -> None:
    for _ in range(3):
        _, reason = _round_trip(zygote, recycle=False)
        assert reason.kind == "normal"


@pytest.mark.timeout(60)
def test_a_recycled_host_runs_the_next_child_on_the_channel_it_made(zygote: sv.Zygote) -> None:
    first, _ = _round_trip(zygote, recycle=True)
    pids = {first}
    for _ in range(3):
        pid, reason = _round_trip(zygote, recycle=True)
        assert reason.kind == "normal"
        pids.add(pid)
    assert pids == {first}  # each child after the first was handed to the recycled process


@pytest.mark.timeout(60)
def test_a_spawn_error_still_reports_the_target_and_leaves_no_channel(zygote: sv.Zygote) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(sv.SpawnError, match="no_such_module"):
            zygote.spawn("no_such_module:target")
    assert len(os.listdir("/proc/self/fd")) <= before
    _round_trip(zygote, recycle=False)
