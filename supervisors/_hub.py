"""The I/O hub: one thread multiplexing the zygote's control socket and every process child's channel.

Owner side: it runs in the process that started the zygote. It spawns process children through the zygote,
turns the zygote's ``(pid, wait status)`` reports into `ExitReason` s and delivers frames to ``on_message``.
No thread per child. Links and monitors (`_links.LinkBook`) and speculative restarts' spares
(`_spares.SpareBook`) are parts of the hub kept in their own modules.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import selectors
import signal
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from . import _fds
from ._batch import Round
from ._channel import (
    DATA,
    EXIT_INFO,
    RECV_SIZE,
    REQUEST,
    OwnerChannel,
    pack,
    unpack,
    wait_ready,
)
from ._errors import SpawnError
from ._links import LinkBook, LinkTable, Watchers
from ._proc import OnExit, OnMessage, OnStart, Proc, SpareOwner
from ._reasons import ExitReason
from ._spares import SpareBook
from ._succession import ZYGOTE_EXITED, Succession
from ._tickets import SpawnTicket, TicketBook

logger = logging.getLogger("supervisors")


class Hub(SpareBook, LinkBook, Succession, TicketBook):
    """Owns the owner process's end of the zygote's control socket and every live process child."""

    def __init__(self, ctl: socket.socket, zygote_pid: int) -> None:
        Succession.__init__(self)
        TicketBook.__init__(self)
        self._ctl = ctl
        self._zygote_pid = zygote_pid
        self._ctl_lock = threading.Lock()
        self._lock = threading.RLock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        for fd in (self._sel.fileno(), self._wake_r, self._wake_w, ctl.fileno()):
            _fds.register(fd)
        self._procs: dict[int, Proc] = {}
        self._pending: dict[int, SpawnTicket] = {}
        self._reqs = itertools.count(1)
        self._refs = itertools.count(1)
        self._links = LinkTable()
        self._exited: dict[int, ExitReason] = {}
        self._calls: deque[Callable[[], None]] = deque()  # run by the hub thread, see _post
        self._round = Round()  # hands over the callbacks' `Batch` items once per select() round
        self._closed = False
        self.spares_adopted = 0
        self.spares_discarded = 0
        self._zygote_alive = True
        self.zygote_status: int | None = None
        self.nursery_pid = 0
        """The zygote's nursery (the process that forks its pool hosts), once it exists."""
        self._thread = threading.Thread(target=self._run, name="supervisors-hub", daemon=True)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the hub thread."""
        self._ctl.setblocking(False)
        self._sel.register(self._ctl, selectors.EVENT_READ, "ctl")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the hub thread to end (after the zygote exited)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """True while the zygote is up."""
        return self._zygote_alive

    def wake(self) -> None:
        """Make the hub thread look at its queues."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def send_ctl(self, msg: list[Any], fds: Sequence[int] = ()) -> None:
        """Send a control message to the zygote (thread-safe)."""
        self._send_ctl_data(pack(msg), fds)

    def _send_ctl_data(self, data: bytes, fds: Sequence[int] = ()) -> None:
        """Send a packed control message to the zygote (thread-safe)."""
        with self._ctl_lock:
            while True:
                try:
                    if fds:
                        socket.send_fds(self._ctl, [data], list(fds))
                    else:
                        self._ctl.send(data)
                    return
                except BlockingIOError:
                    wait_ready(self._ctl, select.POLLOUT, 1.0)
                except OSError as exc:
                    raise SpawnError(f"the zygote is gone: {exc}") from exc

    # -- processes ----------------------------------------------------------------------------------

    def spawn(
        self,
        ref: str,
        args: Sequence[Any],
        *,
        on_start: OnStart | None,
        on_message: OnMessage | None,
        on_exit: OnExit | None,
        trap_exit: bool,
        timeout: float,
        arm: bool = False,
        recycle: bool = False,
        owner: SpareOwner | None = None,
    ) -> Proc:
        """Ask the zygote for a process running ``ref(channel, *args)``; return its record once it exists.

        ``arm``: the zygote restarts it speculatively after an abnormal exit (``on_exit`` then gets a spare).
        ``recycle``: when the target returns normally, the process is kept for a later spawn of ``ref``
        (`ZygoteServer`); its exit is reported as normal all the same.
        """
        arg_list = list(args)
        pending = SpawnTicket(on_start, on_message, on_exit, trap_exit, owner)
        hub = self
        while True:  # a spawn asked of a zygote that died goes to the one started in its place
            proc = hub._spawn_once(pending, ref, arg_list, timeout=timeout, arm=arm, recycle=recycle)
            if proc is not None:
                return proc
            successor: Hub | None = hub.next_hub()
            if successor is None:
                raise SpawnError(pending.error or "the zygote is not running")
            hub, pending = successor, SpawnTicket(on_start, on_message, on_exit, trap_exit, owner)

    def _spawn_once(
        self, pending: SpawnTicket, ref: str, args: list[Any], *, timeout: float, arm: bool, recycle: bool
    ) -> Proc | None:
        """`spawn` on this hub's zygote; None if that zygote is gone (``pending.error`` says so)."""
        req = self._ask(pending, ref, args, arm=arm, recycle=recycle, timeout=None)
        if req is None:
            return None
        if not pending.done.wait(timeout):
            with self._lock:
                gave_up = self._pending.pop(req, None) is not None
            if gave_up:  # its process, if the zygote starts it after all, is killed (see _spawned)
                raise SpawnError(f"the zygote did not start {ref} within {timeout}s")
            pending.done.wait()  # the answer came as we gave up: the hub thread is finishing the spawn
        if pending.error == ZYGOTE_EXITED:
            return None
        if pending.error is not None or pending.proc is None:
            raise SpawnError(pending.error or f"the zygote did not start {ref}")
        return pending.proc

    def signal(self, pid: int, signum: int, *, disarm: bool = False) -> None:
        """Signal the live process child ``pid`` (nothing if there is none)."""
        proc = self.proc(pid)
        if proc is not None:
            self.signal_proc(proc, signum, disarm=disarm)

    def signal_proc(self, proc: Proc, signum: int, *, disarm: bool = False) -> None:
        """Signal this incarnation of a process child, through the zygote (which signals only its own unreaped
        children, and only the incarnation named: never a later one that a recycled pid hosts).

        ``disarm``: no speculative restart after this process exits.
        """
        with contextlib.suppress(SpawnError):
            self.send_ctl(["signal", proc.pid, int(signum), disarm, proc.token])

    def proc(self, pid: int) -> Proc | None:
        """The live process record for ``pid``."""
        with self._lock:
            return self._procs.get(pid)

    def pids(self) -> list[int]:
        """Pids of the live process children (spares not adopted are not listed)."""
        with self._lock:
            return [pid for pid, proc in self._procs.items() if not proc.provisional]

    def _post(self, call: Callable[[], None]) -> bool:
        """Run ``call`` in the hub thread; False if the hub is gone."""
        with self._lock:
            if self._closed:
                return False
            self._calls.append(call)
        self.wake()
        return True

    def terminate(self, pid: int, timeout: float, *, kill: bool = False) -> ExitReason | None:
        """Stop the process child ``pid``: SIGTERM, up to ``timeout`` s of grace, then SIGKILL. None if not
        alive."""
        proc = self.proc(pid)
        if proc is None:
            return self._exited.get(pid)
        return self.terminate_proc(proc, timeout, kill=kill)

    def terminate_proc(self, proc: Proc, timeout: float, *, kill: bool = False) -> ExitReason | None:
        """Stop this incarnation of a process child (see `terminate`); its exit reason."""
        if proc.exited.is_set():
            return proc.reason
        proc.shutdown_requested = True
        if not kill:
            self.signal_proc(proc, signal.SIGTERM, disarm=True)
            if proc.exited.wait(timeout):
                return proc.reason
        self.signal_proc(proc, signal.SIGKILL, disarm=True)
        proc.exited.wait(30.0)
        return proc.reason

    # -- the thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        self._round.begin()
        try:
            while True:
                for key, _ in self._sel.select(self._expire_spawns() if self._deadlines else None):
                    data = key.data
                    if data == "wake":
                        with contextlib.suppress(OSError):
                            while os.read(self._wake_r, 4096):
                                pass
                        self._run_calls()
                    elif data == "ctl":
                        if not self._read_ctl():
                            self._zygote_gone()
                            return
                    else:
                        self._read_channel(data)
                self._round.end()
        except Exception:
            logger.exception("supervisors hub crashed")
            self._zygote_gone()
        finally:
            self._round.close()

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            try:
                calls.popleft()()
            except Exception:
                logger.exception("supervisors hub call failed")

    def _read_ctl(self) -> bool:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._ctl, 1 << 20, 1)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            msg = unpack(data)
            op = msg[0]
            if op == "spawned" and len(fds) == 1:
                self._spawned(msg[1], msg[2], msg[4], fds[0])
            elif op == "error":
                with self._lock:
                    pending = self._pending.pop(msg[1], None)
                if pending is not None:
                    pending.error = msg[2]
                    pending.finish()
            elif op == "nursery":
                self.nursery_pid = msg[1]
            elif op == "exit":
                spare = (msg[3], msg[4], fds[0]) if len(msg) > 3 and fds else None
                self._exit(msg[1], msg[2], spare)
            else:
                for fd in fds:
                    os.close(fd)

    def _spawned(self, req: int, pid: int, token: int, fd: int) -> None:
        with self._lock:
            pending = self._pending.pop(req, None)
        if pending is None:
            # Its spawn timed out and its caller was told it failed: nobody owns this process, end it. (Its exit
            # finds no record here and is dropped.)
            os.close(fd)
            with contextlib.suppress(SpawnError):
                self.send_ctl(["signal", pid, int(signal.SIGKILL), True, token])
            return
        try:
            os.set_inheritable(fd, False)  # as a socket pair made here would be
            _fds.register(fd)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fd)
            channel = OwnerChannel(sock, pid)
            proc = Proc(
                pid, channel, pending.on_message, pending.on_exit, pending.trap_exit, token=token, owner=pending.owner
            )
            with self._lock:
                self._procs[pid] = proc
                self._exited.pop(pid, None)
            pending.proc = proc
            if pending.on_start is not None:
                try:
                    pending.on_start(pid, channel)
                except Exception:
                    logger.exception("on_start of process %d failed", pid)
            self._sel.register(sock, selectors.EVENT_READ, proc)
            proc.registered = True
        finally:
            pending.finish()  # its caller may be waiting without a timeout (see spawn)

    def _read_channel(self, proc: Proc, *, drain: bool = False) -> None:
        """Read and dispatch what ``proc`` sent. A read shorter than asked for emptied the socket: unless
        ``drain`` (the process is gone, read up to EOF), stop there; the selector reports it again if more
        arrives (one ``recv`` per wake-up instead of a second one that would only say "nothing")."""
        channel = proc.channel
        while True:
            data = channel.recv_nowait()
            if data is None:
                break
            if not data:
                self._unregister(proc)
                break
            proc.reader.feed(data)
            if len(data) < RECV_SIZE and not drain:
                break
        self._dispatch(proc)

    def _unregister(self, proc: Proc) -> None:
        if proc.registered:
            proc.registered = False
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(proc.channel.fileno())

    def _dispatch(self, proc: Proc) -> None:
        while True:
            try:
                item = proc.reader.next()
            except ValueError:
                logger.exception("bad frame from process %d", proc.pid)
                self._unregister(proc)
                return
            if item is None:
                return
            kind, body = item
            try:
                if kind == DATA:
                    if proc.on_message is not None:
                        proc.on_message(unpack(body))
                elif kind == EXIT_INFO:
                    proc.exc_info = unpack(body)
                elif kind == REQUEST:
                    self._request(proc, unpack(body))
            except Exception:
                logger.exception("handling a frame from process %d failed", proc.pid)

    def _exit(self, pid: int, status: int | None, started: tuple[int, int, int] | None = None) -> None:
        """The zygote reported ``pid``'s exit, and ``started`` (pid, token, channel fd) of a speculative restart."""
        proc = self.proc(pid)
        spare = None if started is None else self._provisional(started, proc)
        if proc is None:
            if spare is not None:
                self._discard(spare)
            return
        if proc.provisional and not proc.discarded:  # a spare that died before its owner decided: hold it
            proc.held = (status, spare)
            return
        self._finish_exit(proc, status, spare)

    def _finish_exit(self, proc: Proc, status: int | None, spare: Proc | None) -> None:
        pid = proc.pid
        spare = self._wanted(proc, spare)
        # Everything the child wrote before dying is in the socket buffer: drain it first.
        if proc.registered:
            self._read_channel(proc, drain=True)
            self._unregister(proc)
        # What it (and any process this round) sent reaches the batches' consumers before its exit does.
        self._round.end()
        reason = proc.exit_reason(status)
        watchers: Watchers = ([], [])
        with self._lock:
            # A spare whose exit was held may have been recycled since, its pid now another incarnation's: what
            # is kept by pid (the record, monitors, links) is that one's, not this one's.
            if self._procs.get(pid) is proc:
                del self._procs[pid]
                self._exited[pid] = reason
                if len(self._exited) > 10_000:
                    self._exited.pop(next(iter(self._exited)))
                watchers = self._pop_watchers(pid)
        _fds.unregister(proc.channel.fileno())
        proc.channel.close()
        proc.reason = reason
        self._tell_watchers(pid, reason, watchers)
        if proc.on_exit is not None:
            try:
                proc.on_exit(pid, reason, spare)
            except Exception:
                logger.exception("on_exit of process %d failed", pid)
                if spare is not None:
                    self._discard(spare)
        proc.exited.set()

    def _zygote_gone(self) -> None:
        self._zygote_alive = False
        with self._lock:
            self._closed = True
            pendings = list(self._pending.values())
            self._pending.clear()
        self._run_calls()
        try:
            _, status = os.waitpid(self._zygote_pid, 0)
            self.zygote_status = status
        except ChildProcessError:
            pass
        self.announce_gone(self.zygote_status)
        for pending in pendings:  # their callers ask the successor, if there is one
            pending.error = ZYGOTE_EXITED
            pending.finish()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.provisional:
                self._discard(proc)
            self._exit(proc.pid, None)
        for fd in (self._sel.fileno(), self._wake_r, self._wake_w, self._ctl.fileno()):
            _fds.unregister(fd)
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._ctl.close()
