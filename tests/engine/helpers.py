"""Helpers shared by the engine tests: engine subprocesses to SIGKILL, read-only looks at a data directory."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from aion import events as ev
from aion.store import open_store

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def engine_process(module: str, *args: object) -> Iterator[Callable[[], None]]:
    """Run ``python -m <module> <args>`` (an engine script that prints ``ready``) and wait for ``ready``.

    Yields a function that SIGKILLs the engine and waits for its children to die with it. The process is
    killed on exit in any case.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )

    def kill() -> None:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the engine should have a zygote, workers and workflow processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield kill
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def recorded(data: Path, workflow_id: str) -> list[ev.Event]:
    """The history of ``workflow_id`` read from ``data`` without an engine (read-only, other process safe)."""
    store = open_store(data, readonly=True)
    try:
        return store.read_history(workflow_id)
    finally:
        store.close()
