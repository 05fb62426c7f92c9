"""Recyclable process children under load: many started at once under one supervisor (as the engine starts its
workflow processes), finishing, crashing and exiting concurrently, with a small cap on idle recycled hosts and on
the runs one host may serve, so that hosts are recycled, retired and worn out all the time. Every child must run
once on its own channel, and every exit must reach its supervisor."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import supervisors as sv
from supervisors import _pool, _process

from .helpers import wait_until
from .targets import serve_once

CHILDREN = 300
IDLE_CAP = 3
RUNS_CAP = 3


@pytest.fixture(params=[0, 2], ids=["cold-fork", "warm-pool"])
def small_caps_zygote(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[sv.Zygote]:
    """A zygote (forked after the patch, so it and its children see it) with small recycling caps."""
    monkeypatch.setattr(_pool, "MAX_RECYCLED_IDLE", IDLE_CAP)
    monkeypatch.setattr(_process, "MAX_RUNS_PER_HOST", RUNS_CAP)
    zygote = sv.Zygote.start(warm_pool=request.param)
    try:
        yield zygote
    finally:
        zygote.stop()


class _Runs:
    """What the children did, by child id: the engine's core, reduced to its dealings with processes."""

    def __init__(self, fates: dict[str, list[str]]) -> None:
        self.lock = threading.Lock()
        self.fates = fates  # what each incarnation of a child is told after its ack, in turn
        self.starts: Counter[str] = Counter()
        self.acks: dict[str, list[tuple[int, int]]] = {}  # child id -> (pid, run of that process) per ack
        self.exits: dict[str, list[str]] = {}
        self.wrong: list[Any] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.channels: dict[str, sv.OwnerChannel] = {}

    def on_start(self, child_id: str, pid: int, channel: sv.OwnerChannel) -> None:
        with self.lock:
            self.starts[child_id] += 1
            self.channels[child_id] = channel
        with contextlib.suppress(sv.ChannelClosedError):  # it died already: its exit is on its way
            channel.send(["run", child_id])

    def on_message(self, child_id: str, msg: Any) -> None:
        with self.lock:
            if msg[0] != "ack" or msg[1] != child_id:
                self.wrong.append((child_id, msg))
                return
            self.acks.setdefault(child_id, []).append((msg[2], msg[3]))
            fates = self.fates[child_id]
            fate = fates.pop(0) if fates else "end"
            channel = self.channels[child_id]
        with contextlib.suppress(sv.ChannelClosedError):
            channel.send(fate)

    def on_exit(self, child_id: str, reason: sv.ExitReason) -> None:
        with self.lock:
            self.exits.setdefault(child_id, []).append(reason.kind)

    def on_error(self, child_id: str, error: BaseException) -> None:
        with self.lock:
            self.errors.append((child_id, error))

    def finished(self) -> int:
        with self.lock:
            return sum("normal" in kinds for kinds in self.exits.values())

    def spec(self, child_id: str) -> sv.ProcessSpec:
        return sv.ProcessSpec(
            id=child_id,
            target=serve_once,
            args=(child_id,),
            recycle=True,
            restart=sv.Restart.TRANSIENT,
            on_start=self.on_start,
            on_message=self.on_message,
            on_exit=self.on_exit,
        )


def _idle_hosts(zygote: sv.Zygote) -> set[int]:
    """The zygote's live child processes that host no child: pool hosts, recycled hosts, retired ones exiting."""
    hub = zygote.hub
    busy = set(hub.pids()) | {hub.nursery_pid}
    idle = set()
    for proc in psutil.Process(zygote.pid).children():
        try:
            if proc.pid not in busy and proc.status() != psutil.STATUS_ZOMBIE:
                idle.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return idle


@pytest.mark.timeout(60)
def test_many_recyclable_children_started_at_once_each_run_once_and_exit(small_caps_zygote: sv.Zygote) -> None:
    zygote = small_caps_zygote
    ids = [f"c{index}" for index in range(CHILDREN)]
    # Most return normally at once; some crash or exit abnormally first (restarted, speculatively when the pool
    # has a host), so that recycled hosts, pool hosts and forks are all in play together.
    fates = {cid: (["crash"] if i % 7 == 3 else ["exit"] if i % 11 == 5 else []) for i, cid in enumerate(ids)}
    runs = _Runs(fates)
    sup = sv.Supervisor.start(sv.SupervisorSpec(id="stress", max_restarts=None), zygote=zygote)
    try:
        for cid in ids:
            sup.start_child_nowait(runs.spec(cid), on_error=runs.on_error)
        wait_until(lambda: runs.finished() == CHILDREN or runs.errors or runs.wrong, timeout=40, interval=0.01)
        with runs.lock:
            assert runs.errors == []
            assert runs.wrong == []
            unfinished = {cid: (runs.starts[cid], runs.acks.get(cid), runs.exits.get(cid)) for cid in ids}
            unfinished = {cid: v for cid, v in unfinished.items() if "normal" not in (v[2] or [])}
            assert unfinished == {}
            for cid in ids:
                # One start per incarnation; each incarnation acked once (none started on a stale channel).
                assert runs.starts[cid] == len(runs.exits[cid]) == len(runs.acks[cid])
                assert runs.exits[cid][-1] == "normal"
                assert runs.exits[cid].count("normal") == 1
            served = [n for acks in runs.acks.values() for _pid, n in acks]
        assert max(served) <= RUNS_CAP
        assert max(served) > 1  # processes were recycled
        wait_until(lambda: sup.which_children() == [])
        assert zygote.pids() == []
        assert zygote.hub._pending == {}
        # Idle hosts beyond the cap were told to exit: they go away, the pool and IDLE_CAP recycled hosts stay.
        wait_until(lambda: len(_idle_hosts(zygote)) <= IDLE_CAP + zygote.warm_pool)
    finally:
        sup.stop(timeout=30)
