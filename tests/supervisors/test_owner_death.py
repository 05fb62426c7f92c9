"""Children die with their owner, even when it is killed with SIGKILL: no child, zygote or pool host remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

import supervisors as sv
from tests.conftest import live_descendants
from tests.helpers import is_gone

from .helpers import wait_until
from .targets import worker

SCRIPT = Path(__file__).with_name("owner_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _start_owner(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the owner script died before reporting its pids"
    return proc, json.loads(line)


def test_sigkill_of_the_owner_takes_everything_down() -> None:
    proc, pids = _start_owner()
    everything = [pids["zygote"], *pids["children"], *pids["pool"], pids["nursery"]]
    assert len(pids["children"]) == 3
    assert len(pids["pool"]) == 3
    assert pids["nursery"] not in (0, pids["zygote"])
    assert all(not is_gone(pid) for pid in everything)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # the guarantee under test: within a second, nothing is left (orphans are reaped by this subreaper)
    wait_until(lambda: all(is_gone(pid) for pid in everything), timeout=1.0)
    wait_until(lambda: not live_descendants(), timeout=1.0)
    assert proc.stdout is not None
    proc.stdout.close()


def test_graceful_stop_of_a_script_leaves_nothing() -> None:
    proc, pids = _start_owner("graceful")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "stopped"
    assert proc.wait(timeout=10) == 0
    proc.stdout.close()
    everything = [pids["zygote"], *pids["children"], *pids["pool"], pids["nursery"]]
    wait_until(lambda: all(is_gone(pid) for pid in everything), timeout=5.0)


def test_sigkill_of_the_zygote_kills_its_children(zygote: sv.Zygote) -> None:
    exits: list[sv.ExitReason] = []
    pids = [zygote.spawn(worker, on_exit=lambda pid, r: exits.append(r)) for _ in range(3)]
    zproc = psutil.Process(zygote.pid)
    wait_until(lambda: len(zproc.children()) >= 6)  # 3 children + 2 pool hosts + the nursery
    hosts = [p.pid for p in zproc.children()]
    os.kill(zygote.pid, signal.SIGKILL)
    wait_until(lambda: len(exits) == 3)
    assert all(r.kind == "killed" for r in exits)
    wait_until(lambda: all(is_gone(pid) for pid in pids + hosts), timeout=2.0)
    assert not zygote.alive
    try:
        zygote.spawn(worker)
    except sv.SpawnError as exc:
        assert "zygote" in str(exc)
    else:
        raise AssertionError("spawn on a dead zygote must fail")


def test_zygote_stop_reaps_everything() -> None:
    z = sv.Zygote.start(warm_pool=2)
    pids = [z.spawn(worker) for _ in range(2)]
    z.stop()
    assert not z.alive
    assert all(is_gone(pid) for pid in [*pids, z.pid])
    assert live_descendants() == []
