"""Everything an activity starts dies with its worker and with the engine, even on SIGKILL of the engine: a
``sleep`` child and a double-forked daemon; leftovers of an engine killed together with its zygote are killed by
the next engine before the activity is retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import aion
from tests.engine import orphan_flows
from tests.engine.helpers import REPO
from tests.helpers import wait_until


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (zombies adopted by the test process, a subreaper, are reaped first)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pids(pid_dir: Path, attempt: int) -> list[int]:
    return [int(p) for p in (pid_dir / f"{attempt}.pids").read_text().split()]


def _engine(data: Path, pid_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.orphan_engine_proc", str(data), str(pid_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.timeout(120)
def test_what_an_activity_started_dies_with_a_sigkilled_engine(tmp_path: Path) -> None:
    data, pid_dir = tmp_path / "data", tmp_path / "pids"
    pid_dir.mkdir()
    engine = _engine(data, pid_dir)
    try:
        worker, sleeper, daemon = _pids(pid_dir, 1)
        assert _alive(sleeper)
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        wait_until(lambda: not any(_alive(pid) for pid in (worker, sleeper, daemon)), timeout=30)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()


@pytest.mark.timeout(120)
def test_what_an_activity_started_dies_with_its_worker(tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    with aion.Engine(
        tmp_path / "data",
        workflows=[orphan_flows.runs_leaver],
        activities=[orphan_flows.leaves_processes],
        activity_workers=1,
    ) as engine:
        engine.start_workflow(orphan_flows.runs_leaver, str(pid_dir), workflow_id="leaver")
        wait_until((pid_dir / "1.pids").exists, timeout=60)
        worker, sleeper, daemon = _pids(pid_dir, 1)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: not any(_alive(pid) for pid in (sleeper, daemon)), timeout=30)
        wait_until((pid_dir / "2.pids").exists, timeout=60)  # the lost attempt is retried
        retried = _pids(pid_dir, 2)
    assert not any(_alive(pid) for pid in retried)  # and the engine's stop took the retry's processes along


@pytest.mark.timeout(120)
def test_leftovers_of_an_engine_killed_with_its_zygote_are_killed_before_the_retry(tmp_path: Path) -> None:
    data, pid_dir = tmp_path / "data", tmp_path / "pids"
    pid_dir.mkdir()
    engine = _engine(data, pid_dir)
    try:
        _worker, sleeper, daemon = _pids(pid_dir, 1)
        # A daemon (a session of its own) is killed by the live zygote, its subreaper, within its orphan scan.
        wait_until(lambda: not _alive(daemon), timeout=30)
        zygote = int((data / "zygote.session").read_text().split()[0])
        os.kill(zygote, signal.SIGKILL)  # both at once: nothing is left to clean up after them
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    assert _alive(sleeper)  # adopted by the test process (a subreaper): a leftover
    with aion.Engine(
        data, workflows=[orphan_flows.runs_leaver], activities=[orphan_flows.leaves_processes], activity_workers=1
    ):
        assert not _alive(sleeper)  # killed during start, before the activity was retried
        wait_until((pid_dir / "2.pids").exists, timeout=60)
