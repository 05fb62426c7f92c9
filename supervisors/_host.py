"""What runs inside the zygote and inside the process children it forks (never in the engine)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import select
import selectors
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

from . import _fds
from ._channel import DATA, Channel, FrameReader, frame, make_pair, pack, unpack
from ._specs import resolve_target

CTL_BUFFER = 1 << 20
MAX_CTL_MESSAGE = 1 << 20
REFILL_DELAY = 0.003
MAX_ARMED_PAYLOAD = 1 << 16


class _Terminated(BaseException):
    """Raised in a process child by SIGTERM, so that its ``finally`` blocks run before it dies of SIGTERM."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_target(fd: int | Channel, ref: str, args: list[Any]) -> NoReturn:
    """Run ``target(channel, *args)`` in this (child) process, report an exception, and exit."""
    code = 70
    terminated = False
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        channel = fd if isinstance(fd, Channel) else Channel(socket.socket(fileno=fd))
        try:
            target = resolve_target(ref)
            target(channel, *args)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except _Terminated:
            terminated = True
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                channel.send_exit_info(exc)
            code = 1
    finally:
        _flush_stdio()
        if terminated:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        os._exit(code)


def _warm_up(channel: Channel) -> None:
    """In an idle pool host: run the code a child runs first (decode its target, resolve it, receive), so that
    the copy-on-write page faults it causes happen now rather than when it is handed a child."""
    ref, args = unpack(pack([f"{__name__}:run_target", [1, "x", b"y", 1.5, None, {"k": [True]}]]))
    resolve_target(ref)
    channel.poll(0.0)
    reader = FrameReader()
    reader.feed(frame(DATA, pack(["ping", args])))
    item = reader.next()
    if item is not None:
        unpack(item[1])


def _noop(signum: int, frame: Any) -> None:
    pass


def _abnormal(status: int) -> bool:
    """True for a wait status that is a death by signal or a non-zero exit code."""
    return os.WIFSIGNALED(status) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0)


class ZygoteServer:
    """The zygote's loop: fork process children (or hand them to idle pool hosts), reap them, report exits.

    Children spawned *armed* get a **speculative restart**: when one dies abnormally and an idle pool host is
    ready, the zygote hands that host the same target and args at once, with a new channel, and reports the
    exit and the replacement in one message (``["exit", pid, status, new_pid]`` plus the owner's end of the
    new channel). The engine adopts the replacement or kills it. The replacement is armed too.
    """

    def __init__(self, ctl: socket.socket, warm_pool: int) -> None:
        self.ctl = ctl
        self.warm_pool = warm_pool
        self.pid = os.getpid()
        self.children: set[int] = set()
        self.armed: dict[int, bytes] = {}  # pid -> packed [ref, args], for a speculative restart
        # pid -> (control socket, owner's end of a channel made in advance for a speculative restart)
        self.idle: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.wake_r, self.wake_w = os.pipe()
        self.sel = selectors.DefaultSelector()

    def run(self) -> NoReturn:
        """Serve until the engine says stop or closes its end."""
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _noop)
        self.ctl.setblocking(False)
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        while True:
            need = len(self.idle) < self.warm_pool
            # Refill the pool only once things are quiet for a moment: a fork right after a hand-off would
            # compete for the CPU with the child that is starting.
            events = self.sel.select(REFILL_DELAY if need else None)
            for key, _ in events:
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                elif not self.read_ctl():
                    self.shutdown()
            if not events and need:
                self.fork_host()

    def send(self, msg: list[Any], fds: list[int] | None = None) -> None:
        """Send one control message to the engine (waiting if its buffer is full)."""
        data = pack(msg)
        while True:
            try:
                if fds:
                    socket.send_fds(self.ctl, [data], fds)
                else:
                    self.ctl.send(data)
                return
            except BlockingIOError:
                select.select([], [self.ctl], [], 1.0)
            except OSError:
                self.shutdown()

    def read_ctl(self) -> bool:
        """Handle every pending control message; False when the engine is gone or asked us to stop."""
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.ctl, MAX_CTL_MESSAGE, 4)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            msg = unpack(data)
            op = msg[0]
            if op == "spawn":
                self.spawn(msg[1], msg[2], msg[3], fds[0], len(msg) > 4 and bool(msg[4]))
            elif op == "signal":
                if len(msg) > 3 and msg[3]:
                    self.armed.pop(msg[1], None)
                if msg[1] in self.children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(msg[1], msg[2])
            elif op == "disarm":
                self.armed.pop(msg[1], None)
            elif op == "stop":
                return False
            for fd in fds[1:]:
                os.close(fd)

    def spawn(self, req: int, ref: str, args: list[Any], fd: int, arm: bool = False) -> None:
        """Start ``ref(channel, *args)`` on the channel end ``fd``: hand-off to an idle host, else fork."""
        try:
            resolve_target(ref)
        except Exception as exc:
            os.close(fd)
            self.send(["error", req, f"{type(exc).__name__}: {exc}"])
            return
        pid = 0
        pooled = False
        while self.idle:
            hpid = next(iter(self.idle))
            hsock, hchan = self.idle.pop(hpid)
            hchan.close()
            try:
                socket.send_fds(hsock, [pack([ref, args])], [fd])
            except OSError:
                hsock.close()
                continue
            hsock.close()
            pid, pooled = hpid, True
            break
        if not pid:
            pid = os.fork()
            if pid == 0:
                try:
                    self.become_child()
                    run_target(fd, ref, args)
                finally:
                    os._exit(70)
        os.close(fd)
        self.children.add(pid)
        if arm:
            payload = pack([ref, args])
            if len(payload) <= MAX_ARMED_PAYLOAD:  # sent to a pool host in one datagram
                self.armed[pid] = payload
        self.send(["spawned", req, pid, pooled])

    def fork_host(self) -> None:
        """Fork one idle pool host, with its control socket and a channel ready for a speculative restart."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        chan_mine, chan_theirs = make_pair()
        pid = os.fork()
        if pid == 0:
            try:
                self.become_child()
                mine.close()
                chan_mine.close()
                self.host_wait(theirs, chan_theirs)
            finally:
                os._exit(70)
        theirs.close()
        chan_theirs.close()
        self.idle[pid] = (mine, chan_mine)

    def become_child(self) -> None:
        """In a freshly forked child of the zygote: drop the zygote's descriptors and handlers."""
        _fds.die_with_parent(self.pid)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sel.close()
        self.ctl.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for hsock, hchan in self.idle.values():
            hsock.close()
            hchan.close()
        self.idle.clear()

    @staticmethod
    def host_wait(sock: socket.socket, chan: socket.socket) -> NoReturn:
        """An idle pool host: wait for a target (and a channel, else use the one made with it), then run it."""
        channel = Channel(chan)
        _warm_up(channel)
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_CTL_MESSAGE, 1)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)
        sock.close()
        ref, args = unpack(data)
        if fds:
            channel.close()
            run_target(fds[0], ref, args)
        run_target(channel, ref, args)

    def reap(self) -> None:
        """Collect every dead child; report process children to the engine."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                payload = self.armed.pop(pid, None)
                if payload is None or not self.idle or not _abnormal(status):
                    self.send(["exit", pid, status])
                else:
                    self.respawn(pid, status, payload)
            else:
                host = self.idle.pop(pid, None)
                if host is not None:
                    host[0].close()
                    host[1].close()

    def respawn(self, pid: int, status: int, payload: bytes) -> None:
        """Report the exit of ``pid`` together with a replacement handed to an idle host (see the class).

        The engine is told first: its side (exit handling, the supervisor's decision, ``on_start``) is the
        longer path, and a pool host starts in a fraction of it. The replacement counts as our child before
        the host is sent anything, so if the host turns out to be dead its exit is reported like any other.
        """
        hpid, (hsock, hchan) = self.idle.popitem()
        self.children.add(hpid)
        self.armed[hpid] = payload
        try:
            self.send(["exit", pid, status, hpid], [hchan.fileno()])
            with contextlib.suppress(OSError):
                hsock.send(payload)  # the host runs it on the channel made with it
        finally:
            hchan.close()
            hsock.close()

    def shutdown(self) -> NoReturn:
        """Kill everything we forked, reap it, and exit."""
        for pid in list(self.children) + list(self.idle):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        os._exit(0)


def zygote_main(ctl: socket.socket, preload: list[str], warm_pool: int, engine_pid: int) -> NoReturn:
    """Entry point of the forked zygote."""
    _fds.die_with_parent(engine_pid)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException:
        ctl.send(pack(["error", traceback.format_exc()]))
        os._exit(1)
    gc.collect()
    gc.freeze()
    ctl.send(pack(["ready", os.getpid()]))
    ZygoteServer(ctl, warm_pool).run()
