"""Where the control socket lives and how both sides open it safely.

The socket is ``<data_dir>/control.sock``, mode 0600. Unix socket addresses are limited to about 107 bytes,
so a long data-dir path is reached through ``/proc/self/fd/<fd of the directory>/control.sock`` instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from aion.errors import ControlError

#: The control socket's file name inside the data directory.
SOCKET_NAME: Final = "control.sock"

_MAX_ADDRESS: Final = 100


def socket_path(data_dir: str | os.PathLike[str]) -> Path:
    """The control socket of the engine on ``data_dir``."""
    return Path(data_dir) / SOCKET_NAME


@contextlib.contextmanager
def short_address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits in a ``sockaddr_un`` (valid inside the ``with`` block only)."""
    text = os.fspath(path)
    if len(text.encode()) <= _MAX_ADDRESS:
        yield text
        return
    try:
        fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    except OSError as error:
        raise ControlError(f"cannot open the directory of {text}: {error.strerror}") from None
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def check_socket_file(path: Path) -> None:
    """Refuse a control socket that is not a socket, not ours, or open to group/other (``ControlError``)."""
    info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(f"{path} is not a socket; refusing to use it")
    if info.st_uid != os.geteuid():
        raise ControlError(f"{path} is owned by uid {info.st_uid}, not by you (uid {os.geteuid()}); refusing to use it")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ControlError(f"{path} has mode {mode:04o}, open to other users (expected 0600); refusing to use it")


def connect(path: Path, timeout: float | None = 10.0) -> socket.socket:
    """A connected stream socket to ``path`` (``OSError`` when nothing listens there).

    A Unix socket whose listen backlog is full refuses a connection at once (``EAGAIN``) rather than queueing
    it: the server accepts, and evicts silent clients, one at a time, so the connection is tried again, with a
    growing pause, until ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(None if deadline is None else max(0.0, deadline - time.monotonic()))
            with short_address(path) as address:
                sock.connect(address)
        except BlockingIOError:
            sock.close()
            if deadline is not None and time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            continue
        except BaseException:
            sock.close()
            raise
        return sock


def answers(path: Path) -> bool:
    """True if something accepts connections on the socket at ``path``."""
    try:
        connect(path, timeout=2.0).close()
    except OSError:
        return False
    return True
