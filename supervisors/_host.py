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
from ._channel import Channel, pack, unpack
from ._specs import resolve_target

CTL_BUFFER = 1 << 20
MAX_CTL_MESSAGE = 1 << 20
REFILL_DELAY = 0.003


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


def run_target(fd: int, ref: str, args: list[Any]) -> NoReturn:
    """Run ``target(channel, *args)`` in this (child) process, report an exception, and exit."""
    code = 70
    terminated = False
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        channel = Channel(socket.socket(fileno=fd))
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


def _noop(signum: int, frame: Any) -> None:
    pass


class ZygoteServer:
    """The zygote's loop: fork process children (or hand them to idle pool hosts), reap them, report exits."""

    def __init__(self, ctl: socket.socket, warm_pool: int) -> None:
        self.ctl = ctl
        self.warm_pool = warm_pool
        self.pid = os.getpid()
        self.children: set[int] = set()
        self.idle: dict[int, socket.socket] = {}
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

    def send(self, msg: list[Any]) -> None:
        """Send one control message to the engine (waiting if its buffer is full)."""
        data = pack(msg)
        while True:
            try:
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
                self.spawn(msg[1], msg[2], msg[3], fds[0])
            elif op == "signal":
                if msg[1] in self.children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(msg[1], msg[2])
            elif op == "stop":
                return False
            for fd in fds[1:]:
                os.close(fd)

    def spawn(self, req: int, ref: str, args: list[Any], fd: int) -> None:
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
            hsock = self.idle.pop(hpid)
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
        self.send(["spawned", req, pid, pooled])

    def fork_host(self) -> None:
        """Fork one idle pool host."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                self.become_child()
                mine.close()
                self.host_wait(theirs)
            finally:
                os._exit(70)
        theirs.close()
        self.idle[pid] = mine

    def become_child(self) -> None:
        """In a freshly forked child of the zygote: drop the zygote's descriptors and handlers."""
        _fds.die_with_parent(self.pid)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sel.close()
        self.ctl.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for s in self.idle.values():
            s.close()
        self.idle.clear()

    @staticmethod
    def host_wait(sock: socket.socket) -> NoReturn:
        """An idle pool host: wait for a target and a channel, then run it."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_CTL_MESSAGE, 1)
        except OSError:
            os._exit(0)
        if not data or not fds:
            os._exit(0)
        sock.close()
        ref, args = unpack(data)
        run_target(fds[0], ref, args)

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
                self.send(["exit", pid, status])
            else:
                host = self.idle.pop(pid, None)
                if host is not None:
                    host.close()

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
