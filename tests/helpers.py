"""Helpers for every test: waiting on a condition with a deadline (never sleep-and-hope), stopping the process
trees of the commands a test started, and a recorder commit sink that keeps what it was handed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.002) -> Any:
    """Poll ``pred`` until it returns something truthy, and return it; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {pred}")
        time.sleep(interval)


class RecordingSink:
    """A recorder commit sink (``RecorderHandle.append_to``) for tests: keeps every delivery (one list of outcomes
    per committed transaction, in order) and wakes whoever waits for them."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self._cond = threading.Condition()

    def __call__(self, batch: list[Any]) -> None:
        with self._cond:
            self.calls.append(list(batch))
            self._cond.notify_all()

    def wait_for(self, outcomes: int) -> list[Any]:
        """Every outcome delivered, once there are at least ``outcomes`` (failing the test after 10 s)."""
        with self._cond:
            assert self._cond.wait_for(lambda: sum(map(len, self.calls)) >= outcomes, timeout=10)
            return [outcome for call in self.calls for outcome in call]

    def tokens(self) -> list[Any]:
        """The tokens of every outcome delivered so far, in order."""
        return [token for call in self.token_calls() for token in call]

    def token_calls(self) -> list[list[Any]]:
        """The tokens of each delivery so far (one list per committed transaction)."""
        with self._cond:
            return [[outcome[0] for outcome in call] for call in self.calls]


def stop_process_group(proc: subprocess.Popen[Any], timeout: float, dump: signal.Signals | None = None) -> int:
    """SIGTERM ``proc``, then wait for a clean exit; SIGKILL its group if it does not come in ``timeout`` s
    (after sending ``dump``, when given: a signal that makes it write its threads' stacks where it logs)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if dump is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(dump)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
            kill_process_group(proc)
    return proc.wait()


def kill_process_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s whole process group and every descendant (an engine, its zygote, its workflow and
    activity processes), and reap them."""
    group = [proc.pid] + [p.pid for p in descendants(proc.pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in group:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    psutil.wait_procs([p for p in map(process_or_none, group) if p is not None], timeout=10)


def is_gone(pid: int) -> bool:
    """True when no process runs as ``pid``: it has exited (a zombie not reaped yet counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def process_or_none(pid: int) -> psutil.Process | None:
    """The live process ``pid``, or None."""
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (none if it is gone)."""
    proc = process_or_none(pid)
    if proc is None:
        return []
    with contextlib.suppress(psutil.NoSuchProcess):
        return list(proc.children(recursive=True))
    return []
