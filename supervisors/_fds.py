"""File descriptors the owner side of this library holds, to close in a freshly forked zygote.

A zygote forked while other zygotes, hubs or channels exist would otherwise inherit their descriptors and
keep pipes open that must reach EOF when their owner dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading

_lock = threading.Lock()
_fds: set[int] = set()
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def register(fd: int) -> None:
    """Remember an owner-side descriptor."""
    with _lock:
        _fds.add(fd)


def unregister(fd: int) -> None:
    """Forget a descriptor (call before closing it)."""
    with _lock:
        _fds.discard(fd)


def close_all_in_child() -> None:
    """In a forked child: close every registered descriptor (no locking: we are single-threaded now)."""
    for fd in list(_fds):
        with contextlib.suppress(OSError):
            os.close(fd)
    _fds.clear()


def die_with_parent(expected_parent: int, signum: int = signal.SIGKILL) -> None:
    """Get ``signum`` (SIGKILL) when the parent dies (PR_SET_PDEATHSIG); exit now if it is already gone."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() != expected_parent:
        os._exit(0)


def become_subreaper() -> None:
    """Adopt the orphaned descendants of this process (PR_SET_CHILD_SUBREAPER)."""
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
