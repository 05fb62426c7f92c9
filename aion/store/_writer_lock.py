"""The single-writer lock of a data directory: an exclusive ``flock`` on the LMDB data file itself.

The lock lives on ``data.mdb``, the file every writer must open to write, so deleting side files (``writer.lock``,
``control.sock``) under a running engine cannot let a second writer in: it would have to open the same inode,
and the kernel refuses it the lock. The holder's pid is read from ``/proc/locks`` (which names the process
that took a ``flock``), so the refusal names it even when every side file is gone; ``writer.lock`` still gets the
holder's pid, for people only.

It also refuses a data file that is empty (a new store is created only where there is no ``data.mdb`` at all):
LMDB would silently make a new, empty store of it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Final

from aion.errors import StoreError, StoreFormatError, StoreLockedError

#: The LMDB data file, on which the lock is taken.
DATA_FILE: Final = "data.mdb"
#: A side file holding the writer's pid, for people (the lock is not on it).
LOCK_FILE: Final = "writer.lock"
#: Files that may be in a directory where a new store is made (left by an engine that never wrote a store).
_SIDE_FILES: Final = frozenset({LOCK_FILE, "control.sock", "lock.mdb", "zygote.session"})


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding a ``flock`` on the file ``path`` (from ``/proc/locks``), if any."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


class WriterLock:
    """The exclusive writer lock on a data directory; release it with :meth:`release` (or let the process end).

    Take it with :meth:`acquire` before anything else is done with the directory: before a process that must not
    inherit it is forked (the descriptor is close-on-exec, and forked children of an engine close it) and before
    LMDB opens the environment.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        """The data directory."""
        self.fd = fd
        """The descriptor of ``data.mdb`` holding the ``flock``."""

    @classmethod
    def acquire(cls, path: Path) -> WriterLock:
        """Lock ``path`` (a data directory, created if missing) for this process; `StoreLockedError` naming the
        holder's pid if another process holds it; `StoreFormatError` if ``data.mdb`` exists but is empty."""
        data = path / DATA_FILE
        try:
            path.mkdir(parents=True, exist_ok=True)
            if not path.is_dir():
                raise StoreError(f"the data directory {str(path)!r} is not a directory")
            new = not data.exists()
            if new and any(p.name not in _SIDE_FILES for p in path.iterdir()):
                raise StoreFormatError(
                    f"{str(path)!r} has no {DATA_FILE} but is not empty: a new store is created only in an "
                    "empty or new directory"
                )
            fd = os.open(data, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StoreError(f"cannot open the data directory {str(path)!r}: {error}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                holder = lock_holder(data)
                who = "another process" if holder is None else f"the process of pid {holder}"
                raise StoreLockedError(
                    f"the data directory {str(path)!r} is held by another writer (engine): {who}"
                ) from None
            raise StoreError(f"cannot lock {str(path)!r}: {error}") from error
        if not new and os.fstat(fd).st_size == 0:
            os.close(fd)
            raise StoreFormatError(
                f"{str(data)!r} is empty: it is not an aion store (it was truncated, or a store creation was cut "
                "short); restore a backup, or delete the directory to start a new store"
            )
        with contextlib.suppress(OSError):
            (path / LOCK_FILE).write_text(f"{os.getpid()}\n")
        return cls(path, fd)

    def release(self) -> None:
        """Release the lock (closing the descriptor releases the ``flock``); idempotent."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
