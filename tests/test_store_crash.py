"""Crash safety: SIGKILL a process appending through the recorder; every acknowledged append survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from aion.events import TimerStarted, WorkflowStarted
from aion.store import TIMER, open_store

REPO = Path(__file__).resolve().parents[1]
THREADS = 8
ROUNDS = 5


def _acks(path: Path) -> list[tuple[str, int]]:
    """Complete ack lines written so far (a line cut by the kill is ignored: it was never acknowledged)."""
    if not path.exists():
        return []
    acks = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n"):
            workflow_id, seq = line.split()
            acks.append((workflow_id, int(seq)))
    return acks


def _wait_for(condition: object, deadline: float, child: subprocess.Popen[bytes]) -> None:
    assert callable(condition)
    while not condition():
        if child.poll() is not None:
            raise AssertionError(f"the writer exited early with {child.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the writer's acknowledgements")
        time.sleep(0.01)


@pytest.mark.chaos
def test_sigkill_during_appends_loses_no_acknowledged_event(tmp_path: Path) -> None:
    data_dir, ack_file = tmp_path / "data", tmp_path / "acks.log"
    rng = random.Random(os.getpid())
    for round_ in range(ROUNDS):
        already = len(_acks(ack_file))
        target = already + rng.randint(5, 400)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_writer", str(data_dir), str(ack_file), str(THREADS)],
            cwd=REPO,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for(lambda: len(_acks(ack_file)) >= target, time.monotonic() + 60, child)  # noqa: B023
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            assert child.stderr is not None
            errors = child.stderr.read().decode()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL, errors

        acked: dict[str, int] = defaultdict(int)
        for workflow_id, seq in _acks(ack_file):
            acked[workflow_id] = max(acked[workflow_id], seq)
        assert len(_acks(ack_file)) >= target, f"round {round_}"
        with open_store(data_dir) as store:  # the writer lock of the killed process is free again
            for index in range(THREADS):
                workflow_id = f"wf-{index}"
                history = store.read_history(workflow_id)  # decodes every event: no torn event
                head = store.head(workflow_id)
                assert [event.seq for event in history] == list(range(1, head + 1)), "gapless from 1"
                assert head >= acked[workflow_id], f"{workflow_id}: acknowledged {acked[workflow_id]}, found {head}"
                if history:
                    assert isinstance(history[0], WorkflowStarted)
                    assert sum(isinstance(event, WorkflowStarted) for event in history) == 1
                run = store.get_run(workflow_id)
                assert run is None or run.head_seq == head
                # Derived timer rows agree with the history they came from.
                timers = {row.key for row in store.all_timers() if row.workflow_id == workflow_id}
                assert all(row.kind == TIMER for row in store.all_timers())
                assert timers == {event.timer_id for event in history if isinstance(event, TimerStarted)}
