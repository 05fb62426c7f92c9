"""Suite-wide guards: every test runs with a deadline, and no process of ours outlives a test."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from aion.store import EventStore, open_store

_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Adopt orphaned descendants, so a process left behind by a SIGKILLed engine is still seen as ours."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_become_subreaper()


def _take_ctrl_c_back() -> None:
    """Run from a shell's background job (``pytest &``, a CI step started with ``&``), this process inherits
    SIGINT ignored, and so would every ``aion`` command the tests start: the tests that press Ctrl-C on one
    would wait for an exit that never comes. A handled signal is reset to its default in a child, an ignored
    one stays ignored: handling it here gives every child the default again."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_take_ctrl_c_back()


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


#: Processes a session-scoped fixture keeps for the whole session (the Ray cluster of ``tests/ray_executor``):
#: they and their descendants are not leaks of a test; the fixture kills them at the session's end.
SESSION_PROCESSES: set[int] = set()


def _kept_for_the_session(proc: psutil.Process) -> bool:
    try:
        return any(p.pid in SESSION_PROCESSES for p in [proc, *proc.parents()])
    except psutil.NoSuchProcess:
        return False


def live_descendants() -> list[psutil.Process]:
    """Descendants of the test process that are alive (zombies are reaped first), but those kept for the
    session (``SESSION_PROCESSES``)."""
    _reap_zombies()
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and not _kept_for_the_session(proc):
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


#: The tests that import Ray (and with it filelock) into the test process.
_RAY_TESTS = Path(__file__).parent / "ray_executor"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Ray tests last. Importing Ray imports filelock, which registers fork hooks (``os.register_at_fork``)
    that every later fork of this process runs, the zygotes of every engine a test starts included; filelock 4.3's
    hook waits up to 30 s for another thread's lock operation to end, and the child then exits. Seen once in CI, with
    Ray imported at collection: a zygote's fork held in that hook until the test timed out, and runs of other
    tests not getting a process within 10 s. Run last, the Ray tests are the only ones that fork with those hooks
    in place, as an engine with a Ray queue does in production."""
    items.sort(key=lambda item: _RAY_TESTS in item.path.parents)


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a child process alive (after a short grace), and kill what it left."""
    yield
    leaked = live_descendants()
    if leaked:
        _, still = psutil.wait_procs(leaked, timeout=3.0)
        still = [p for p in still if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if still:
            described = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in still]
            for proc in still:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(signal.SIGKILL)
            _reap_zombies()
            pytest.fail(f"test leaked {len(still)} process(es): {described}")


@pytest.fixture
def log(tmp_path: Path) -> str:
    """The execution log file activities append to."""
    return str(tmp_path / "executions.log")


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    """A directory for gate files that activities wait on and mark."""
    path = tmp_path / "gates"
    path.mkdir()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """A real LMDB store in the test's temp dir, closed afterwards (a package may define its own)."""
    made = open_store(tmp_path / "data")
    yield made
    made.close()
