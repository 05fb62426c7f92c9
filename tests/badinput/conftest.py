"""The bad-input tests share one engine for the module (starting one per input would take minutes): the
suite's leak guard is narrowed to processes that are not that engine's."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import psutil
import pytest

from tests.conftest import live_descendants


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a process alive, other than the shared engine's (the descendants of the test
    process's children that were there before the test)."""
    engine = {proc.pid for proc in psutil.Process().children()}
    yield

    def ours(proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.NoSuchProcess):
            return proc.pid in engine or any(parent.pid in engine for parent in proc.parents())
        return True

    leaked = [proc for proc in live_descendants() if not ours(proc)]
    if leaked:
        _, still = psutil.wait_procs(leaked, timeout=3.0)
        still = [p for p in still if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for proc in still:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        if still:
            pytest.fail(f"test leaked {len(still)} process(es): {[p.pid for p in still]}")
