"""The I/O hub: one thread multiplexing the zygote's control socket and every process child's channel.

It turns the zygote's ``(pid, wait status)`` reports into `ExitReason` s, delivers frames to ``on_message``,
and applies links and monitors. No thread per child.

Speculative restarts: the zygote may report an exit together with a *spare*, a replacement it already
started with the same target and args (only for children spawned with ``arm=True``). The spare is kept
*provisional* (its channel is not read, its exit is held) until its owner either `adopt` s it (``on_start``
then runs in this thread, as for a spawn) or `discard` s it (it is killed and forgotten, with no callback).
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
from dataclasses import dataclass, field
from typing import Any

import msgpack

from . import _fds
from ._batch import Round
from ._channel import (
    DATA,
    EXIT_INFO,
    RECV_SIZE,
    REQUEST,
    SYSTEM,
    FrameReader,
    OwnerChannel,
    pack,
    unpack,
    wait_ready,
)
from ._errors import SpawnError
from ._links import ChildMonitor, LinkTable
from ._reasons import Down, ExitReason

logger = logging.getLogger("supervisors")

OnStart = Callable[[int, OwnerChannel], None]
OnMessage = Callable[[Any], None]
OnExit = Callable[[int, ExitReason, "Proc | None"], None]  # (pid, reason, spare or None)
Notify = Callable[[Down], None] | Any  # a callable, or a pykka ActorRef (told the Down)


@dataclass(eq=False)
class Proc:
    """The hub's record of one live process child."""

    pid: int
    channel: OwnerChannel
    on_message: OnMessage | None
    on_exit: OnExit | None
    trap_exit: bool
    token: int = 0
    """The zygote's token for this incarnation of ``pid`` (a recycled process hosts several in turn)."""
    reader: FrameReader = field(default_factory=FrameReader)
    exc_info: list[Any] | None = None
    link_kill: str | None = None
    shutdown_requested: bool = False
    reason: ExitReason | None = None
    exited: threading.Event = field(default_factory=threading.Event)
    registered: bool = False
    owner: SpareOwner | None = None
    provisional: bool = False
    """A spare not yet adopted: its channel is not read and its exit is held in ``held``."""
    discarded: bool = False
    held: tuple[int | None, Proc | None] | None = None


class SpareOwner:
    """Whoever receives the spares of some process children (a supervisor); `Hub.close_owner` discards the
    spares it will never see."""

    closed = False


@dataclass(eq=False)
class _Pending:
    on_start: OnStart | None
    on_message: OnMessage | None
    on_exit: OnExit | None
    trap_exit: bool
    owner: SpareOwner | None
    done: threading.Event = field(default_factory=threading.Event)
    proc: Proc | None = None
    error: str | None = None


class Hub:
    """Owns the engine's end of the zygote's control socket and every live process child."""

    def __init__(self, ctl: socket.socket, zygote_pid: int) -> None:
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
        self._pending: dict[int, _Pending] = {}
        self._reqs = itertools.count(1)
        self._refs = itertools.count(1)
        self._links = LinkTable()
        self._exited: dict[int, ExitReason] = {}
        self._calls: deque[Callable[[], None]] = deque()  # run by the hub thread, see _post
        self._round = Round()  # hands over the callbacks' `Batch` items once per select() round
        self._closed = False
        self.spares_adopted = 0
        """Speculative restarts taken (statistics, for tests and benchmarks)."""
        self.spares_discarded = 0
        """Speculative restarts killed because their owner did not want them."""
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
        data = pack(msg)
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
        try:
            packed_args = list(args)
            pack(packed_args)
        except (TypeError, ValueError, msgpack.PackException) as exc:
            raise SpawnError(f"process args must be msgpack-serialisable: {exc}") from exc
        if not self._zygote_alive:
            raise SpawnError("the zygote is not running")
        # The zygote makes the channel (or has one ready in a pool host) and sends the owner's end with "spawned".
        pending = _Pending(on_start, on_message, on_exit, trap_exit, owner)
        req = next(self._reqs)
        with self._lock:
            self._pending[req] = pending
        try:
            self.send_ctl(["spawn", req, ref, packed_args, arm, recycle])
        except SpawnError:
            with self._lock:
                self._pending.pop(req, None)
            raise
        if not pending.done.wait(timeout):
            with self._lock:
                gave_up = self._pending.pop(req, None) is not None
            if gave_up:  # its process, if the zygote starts it after all, is killed (see _spawned)
                raise SpawnError(f"the zygote did not start {ref} within {timeout}s")
            pending.done.wait()  # the answer came as we gave up: the hub thread is finishing the spawn
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

    def disarm(self, proc: Proc) -> None:
        """No speculative restart for this incarnation any more."""
        with contextlib.suppress(SpawnError):
            self.send_ctl(["disarm", proc.pid, proc.token])

    def proc(self, pid: int) -> Proc | None:
        """The live process record for ``pid``."""
        with self._lock:
            return self._procs.get(pid)

    def pids(self) -> list[int]:
        """Pids of the live process children (spares not adopted are not listed)."""
        with self._lock:
            return [pid for pid, proc in self._procs.items() if not proc.provisional]

    # -- spares (speculative restarts) --------------------------------------------------------------

    def _post(self, call: Callable[[], None]) -> bool:
        """Run ``call`` in the hub thread; False if the hub is gone."""
        with self._lock:
            if self._closed:
                return False
            self._calls.append(call)
        self.wake()
        return True

    def adopt(
        self,
        spare: Proc,
        *,
        on_start: OnStart | None,
        on_message: OnMessage | None,
        on_exit: OnExit | None,
        timeout: float = 10.0,
    ) -> bool:
        """Take ``spare`` as a new process child (any thread): the hub calls ``on_start``, then delivers its
        messages, then its exit. Returns once ``on_start`` has run, as `spawn` does; False if the hub is gone
        (the spare is then dead)."""
        done = threading.Event()
        gate = threading.Lock()
        state = {"started": False, "cancelled": False, "adopted": False}

        def adopt() -> None:
            with gate:
                state["started"] = not state["cancelled"]
            try:
                if state["started"]:
                    state["adopted"] = self._adopt(spare, on_start, on_message, on_exit)
                else:
                    self._discard(spare)
            finally:
                done.set()

        if not self._post(adopt):
            return False
        if not done.wait(timeout):
            with gate:
                state["cancelled"] = not state["started"]
            if state["cancelled"]:
                return False  # the hub will discard it
            done.wait()
        return state["adopted"]

    def _adopt(
        self, spare: Proc, on_start: OnStart | None, on_message: OnMessage | None, on_exit: OnExit | None
    ) -> bool:
        if spare.discarded or not spare.provisional:
            return False
        spare.on_message = on_message
        spare.on_exit = on_exit
        spare.provisional = False
        self.spares_adopted += 1
        if on_start is not None:
            try:
                on_start(spare.pid, spare.channel)
            except Exception:
                logger.exception("on_start of process %d failed", spare.pid)
        if spare.held is not None:
            status, next_spare = spare.held
            spare.held = None
            self._read_channel(spare, drain=True)  # what it sent before dying
            self._finish_exit(spare, status, next_spare)
        else:
            self._sel.register(spare.channel.fileno(), selectors.EVENT_READ, spare)
            spare.registered = True
            self._read_channel(spare)  # what it sent before adoption
        return True

    def discard(self, spare: Proc) -> None:
        """Kill a spare nobody wants, with no callback (any thread)."""
        self._post(lambda: self._discard(spare))

    def close_owner(self, owner: SpareOwner) -> None:
        """``owner`` takes no more spares: discard those it holds or would get (any thread)."""

        def close() -> None:
            owner.closed = True
            with self._lock:
                spares = [p for p in self._procs.values() if p.owner is owner and p.provisional]
            for spare in spares:
                self._discard(spare)

        self._post(close)

    def _discard(self, spare: Proc) -> None:
        """Hub thread: kill a provisional spare, or forget it if it is already dead."""
        if spare.discarded or not spare.provisional:
            return
        spare.discarded = True
        spare.shutdown_requested = True
        spare.on_exit = None
        self.spares_discarded += 1
        if spare.held is not None:
            status, next_spare = spare.held
            spare.held = None
            self._finish_exit(spare, status, next_spare)
        else:
            self.signal_proc(spare, signal.SIGKILL, disarm=True)

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

    # -- links and monitors -------------------------------------------------------------------------

    def link(self, a: int, b: int) -> None:
        """Link two process children; a dead one sends a ``noproc`` exit signal to the other at once."""
        with self._lock:
            pa, pb = self._procs.get(a), self._procs.get(b)
            if pa is not None and pb is not None:
                self._links.link(a, b)
                return
        noproc = ExitReason(kind="noproc")
        if pa is not None:
            self._exit_signal(pa, b, noproc)
        if pb is not None:
            self._exit_signal(pb, a, noproc)

    def unlink(self, a: int, b: int) -> None:
        """Remove a link."""
        with self._lock:
            self._links.unlink(a, b)

    def links_of(self, pid: int) -> set[int]:
        """Pids linked to ``pid``."""
        with self._lock:
            return self._links.links_of(pid)

    def set_trap_exit(self, pid: int, flag: bool) -> None:
        """Make a process child trap exits (or not)."""
        proc = self.proc(pid)
        if proc is not None:
            proc.trap_exit = flag

    def monitor(self, pid: int, notify: Notify) -> int:
        """Monitor ``pid``: ``notify`` gets one `Down` when it exits (at once if it is already dead)."""
        ref = next(self._refs)
        self._add_monitor(ref, pid, notify)
        return ref

    def _add_monitor(self, ref: int, pid: int, notify: Notify) -> None:
        with self._lock:
            if pid in self._procs:
                self._links.add_monitor(ref, pid, notify)
                return
        self._deliver_down(notify, Down(ref, pid, self._exited.get(pid, ExitReason(kind="noproc"))))

    def demonitor(self, ref: int) -> bool:
        """Cancel a monitor; False if it had already fired or did not exist."""
        with self._lock:
            return self._links.remove_monitor(ref)

    def _deliver_down(self, notify: Notify, down: Down) -> None:
        try:
            if isinstance(notify, ChildMonitor):
                proc = self.proc(notify.owner)
                if proc is not None:
                    body = pack(["down", notify.local_ref, down.pid, down.reason.to_dict()])
                    proc.channel.send_frame(SYSTEM, body)
            elif hasattr(notify, "tell"):
                notify.tell(down)
            else:
                notify(down)
        except Exception:
            logger.exception("delivering %r failed", down)

    def _exit_signal(self, target: Proc, from_pid: int, reason: ExitReason) -> None:
        """Deliver an exit signal from ``from_pid`` to ``target``: a message if it traps exits, else death."""
        if target.trap_exit:
            with contextlib.suppress(Exception):
                target.channel.send_frame(SYSTEM, pack(["exit", from_pid, reason.to_dict()]))
        elif reason.kind != "normal":
            target.link_kill = f"linked process {from_pid} exited: {reason}"
            self.signal_proc(target, signal.SIGKILL)

    # -- the thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        self._round.begin()
        try:
            while True:
                for key, _ in self._sel.select():
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
                    pending.done.set()
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
            pending.done.set()  # its caller may be waiting without a timeout (see spawn)

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

    def _request(self, proc: Proc, req: list[Any]) -> None:
        op = req[0]
        if op == "link":
            self.link(proc.pid, req[1])
        elif op == "unlink":
            self.unlink(proc.pid, req[1])
        elif op == "monitor":
            self._add_monitor(next(self._refs), req[2], ChildMonitor(proc.pid, req[1]))
        elif op == "demonitor":
            with self._lock:
                ref = self._links.child_ref(proc.pid, req[1])
                if ref is not None:
                    self._links.remove_monitor(ref)
        elif op == "trap_exit":
            proc.trap_exit = bool(req[1])

    def _exit(self, pid: int, status: int | None, started: tuple[int, int, int] | None = None) -> None:
        """The zygote reported ``pid``'s exit, and ``started`` (pid, token, channel fd) of a speculative restart."""
        proc = self.proc(pid)
        spare = None
        if started is not None:
            spare_pid, spare_token, spare_fd = started
            _fds.register(spare_fd)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=spare_fd)
            spare = Proc(
                spare_pid,
                OwnerChannel(sock, spare_pid),
                None,
                None,
                proc.trap_exit if proc is not None else False,
                token=spare_token,
                owner=proc.owner if proc is not None else None,
                provisional=True,
            )
            with self._lock:
                self._procs[spare_pid] = spare
                self._exited.pop(spare_pid, None)
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
        if spare is not None and (
            proc.on_exit is None or proc.shutdown_requested or (proc.owner is not None and proc.owner.closed)
        ):
            self._discard(spare)
            spare = None
        # Everything the child wrote before dying is in the socket buffer: drain it first.
        if proc.registered:
            self._read_channel(proc, drain=True)
            self._unregister(proc)
        # What it (and any process this round) sent reaches the batches' consumers before its exit does.
        self._round.end()
        reason = self._reason(proc, status)
        monitors: list[tuple[int, Notify]] = []
        linked: list[Proc] = []
        with self._lock:
            # A spare whose exit was held may have been recycled since, its pid now another incarnation's: what
            # is kept by pid (the record, monitors, links) is that one's, not this one's.
            if self._procs.get(pid) is proc:
                del self._procs[pid]
                self._exited[pid] = reason
                if len(self._exited) > 10_000:
                    self._exited.pop(next(iter(self._exited)))
                monitors = self._links.pop_monitors(pid)
                self._links.drop_owner(pid)
                linked = [p for p in (self._procs.get(x) for x in self._links.pop_links(pid)) if p is not None]
        _fds.unregister(proc.channel.fileno())
        proc.channel.close()
        proc.reason = reason
        for ref, notify in monitors:
            self._deliver_down(notify, Down(ref, pid, reason))
        for other in linked:
            self._exit_signal(other, pid, reason)
        if proc.on_exit is not None:
            try:
                proc.on_exit(pid, reason, spare)
            except Exception:
                logger.exception("on_exit of process %d failed", pid)
                if spare is not None:
                    self._discard(spare)
        proc.exited.set()

    @staticmethod
    def _reason(proc: Proc, status: int | None) -> ExitReason:
        if proc.exc_info is not None:
            exc_type, message, tb = proc.exc_info
            return ExitReason(kind="exception", exc_type=exc_type, message=message, traceback=tb)
        if status is None:
            base = ExitReason.killed_by(signal.SIGKILL, "the zygote exited")
        else:
            base = ExitReason.from_wait_status(status)
        if proc.shutdown_requested:
            return ExitReason(kind="shutdown", signal=base.signal, exit_code=base.exit_code)
        if proc.link_kill is not None and base.kind == "killed":
            return ExitReason(kind="killed", signal=base.signal, message=proc.link_kill)
        return base

    def _zygote_gone(self) -> None:
        self._zygote_alive = False
        with self._lock:
            self._closed = True
            pendings = list(self._pending.values())
            self._pending.clear()
        self._run_calls()
        for pending in pendings:
            pending.error = "the zygote exited"
            pending.done.set()
        try:
            _, status = os.waitpid(self._zygote_pid, 0)
            self.zygote_status = status
        except ChildProcessError:
            pass
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
