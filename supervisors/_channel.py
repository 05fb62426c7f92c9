"""The two-way message channel between a process child and its owner: msgpack frames over a socket pair.

A frame is a 5-byte header (body length, frame kind) followed by a msgpack body. Kinds: ``DATA`` (user
messages, both ways), ``EXIT_INFO`` (child -> owner, the exception that is about to kill it), ``REQUEST``
(child -> owner: link, monitor, trap_exit) and ``SYSTEM`` (owner -> child: `Down` and `ExitSignal`).
Frames are never pickled.
"""

from __future__ import annotations

import itertools
import select
import socket
import struct
import threading
import time
from collections import deque
from typing import Any

import msgpack

from ._errors import ChannelClosedError
from ._gil_io import recv_without_blocking, send_without_blocking
from ._reasons import Down, ExitReason, ExitSignal

HEADER = struct.Struct("!IB")
DATA, EXIT_INFO, REQUEST, SYSTEM = 0, 1, 2, 3
MAX_FRAME = 1 << 30
SOCKET_BUFFER = 1 << 20
RECV_SIZE = 1 << 18
"""How much the owner's end reads at most in one ``recv``."""


def pack(obj: Any) -> bytes:
    """Encode one message body (msgpack, bin type on)."""
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes | memoryview) -> Any:
    """Decode one message body."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def frame(kind: int, body: bytes) -> bytes:
    """Header plus body."""
    return HEADER.pack(len(body), kind) + body


def wait_ready(sock: socket.socket, events: int, timeout: float | None) -> bool:
    """Wait at most ``timeout`` s (None: no limit) until ``sock`` is ready for ``events`` (``select.POLLIN``,
    ``select.POLLOUT``), or has an error or hang-up to report; False on timeout. ``poll``, not ``select``, which
    cannot wait on a descriptor numbered 1024 or more (a process with many children or channels has some)."""
    poller = select.poll()
    poller.register(sock, events)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))


def make_pair() -> tuple[socket.socket, socket.socket]:
    """A connected stream socket pair with large buffers."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    return a, b


class FrameReader:
    """Incremental frame parser."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def next(self) -> tuple[int, bytes] | None:
        """The next complete ``(kind, body)``, or None."""
        buf = self._buf
        if len(buf) < HEADER.size:
            return None
        length, kind = HEADER.unpack_from(buf)
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} bytes is too large")
        end = HEADER.size + length
        if len(buf) < end:
            return None
        body = bytes(buf[HEADER.size : end])
        del buf[:end]
        return kind, body


def decode_system(body: bytes) -> Down | ExitSignal:
    """Decode a SYSTEM frame into the message a child receives."""
    msg = unpack(body)
    if msg[0] == "down":
        return Down(ref=msg[1], pid=msg[2], reason=ExitReason.from_dict(msg[3]))
    return ExitSignal(pid=msg[1], reason=ExitReason.from_dict(msg[2]))


class Channel:
    """The child's end of its channel to the owner, passed as the first argument of the target.

    ``send`` and ``recv`` are safe to call from several threads. ``recv`` returns the messages the owner
    sends, plus `Down` (for monitors this process set with `monitor`) and `ExitSignal` (exit signals from
    linked processes, when trapping exits).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = FrameReader()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._refs = itertools.count(1)
        self._pending: deque[Any] = deque()
        self._closed = False
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)

    def fileno(self) -> int:
        """The socket's file descriptor (to use with `selectors`)."""
        return self._sock.fileno()

    def send(self, obj: Any) -> None:
        """Send one msgpack-serialisable message to the owner."""
        self._send_frame(DATA, pack(obj))

    def _send_frame(self, kind: int, body: bytes) -> None:
        data = frame(kind, body)
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError as exc:
                raise ChannelClosedError(f"channel to the owner is closed: {exc}") from exc

    def _next(self) -> Any:
        if self._pending:
            return self._pending.popleft()
        item = self._reader.next()
        while item is not None:
            kind, body = item
            if kind == DATA:
                return unpack(body)
            if kind == SYSTEM:
                return decode_system(body)
            item = self._reader.next()
        return _NOTHING

    def _fill(self, timeout: float | None) -> bool:
        """Read what is available, waiting at most ``timeout``; False on timeout."""
        if self._closed:
            raise ChannelClosedError("channel is closed")
        # Without a timeout the (blocking) read itself waits: one system call per wake-up instead of two, which
        # counts in a process that is woken cold for each message of a short run.
        if timeout is not None and not self._poller.poll(timeout * 1000):  # see wait_ready
            return False
        while True:
            try:
                data = self._sock.recv(1 << 16)
                break
            except BlockingIOError:  # a descriptor made non-blocking elsewhere: wait until it is readable
                self._poller.poll(None)
        if not data:
            self._closed = True
            raise ChannelClosedError("the owner closed the channel")
        self._reader.feed(data)
        return True

    def recv(self, timeout: float | None = None) -> Any:
        """Receive the next message; raise `TimeoutError` after ``timeout`` s, `ChannelClosedError` at EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._recv_lock:
            while True:
                msg = self._next()
                if msg is not _NOTHING:
                    return msg
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._fill(remaining) and deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("no message")

    def poll(self, timeout: float = 0.0) -> bool:
        """True if a message can be received now, waiting at most ``timeout`` s for one."""
        deadline = time.monotonic() + timeout
        with self._recv_lock:
            while True:
                msg = self._next()
                if msg is not _NOTHING:
                    self._pending.appendleft(msg)
                    return True
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    if not self._fill(remaining) and time.monotonic() >= deadline:
                        return False
                except ChannelClosedError:
                    return False

    def link(self, pid: int) -> None:
        """Link this process to ``pid`` (bidirectional exit propagation)."""
        self._send_frame(REQUEST, pack(["link", pid]))

    def unlink(self, pid: int) -> None:
        """Remove a link to ``pid``."""
        self._send_frame(REQUEST, pack(["unlink", pid]))

    def monitor(self, pid: int) -> int:
        """Monitor ``pid``: a `Down` with the returned ref will be received once when it exits."""
        ref = next(self._refs)
        self._send_frame(REQUEST, pack(["monitor", ref, pid]))
        return ref

    def demonitor(self, ref: int) -> None:
        """Cancel the monitor ``ref`` (a `Down` already on its way may still arrive)."""
        self._send_frame(REQUEST, pack(["demonitor", ref]))

    def trap_exit(self, flag: bool = True) -> None:
        """Receive exit signals from linked processes as `ExitSignal` messages instead of dying."""
        self._send_frame(REQUEST, pack(["trap_exit", bool(flag)]))

    def send_exit_info(self, exc: BaseException) -> None:
        """Tell the owner which exception is about to end this process (done by the host for you)."""
        reason = ExitReason.from_exception(exc)
        self._send_frame(EXIT_INFO, pack([reason.exc_type, reason.message, reason.traceback]))

    def close(self) -> None:
        """Close this end."""
        self._closed = True
        self._sock.close()


_NOTHING: Any = object()


class OwnerChannel:
    """The owner's end of a process child's channel. ``send`` is thread-safe and does not go through an actor.

    Frames the child sends arrive through ``on_message`` (called by the I/O hub), not through this object.
    """

    def __init__(self, sock: socket.socket, pid: int = 0) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.pid = pid
        """The OS pid of the child."""
        self.closed = False
        """True once the child has exited and the channel was closed."""

    def fileno(self) -> int:
        """The socket's file descriptor."""
        return self._sock.fileno()

    def send(self, obj: Any) -> None:
        """Send one msgpack-serialisable message to the child; raises `ChannelClosedError` if it is gone."""
        self.send_frame(DATA, pack(obj))

    def send_frame(self, kind: int, body: bytes) -> None:
        """Send a raw frame (internal)."""
        data = frame(kind, body)
        with self._lock:
            if self.closed:
                raise ChannelClosedError(f"process {self.pid} has exited")
            try:
                # Most frames fit in the socket's buffer: sent without letting go of the GIL (see _gil_io).
                sent = send_without_blocking(self._sock, data)
                if sent < len(data):
                    self._sock.sendall(memoryview(data)[sent:])
            except OSError as exc:
                raise ChannelClosedError(f"process {self.pid} has exited: {exc}") from exc

    def recv_nowait(self) -> bytes | None:
        """Hub side: read what is available; b"" at EOF, None if nothing."""
        try:
            return recv_without_blocking(self._sock, RECV_SIZE)
        except OSError:
            return b""

    def close(self) -> None:
        """Close the owner's end."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._sock.close()

    def __repr__(self) -> str:
        return f"<OwnerChannel pid={self.pid}{' closed' if self.closed else ''}>"
