"""What runs inside the zygote and inside the process children it forks (never in the engine)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import os
import select
import selectors
import signal
import socket
import sys
import time
import traceback
from typing import Any, NoReturn

from . import _fds
from ._channel import DATA, Channel, FrameReader, frame, make_pair, pack, unpack, wait_ready
from ._specs import resolve_target

CTL_BUFFER = 1 << 20
MAX_CTL_MESSAGE = 1 << 20
REFILL_DELAY = 0.003
MAX_ARMED_PAYLOAD = 1 << 16
#: A recyclable child runs at most this many targets in turn, then exits (bounds what one process accumulates).
MAX_RUNS_PER_HOST = 500
#: Recycled idle hosts kept per target reference; a host offered back beyond this exits.
MAX_RECYCLED_IDLE = 64


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


def run_target(fd: int | Channel, ref: str, args: list[Any], host: socket.socket | None = None) -> NoReturn:
    """Run ``target(channel, *args)`` in this (child) process, report an exception, and exit.

    ``host`` (a recyclable child's control socket to the zygote): when the target returns normally, the
    process does not exit but offers itself back to the zygote and runs the next target it is handed for the
    same reference (see `ZygoteServer`), up to `MAX_RUNS_PER_HOST` targets.
    """
    runs = 0
    while True:
        code = _run_one(fd, ref, args)
        runs += 1
        if host is None or code != 0 or runs >= MAX_RUNS_PER_HOST:
            os._exit(code)
        task = _recycle(host)
        if task is None:
            os._exit(0)
        fd, ref, args, recycle = task
        if not recycle:
            host.close()
            host = None


def _run_one(fd: int | Channel, ref: str, args: list[Any]) -> int:
    """Run one target on its channel and close the channel; return its exit code. A SIGTERM during the target
    kills the process (after its ``finally`` blocks ran), as if it had not been caught."""
    code = 70
    terminated = False
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
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if terminated:
        os.kill(os.getpid(), signal.SIGTERM)
    channel.close()
    return code


def _recycle(host: socket.socket) -> tuple[int | Channel, str, list[Any], bool] | None:
    """Offer this process back to the zygote (``["done"]`` with the owner's end of a fresh channel, which the
    zygote keeps for a speculative restart) and wait for the next target: ``(channel, ref, args, recycle)``,
    or None if the zygote does not want this process any more."""
    mine, theirs = make_pair()
    try:
        socket.send_fds(host, [pack(["done"])], [mine.fileno()])
        mine.close()
        return _receive_target(host, Channel(theirs))
    except OSError:
        return None


def _receive_target(host: socket.socket, channel: Channel) -> tuple[int | Channel, str, list[Any], bool] | None:
    """An idle host: wait for ``[ref, args, recycle]`` and, if the zygote sends one, a channel (else the target
    runs on ``channel``, the one made in advance); None on EOF."""
    data, fds, _flags, _addr = socket.recv_fds(host, MAX_CTL_MESSAGE, 1)
    if not data:
        return None
    ref, args, recycle = unpack(data)
    if fds:
        channel.close()
        return fds[0], ref, args, bool(recycle)
    return channel, ref, args, bool(recycle)


#: The zygote user's own warm-up (``Zygote.start(warm_up=...)``), inherited by every pool host.
_user_warm_up: str | None = None


def _warm_up(channel: Channel) -> None:
    """In an idle pool host: run the code a child runs first (decode its target, resolve it, receive), so that
    the copy-on-write page faults it causes happen now rather than when it is handed a child."""
    if _user_warm_up is not None:
        with contextlib.suppress(Exception):
            resolve_target(_user_warm_up)()
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
    exit and the replacement in one message (``["exit", pid, status, new_pid, token]`` plus the owner's end of
    the new channel). The engine adopts the replacement or kills it. The replacement is armed too.

    Children spawned *recyclable* keep a control socket to the zygote. When their target returns normally they
    say ``done`` on it instead of exiting: the zygote reports a normal exit (``["exit", pid, 0]``) and keeps
    the process as an idle host for the next spawn of the same target reference, which is then a hand-off of
    a socket, with no fork, no page faults and no exit. A pid may thus host several children in turn, so
    every incarnation has a **token** (reported with ``spawned``); a ``signal`` naming another token than the
    pid's current one is ignored.
    """

    def __init__(self, ctl: socket.socket, warm_pool: int) -> None:
        self.ctl = ctl
        self.warm_pool = warm_pool
        self.pid = os.getpid()
        self.children: dict[int, int] = {}  # pid -> token of its current incarnation
        self.tokens = itertools.count(1)
        self.armed: dict[int, bytes] = {}  # pid -> packed [ref, args, recycle], for a speculative restart
        # Recyclable children: pid -> (their control socket, their target reference).
        self.recyclers: dict[int, tuple[socket.socket, str]] = {}
        # Idle recycled hosts, by target reference: pid -> (control socket, owner's end of a spare channel).
        self.recycled: dict[str, dict[int, tuple[socket.socket, socket.socket]]] = {}
        self.retired: set[int] = set()  # recycled hosts told to exit, not reaped yet
        # pid -> (control socket, owner's end of a channel made in advance for a speculative restart)
        self.idle: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.wake_r, self.wake_w = os.pipe()
        self.sel = selectors.DefaultSelector()
        # Pool hosts are forked by the nursery, not by the zygote: a fork makes every page of the forking
        # process copy-on-write, and the zygote would then pay page faults (and the fork itself) on the path
        # from a crash to its report. Hosts reach the zygote as children: it is a child subreaper.
        self.nursery_pid = 0
        self.nursery: socket.socket | None = None
        self.requested = 0  # hosts asked of the nursery, not yet arrived
        self.lost: set[int] = set()  # pids reaped before we knew them (a host that died before arriving)

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
            need = len(self.idle) + self.requested < self.warm_pool
            # Refill the pool only once things are quiet for a moment: a fork right after a hand-off would
            # compete for the CPU with the child that is starting.
            events = self.sel.select(REFILL_DELAY if need else None)
            for key, _ in events:
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                elif key.data == "nursery":
                    self.read_nursery()
                elif isinstance(key.data, int):
                    self.read_recycler(key.data)
                elif not self.read_ctl():
                    self.shutdown()
            if not events and need:
                self.refill()

    def refill(self) -> None:
        """Ask the nursery for the hosts the pool lacks (starting the nursery if needed)."""
        if self.nursery is None:
            self.start_nursery()
        assert self.nursery is not None
        count = self.warm_pool - len(self.idle) - self.requested
        try:
            self.nursery.send(pack(["fork", count]))
        except OSError:
            self.stop_nursery()
            return
        self.requested += count

    def start_nursery(self) -> None:
        """Fork the nursery, the process that forks pool hosts."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                self.become_child()
                mine.close()
                _nursery_main(theirs, self.pid)
            finally:
                os._exit(70)
        theirs.close()
        mine.setblocking(False)
        self.nursery_pid, self.nursery = pid, mine
        self.sel.register(mine, selectors.EVENT_READ, "nursery")
        self.send(["nursery", pid])

    def stop_nursery(self) -> None:
        """Forget the nursery (it died, or its socket broke); a new one is started when hosts are needed."""
        if self.nursery is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.nursery)
            self.nursery.close()
        if self.nursery_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.nursery_pid, signal.SIGKILL)
        self.nursery, self.nursery_pid, self.requested = None, 0, 0

    def read_nursery(self) -> None:
        """Take in the hosts that arrived: ``["host", pid]`` with its control socket and channel."""
        while self.nursery is not None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.nursery, 1024, 2)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                self.stop_nursery()
                return
            pid = unpack(data)[1]
            self.requested = max(0, self.requested - 1)
            hsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fds[0])
            hchan = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fds[1])
            if pid in self.lost:
                self.lost.discard(pid)
                hsock.close()
                hchan.close()
            else:
                self.idle[pid] = (hsock, hchan)

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
                wait_ready(self.ctl, select.POLLOUT, 1.0)
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
                self.spawn(msg[1], msg[2], msg[3], arm=bool(msg[4]), recycle=bool(msg[5]))
            elif op == "signal":
                _, pid, signum, disarm, token = msg
                if self.children.get(pid) == token:
                    if disarm:
                        self.armed.pop(pid, None)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)
            elif op == "disarm":
                if self.children.get(msg[1]) == msg[2]:
                    self.armed.pop(msg[1], None)
            elif op == "stop":
                return False
            for fd in fds[1:]:
                os.close(fd)

    def spawn(self, req: int, ref: str, args: list[Any], *, arm: bool, recycle: bool) -> None:
        """Start ``ref(channel, *args)``: hand-off to an idle host (a recycled one of the same ``ref`` first),
        which runs it on the channel made with it, else fork with a new channel. The owner's end of the channel
        goes to the engine with ``spawned`` (so the engine makes no socket pair on its way to a spawn)."""
        try:
            resolve_target(ref)
        except Exception as exc:
            self.send(["error", req, f"{type(exc).__name__}: {exc}"])
            return
        payload = pack([ref, args, recycle])
        pid, control, owner = self.hand_off(self.recycled.get(ref, {}), payload, recycle)
        if not pid:
            pid, control, owner = self.hand_off(self.idle, payload, recycle)
        pooled = bool(pid)
        if not pid:
            owner, child_end = make_pair()
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if recycle else (None, None)
            pid = os.fork()
            if pid == 0:
                try:
                    self.become_child()
                    owner.close()
                    if mine is not None:
                        mine.close()
                    run_target(child_end.detach(), ref, args, theirs)
                finally:
                    os._exit(70)
            child_end.close()
            if theirs is not None:
                theirs.close()
            control = mine
        token = next(self.tokens)
        self.children[pid] = token
        if control is not None:
            self.watch_recycler(pid, control, ref)
        if arm and len(payload) <= MAX_ARMED_PAYLOAD:  # sent to a pool host in one datagram
            self.armed[pid] = payload
        assert owner is not None
        try:
            self.send(["spawned", req, pid, pooled, token], [owner.fileno()])
        finally:
            owner.close()

    @staticmethod
    def hand_off(
        hosts: dict[int, tuple[socket.socket, socket.socket]], payload: bytes, recycle: bool
    ) -> tuple[int, socket.socket | None, socket.socket | None]:
        """Hand ``payload`` to one of ``hosts``, which runs it on the channel made with it: its pid (0 if none
        took it), for a recyclable child its control socket (else closed), and the owner's end of its channel."""
        while hosts:
            hpid = next(iter(hosts))
            hsock, hchan = hosts.pop(hpid)
            try:
                hsock.send(payload)
            except OSError:
                hsock.close()
                hchan.close()
                continue
            if recycle:
                return hpid, hsock, hchan
            hsock.close()
            return hpid, None, hchan
        return 0, None, None

    def watch_recycler(self, pid: int, control: socket.socket, ref: str) -> None:
        """Listen on a recyclable child's control socket for its ``done``."""
        control.setblocking(False)
        self.recyclers[pid] = (control, ref)
        self.sel.register(control, selectors.EVENT_READ, pid)

    def forget_recycler(self, pid: int) -> tuple[socket.socket, str] | None:
        """Stop listening to ``pid``'s control socket (it is idle, retired or dead)."""
        entry = self.recyclers.pop(pid, None)
        if entry is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(entry[0])
        return entry

    def read_recycler(self, pid: int) -> None:
        """A recyclable child said ``done`` (its target returned): report its normal exit and keep it idle for
        the next spawn of the same reference (or tell it to exit, if enough are idle). Anything else on the
        socket means it died; its exit is reported when it is reaped."""
        entry = self.recyclers.get(pid)
        if entry is None:
            return
        control, ref = entry
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, 1024, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        self.forget_recycler(pid)
        if not data or len(fds) != 1 or pid not in self.children:
            for fd in fds:
                os.close(fd)
            control.close()
            return
        del self.children[pid]
        self.armed.pop(pid, None)
        self.send(["exit", pid, 0])
        spare_channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fds[0])
        idle = self.recycled.setdefault(ref, {})
        if len(idle) < MAX_RECYCLED_IDLE:
            control.setblocking(True)
            idle[pid] = (control, spare_channel)
        else:
            control.close()
            spare_channel.close()
            self.retired.add(pid)

    def become_child(self) -> None:
        """In a freshly forked child of the zygote: drop the zygote's descriptors and handlers."""
        _fds.die_with_parent(self.pid)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sel.close()
        self.ctl.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for hosts in (self.idle, *self.recycled.values()):
            for hsock, hchan in hosts.values():
                hsock.close()
                hchan.close()
        self.idle.clear()
        self.recycled.clear()
        for control, _ref in self.recyclers.values():
            control.close()
        self.recyclers.clear()
        if self.nursery is not None:
            self.nursery.close()
            self.nursery = None

    @staticmethod
    def host_wait(sock: socket.socket, chan: socket.socket) -> NoReturn:
        """An idle pool host: wait for a target (and a channel, else use the one made with it), then run it."""
        channel = Channel(chan)
        _warm_up(channel)
        try:
            task = _receive_target(sock, channel)
        except OSError:
            task = None
        if task is None:
            os._exit(0)
        fd, ref, args, recycle = task
        if not recycle:
            sock.close()
        run_target(fd, ref, args, sock if recycle else None)

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
                del self.children[pid]
                entry = self.forget_recycler(pid)
                if entry is not None:
                    entry[0].close()
                payload = self.armed.pop(pid, None)
                if payload is None or not self.idle or not _abnormal(status):
                    self.send(["exit", pid, status])
                else:
                    self.respawn(pid, status, payload)
            elif pid == self.nursery_pid:
                self.nursery_pid = 0
                self.stop_nursery()
            elif pid in self.retired:
                self.retired.discard(pid)
            else:
                host = self.idle.pop(pid, None) or self._pop_recycled(pid)
                if host is not None:
                    host[0].close()
                    host[1].close()
                elif self.requested and len(self.lost) < 1024:
                    self.lost.add(pid)

    def _pop_recycled(self, pid: int) -> tuple[socket.socket, socket.socket] | None:
        for hosts in self.recycled.values():
            if pid in hosts:
                return hosts.pop(pid)
        return None

    def respawn(self, pid: int, status: int, payload: bytes) -> None:
        """Report the exit of ``pid`` together with a replacement handed to an idle host (see the class).

        The engine is told first: its side (exit handling, the supervisor's decision, ``on_start``) is the
        longer path, and a pool host starts in a fraction of it. The replacement counts as our child before
        the host is sent anything, so if the host turns out to be dead its exit is reported like any other.
        """
        hpid, (hsock, hchan) = self.idle.popitem()
        token = next(self.tokens)
        self.children[hpid] = token
        self.armed[hpid] = payload
        ref, _args, recycle = unpack(payload)
        try:
            self.send(["exit", pid, status, hpid, token], [hchan.fileno()])
            with contextlib.suppress(OSError):
                hsock.send(payload)  # the host runs it on the channel made with it
        finally:
            hchan.close()
            if recycle:
                self.watch_recycler(hpid, hsock, ref)
            else:
                hsock.close()

    def shutdown(self) -> NoReturn:
        """Kill every child we have (and hosts on their way to us), reap them, and exit."""
        known = set(self.children) | set(self.idle) | self.retired | {self.nursery_pid}
        for hosts in self.recycled.values():
            known |= set(hosts)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            for pid in known | _children_of(self.pid):
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            known = set()
            time.sleep(0.001)
        os._exit(0)


def _children_of(pid: int) -> set[int]:
    """The live children of ``pid`` (a single-threaded process), from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def _nursery_main(sock: socket.socket, zygote_pid: int) -> NoReturn:
    """The nursery: fork pool hosts on request, each through a short-lived intermediate process, so that the
    host is re-parented to the zygote (a child subreaper) and the zygote never has to fork itself."""
    sock.setblocking(True)
    while True:
        try:
            data = sock.recv(1024)
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)
        msg = unpack(data)
        if msg[0] == "fork":
            for _ in range(msg[1]):
                _fork_host(sock, zygote_pid)


def _fork_host(nursery: socket.socket, zygote_pid: int) -> None:
    """In the nursery: fork one pool host (via an intermediate that exits at once)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    chan_mine, chan_theirs = make_pair()
    middle = os.fork()
    if middle == 0:
        try:
            middle = os.getpid()
            if os.fork() == 0:
                _host_main(nursery, zygote_pid, middle, (mine, theirs), (chan_mine, chan_theirs))
        finally:
            os._exit(0)
    for s in (mine, theirs, chan_mine, chan_theirs):
        s.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(middle, 0)


def _host_main(
    nursery: socket.socket,
    zygote_pid: int,
    middle: int,
    ctl: tuple[socket.socket, socket.socket],
    chan: tuple[socket.socket, socket.socket],
) -> NoReturn:
    """A new pool host: wait to be the zygote's child, give the zygote its ends of our sockets, then idle."""
    (mine, theirs), (chan_mine, chan_theirs) = ctl, chan
    try:
        while (parent := os.getppid()) != zygote_pid:
            if parent != middle:  # adopted by someone else: the zygote is gone
                os._exit(0)
            time.sleep(0.0001)
        _fds.die_with_parent(zygote_pid)
        socket.send_fds(nursery, [pack(["host", os.getpid()])], [mine.fileno(), chan_mine.fileno()])
        for s in (nursery, mine, chan_mine):
            s.close()
    except BaseException:
        os._exit(0)
    ZygoteServer.host_wait(theirs, chan_theirs)


def zygote_main(
    ctl: socket.socket, preload: list[str], warm_pool: int, engine_pid: int, warm_up: str | None = None
) -> NoReturn:
    """Entry point of the forked zygote."""
    global _user_warm_up
    _user_warm_up = warm_up
    _fds.die_with_parent(engine_pid)
    _fds.become_subreaper()
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
