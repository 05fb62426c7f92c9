"""Socket calls that keep the GIL: for threads whose every wait on the GIL holds up others.

``socket.send`` and ``socket.recv`` release the GIL around their system call, even when the call cannot block.
The thread must then take the GIL back, and when another thread is running Python code it waits for that thread
to drop it: at its next blocking call, or at the end of its switch interval (5 ms by default). A thread that
sends or reads often (a sequencer handing out work, the I/O hub reading every child's messages) spends much of
its time in those waits: measured in aion's engine core, a ``sendall`` of a few hundred bytes to a Unix socket
took ~180 µs of wall time, of which the call itself is a small part.

:func:`send_without_blocking` and :func:`recv_without_blocking` call the C library's ``send`` and ``recv``
through ``ctypes.PyDLL``, which keeps the GIL, with ``MSG_DONTWAIT``: they never block, so the GIL is held only
for the system call itself. That is not free: a send that wakes an idle process costs the sender tens of µs of
kernel time on a virtual machine, during which no other thread runs Python (measured in aion: throughput up,
"signal all", whose sends mostly wake idle processes, a few percent down). What would block is left to the
caller (``socket.sendall``, the selector), which releases the GIL. Where the C library cannot be loaded,
they fall back on the socket's own calls.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import threading
from typing import Any

_DONT_WAIT = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)
_WOULD_BLOCK = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


def _load(name: str, buffer_type: Any) -> Any | None:
    """The C library's ``name`` (``send``, ``recv``), called with the GIL held; None where it cannot be had."""
    try:
        function = getattr(ctypes.PyDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, buffer_type, ctypes.c_size_t, ctypes.c_int)
    function.restype = ctypes.c_ssize_t
    return function


_send = _load("send", ctypes.c_char_p)
_recv = _load("recv", ctypes.c_void_p)
#: Each thread's buffer for ``recv`` (a hub thread reads into its own).
_buffers = threading.local()


def _failed() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, errno.errorcode.get(code, "socket call failed"))


def send_without_blocking(sock: socket.socket, data: bytes) -> int:
    """Send what of ``data`` fits in ``sock``'s buffer now, keeping the GIL; the bytes sent (0 if none fit, or
    where the C library's ``send`` is not at hand). Raises ``OSError`` if the socket is broken (its peer gone:
    ``EPIPE``, ``ECONNRESET``) or closed."""
    if _send is None:
        return 0
    sent: int = _send(sock.fileno(), data, len(data), _DONT_WAIT)
    if sent >= 0:
        return sent
    if ctypes.get_errno() in _WOULD_BLOCK:
        return 0
    raise _failed()


def recv_without_blocking(sock: socket.socket, size: int) -> bytes | None:
    """Read at most ``size`` bytes waiting in ``sock``, keeping the GIL: the bytes, ``b""`` at end of file, None
    if nothing waits. Where the C library's ``recv`` is not at hand it reads with ``socket.recv`` (which releases
    the GIL). Raises ``OSError`` if the socket is broken or closed."""
    if _recv is None:
        try:
            return sock.recv(size, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _buffers.buffer = ctypes.create_string_buffer(size)
    received: int = _recv(sock.fileno(), buffer, size, _DONT_WAIT)
    if received >= 0:
        return ctypes.string_at(buffer, received)
    if ctypes.get_errno() in _WOULD_BLOCK:
        return None
    raise _failed()
