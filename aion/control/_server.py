"""The control server: a Unix socket in the engine's data directory that the ``aion`` CLI talks to.

One accept thread, one handler thread per connection (at most :data:`MAX_CONNECTIONS`), so a long wait on one
connection (``result``, ``history --follow``) never blocks another. Each request is one frame holding
``{"op": ..., ...}``; each reply ``{"ok": true, "result": ...}`` or ``{"ok": false, "code": ..., "message":
...}`` with the :class:`~aion.errors.AionError` code. A malformed frame gets an error reply and its connection
is closed; the engine is not affected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from typing import Any, Final

from aion.clock import SYSTEM_CLOCK, Clock
from aion.control._engine_api import ControlledEngine
from aion.control._frames import (
    MAX_FRAME_BYTES,
    MAX_REPLY_BYTES,
    ConnectionClosed,
    pack_frame,
    recv_frame_within,
    send_frame,
)
from aion.control._ops import OPS, OpContext
from aion.control._socket import answers, short_address, socket_path
from aion.errors import AionError, ControlError, InvalidArgumentError

log = logging.getLogger(__name__)

#: Connections served at once; more are answered with an error and closed.
MAX_CONNECTIONS: Final = 64
#: The name the control socket is bound under in the data directory before it is linked to ``control.sock``.
STAGING_NAME: Final = ".control.sock.staging"
#: Seconds a connection may stay silent between frames before it is closed.
IDLE_TIMEOUT: Final = 60.0
#: Seconds an operation may take before its client gets an error reply (the longest waits are bounded below it).
HANDLER_TIMEOUT: Final = 60.0
#: Seconds a request frame may take to arrive once its first byte has: a client dripping bytes is cut off.
FRAME_TIMEOUT: Final = 5.0


def _error_reply(error: BaseException) -> dict[str, Any]:
    if isinstance(error, AionError):
        return {"ok": False, "code": error.code, "message": str(error)}
    return {"ok": False, "code": "aion_error", "message": f"{type(error).__name__}: {error}"}


class ControlServer:
    """Serves the control socket of one engine; :meth:`start` binds it, :meth:`stop` removes it. ``clock``
    measures the operations' long waits and the stop's grace period."""

    def __init__(
        self,
        engine: ControlledEngine,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        #: Told each request's operation name (``unknown`` for one that names none), for metrics.
        self._on_request = on_request
        self.path = socket_path(engine.data_dir)
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._stopping = threading.Event()
        self._context = OpContext(self._stopping, clock)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        #: The connections waiting for a request (not in a handler), with since when: the first evicted when full.
        self._reading: dict[socket.socket, float] = {}
        self._threads: set[threading.Thread] = set()
        self._acceptor: threading.Thread | None = None

    def start(self) -> None:
        """Bind ``<data_dir>/control.sock`` (mode 0600), replacing a stale one, and start accepting.

        The socket is bound under a staging name, made 0600 and listening there, and only then linked to its own
        name: a client never finds ``control.sock`` with the mode ``bind`` gave it (the umask's, which a client
        rightly refuses) nor bound and not yet listening. Only one engine opens a data directory at a time (the
        store's writer lock is taken first), so one staging name does."""
        self._remove_stale()
        staging = self.path.with_name(STAGING_NAME)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staging)  # left by an engine killed while it started
            with short_address(staging) as address:
                listener.bind(address)
            os.chmod(staging, 0o600)
            listener.listen(32)
            os.link(staging, self.path)  # never over another engine's socket: that fails (EEXIST)
            os.unlink(staging)
            self._inode = os.lstat(self.path).st_ino
        except OSError as error:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(staging)
            raise ControlError(f"cannot listen on {self.path}: {error.strerror or error}") from None
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name="aion-control", daemon=True)
        self._acceptor.start()

    def _remove_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise ControlError(f"{self.path} exists and is not a socket; remove it to start the engine")
        if answers(self.path):
            raise ControlError(f"another engine answers on {self.path}")
        log.info("replacing the stale control socket %s", self.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def stop(self) -> None:
        """Stop accepting, close every connection and remove the socket file (if it is still ours)."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = self._clock.monotonic() + 2.0  # handlers stuck in a long engine call are daemons: do not wait long
        if self._acceptor is not None:
            self._acceptor.join(timeout=2.0)
        for thread in threads:
            thread.join(timeout=max(deadline - self._clock.monotonic(), 0.0))
        with contextlib.suppress(OSError):
            if self._inode is not None and os.lstat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                if len(self._connections) >= MAX_CONNECTIONS:
                    self._evict_reader()
                busy = len(self._connections) >= MAX_CONNECTIONS
                if not busy:
                    busy = False
                    self._connections.add(conn)
                    self._reading[conn] = self._clock.monotonic()
                    thread = threading.Thread(target=self._serve, args=(conn,), name="aion-control-conn", daemon=True)
                    self._threads.add(thread)
            if busy:
                with contextlib.suppress(OSError):
                    send_frame(conn, _error_reply(ControlError("too many control connections; try again")))
                conn.close()
                continue
            thread.start()

    def _evict_reader(self) -> None:
        """Full: close the connection that has waited longest for a request (idle, or dripping a frame), so
        that silent or slow clients can never lock out a real one. Called with the lock held."""
        if not self._reading:
            return
        oldest = min(self._reading, key=self._reading.__getitem__)
        del self._reading[oldest]
        self._connections.discard(oldest)
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    request = recv_frame_within(
                        conn, MAX_FRAME_BYTES, idle=IDLE_TIMEOUT, within=FRAME_TIMEOUT, monotonic=self._clock.monotonic
                    )
                except ConnectionClosed:
                    return
                except ControlError as error:
                    send_frame(conn, _error_reply(error))  # malformed or too slow: answer, then close
                    return
                with self._lock:
                    if self._reading.pop(conn, None) is None:
                        return  # evicted while its frame arrived
                try:
                    data = pack_frame(self._handle(request), MAX_REPLY_BYTES)
                except ControlError as error:
                    data = pack_frame(_error_reply(error))
                conn.settimeout(FRAME_TIMEOUT)  # a client that does not read its reply is cut off too
                conn.sendall(data)
                with self._lock:
                    self._reading[conn] = self._clock.monotonic()
        except OSError:
            return  # the client went away, timed out, or the server is stopping
        finally:
            with self._lock:
                self._reading.pop(conn, None)
                self._connections.discard(conn)
                self._threads.discard(threading.current_thread())
            conn.close()

    def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run the operation under :data:`HANDLER_TIMEOUT`: one that overruns (an engine that does not answer)
        gets an error reply, and its thread is left to finish on its own without holding the connection."""
        outcome: list[dict[str, Any]] = []
        worker = threading.Thread(
            target=lambda: outcome.append(self._dispatch(request)), name="aion-control-op", daemon=True
        )
        worker.start()
        worker.join(HANDLER_TIMEOUT)
        if not outcome:
            return _error_reply(
                ControlError(f"control op {request.get('op')!r} did not finish within {HANDLER_TIMEOUT:g} s")
            )
        return outcome[0]

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        handler = OPS.get(op) if isinstance(op, str) else None
        if self._on_request is not None:
            self._on_request(op if handler is not None and isinstance(op, str) else "unknown")
        if handler is None:
            known = ", ".join(sorted(OPS))
            return _error_reply(InvalidArgumentError(f"unknown control op {op!r} (one of: {known})"))
        try:
            return {"ok": True, "result": handler(self._engine, request, self._context)}
        except AionError as error:
            return _error_reply(error)
        except Exception as error:
            log.exception("control op %r failed", op)
            return _error_reply(error)


def start_control_server(engine: ControlledEngine, *, on_request: Callable[[str], None] | None = None) -> ControlServer:
    """Start serving ``engine``'s control socket; returns the server (stop it with ``stop()``). ``on_request``
    is told each request's operation name."""
    server = ControlServer(engine, on_request=on_request)
    server.start()
    return server
