"""Process side: the zygote, a process forked from the owner early that forks every process child.

Runs inside the zygote (`zygote_main`, then `ZygoteServer.run`): spawns process children (a fork, or a
hand-off to an idle host of `_pool`), signals them on request, reaps them and reports their exits to the
owner's I/O hub over the control socket. What runs inside the forked processes is in `_process`.
"""

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
import time
import traceback
from typing import Any, Final, NoReturn

from . import _fds
from ._channel import make_pair, pack, unpack, wait_ready
from ._pool import HostPool
from ._process import MAX_CTL_MESSAGE, nursery_main, run_target, set_user_warm_up
from ._specs import resolve_target

#: A set of CPUs (None: those inherited).
Cpus = frozenset[int] | None

CTL_BUFFER = 1 << 20
REFILL_DELAY = 0.003
MAX_ARMED_PAYLOAD = 1 << 16


def _noop(signum: int, frame: Any) -> None:
    pass


class _OwnerDied(BaseException):
    """Raised in the zygote by SIGTERM (its owner died, or someone asked it to end): `ZygoteServer.run` shuts
    down."""


def _on_owner_death(signum: int, frame: Any) -> None:
    # Shut down right here rather than by raising through whatever the loop was doing: an exception raised at an
    # arbitrary point can be caught on its way (seen on Python 3.13), and the zygote would live on, with its
    # children, after its owner's death.
    server = _serving
    if server is None or os.getpid() != server.pid:  # not serving yet, or a child in the instant after its fork
        raise _OwnerDied
    server.shutdown()


#: The server of this zygote, once it runs (what the owner-death handler shuts down).
_serving: ZygoteServer | None = None


#: How often the zygote looks for orphans it adopted (processes that left a process child: daemons).
ORPHAN_SCAN: Final = 0.5
# Hosts asked of the nursery and not announced ("forked") for this long are taken as never coming (an
# intermediate process killed before it could say so): they are asked again; a surplus host is retired.
FORK_PATIENCE: Final = 5.0


def _abnormal(status: int) -> bool:
    """True for a wait status that is a death by signal or a non-zero exit code."""
    return os.WIFSIGNALED(status) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0)


class ZygoteServer(HostPool):
    """The zygote's loop: fork process children (or hand them to idle pool hosts), reap them, report exits.

    Children spawned *armed* get a **speculative restart**: when one dies abnormally and an idle host is ready
    (a recycled host of the same target first: its code and caches are warm), the zygote hands that host the
    same target and args at once, with a new channel, and reports the
    exit and the replacement in one message (``["exit", pid, status, new_pid, token]`` plus the owner's end of
    the new channel). The owner adopts the replacement or kills it. The replacement is armed too.

    Children spawned *recyclable* keep a control socket to the zygote. When their target returns normally they
    say ``done`` on it instead of exiting: the zygote reports a normal exit (``["exit", pid, 0]``) and keeps
    the process as an idle host for the next spawn of the same target reference, which is then a hand-off of
    a socket, with no fork, no page faults and no exit. A pid may thus host several children in turn, so
    every incarnation has a **token** (reported with ``spawned``); a ``signal`` naming another token than the
    pid's current one is ignored.
    """

    def __init__(self, ctl: socket.socket, warm_pool: int, pool_cpus: Cpus = None) -> None:
        super().__init__()
        self.ctl = ctl
        self.warm_pool = warm_pool
        self.pool_cpus = pool_cpus  # the nursery's and its pool hosts' CPUs (None: the zygote's)
        self.pid = os.getpid()
        self.children: dict[int, int] = {}  # pid -> token of its current incarnation
        self.tokens = itertools.count(1)
        self.armed: dict[int, bytes] = {}  # pid -> packed [ref, args, recycle], for a speculative restart
        self.wake_r, self.wake_w = os.pipe()
        self.sel = selectors.DefaultSelector()
        # Pool hosts are forked by the nursery, not by the zygote: a fork makes every page of the forking
        # process copy-on-write, and the zygote would then pay page faults (and the fork itself) on the path
        # from a crash to its report. Hosts reach the zygote as children: it is a child subreaper.
        self.nursery_pid = 0
        self.nursery: socket.socket | None = None
        self.requested = 0  # hosts asked of the nursery, not yet forked
        self.coming: set[int] = set()  # hosts forked (the nursery said "forked"), not yet arrived
        self.lost: set[int] = set()  # hosts that died on their way: their "host" message, if any, is dropped
        self.nursery_heard = 0.0  # monotonic time of the last fork asked or announced

    def run(self) -> NoReturn:
        """Serve until the owner says stop or closes its end."""
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _noop)
        self.ctl.setblocking(False)
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        global _serving
        _serving = self
        try:
            self.serve()
        except _OwnerDied:
            self.shutdown()

    def serve(self) -> NoReturn:
        """The loop of `run`."""
        next_scan = time.monotonic() + ORPHAN_SCAN
        while True:
            need = len(self.idle) + len(self.coming) + self.requested < self.warm_pool
            # Refill the pool only once things are quiet for a moment: a fork right after a hand-off would
            # compete for the CPU with the child that is starting.
            now = time.monotonic()
            if now >= next_scan:
                self.kill_orphans()
                self.retire_idle(now)
                if self.requested and now - self.nursery_heard > FORK_PATIENCE:
                    self.requested = 0
                next_scan = now + ORPHAN_SCAN
            wait = next_scan - now
            events = self.sel.select(min(REFILL_DELAY, wait) if need else wait)
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
        count = self.warm_pool - len(self.idle) - len(self.coming) - self.requested
        try:
            self.nursery.send(pack(["fork", count]))
        except OSError:
            self.stop_nursery()
            return
        self.requested += count
        self.nursery_heard = time.monotonic()

    def start_nursery(self) -> None:
        """Fork the nursery, the process that forks pool hosts."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                self.become_child()
                mine.close()
                nursery_main(theirs, self.pid, self.pool_cpus)
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
        # Hosts on their way would announce themselves on the socket just closed: they never can now.
        for pid in self.coming:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.retired |= self.coming
        self.coming = set()

    def read_nursery(self) -> None:
        """Take in what the nursery's socket carries: ``["forked", pid]`` from the intermediate process as soon
        as a host is forked (so the zygote knows every host on its way, also one that dies before arriving), then
        ``["host", pid]`` from the host itself, with its control socket and channel."""
        while self.nursery is not None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.nursery, 1024, 2)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            msg = unpack(data) if data else None
            if msg is not None and msg[0] == "forked" and not fds:
                self.nursery_heard = time.monotonic()
                self.requested = max(0, self.requested - 1)
                self.lost.discard(msg[1])  # a pid of a lost host, reused
                self.coming.add(msg[1])
                continue
            if msg is None or msg[0] != "host" or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                self.stop_nursery()
                return
            pid = msg[1]
            hsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, fileno=fds[0])
            hchan = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fds[1])
            self.coming.discard(pid)
            if pid in self.lost or len(self.idle) >= self.warm_pool:
                hsock.close()
                hchan.close()
                if pid not in self.lost:  # a surplus host (see FORK_PATIENCE), alive: retire it
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    self.retired.add(pid)
                self.lost.discard(pid)
            else:
                self.idle[pid] = (hsock, hchan)

    def send(self, msg: list[Any], fds: list[int] | None = None) -> None:
        """Send one control message to the owner (waiting if its buffer is full)."""
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
        """Handle every pending control message; False when the owner is gone or asked us to stop."""
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
        goes to the owner with ``spawned`` (so the owner makes no socket pair on its way to a spawn)."""
        try:
            resolve_target(ref)
        except Exception as exc:
            self.send(["error", req, f"{type(exc).__name__}: {exc}"])
            return
        payload = pack([ref, args, recycle])
        pid, control, owner = self.hand_off(self.recycled.get(ref, {}), payload, recycle)
        if not pid and self.take_returns():
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

    def become_child(self) -> None:
        """In a freshly forked child of the zygote: drop the zygote's descriptors and handlers."""
        _fds.die_with_parent(self.pid)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.sel.close()
        self.ctl.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.close_pool()
        if self.nursery is not None:
            self.nursery.close()
            self.nursery = None

    def reap(self) -> None:
        """Collect every dead child; report process children to the owner; kill the orphans a death left."""
        # A host's "forked" was sent before it could become our child: read first, and a dead pid that is not
        # in `coming` (nor known otherwise) is an orphan, never a host on its way.
        self.read_nursery()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                self.kill_orphans()
                return
            if pid in self.children:
                del self.children[pid]
                entry = self.forget_recycler(pid)
                if entry is not None:
                    entry[0].close()
                payload = self.armed.pop(pid, None)
                hosts = None if payload is None or not _abnormal(status) else self.spare_hosts(payload)
                if payload is None or hosts is None:
                    self.send(["exit", pid, status])
                else:
                    self.respawn(pid, status, payload, hosts)
                with contextlib.suppress(OSError):  # after the report: not on the path from a crash to a restart
                    os.killpg(pid, signal.SIGKILL)  # what it started dies with it (it led its process group)
            elif pid == self.nursery_pid:
                self.nursery_pid = 0
                self.stop_nursery()
            elif pid in self.retired:
                self.retired.discard(pid)
            else:
                host = self.idle.pop(pid, None) or self.pop_host(pid)
                if host is not None:
                    host[0].close()
                    host[1].close()
                elif pid in self.coming:
                    self.coming.discard(pid)
                    if len(self.lost) < 1024:
                        self.lost.add(pid)

    def kill_orphans(self) -> None:
        """Kill the processes we adopted as subreaper that are not ours: descendants of a process child that left
        their parent (a daemon, or the children of a dead child). Pool hosts on their way to us are in our own
        process group (every process child leads its own): they are spared."""
        known = set(self.children) | set(self.idle) | self.retired | {self.nursery_pid}
        for hosts in self.recycled.values():
            known |= set(hosts)
        mine = os.getpgrp()
        for pid in _children_of(self.pid) - known:
            try:
                if os.getpgid(pid) == mine:
                    continue
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue

    def spare_hosts(self, payload: bytes) -> dict[int, tuple[socket.socket, socket.socket]] | None:
        """Where the replacement of an armed child (``payload``) comes from: an idle recycled host of its target
        (warm from earlier runs of the same code, with whatever that code set up), else an idle pool host;
        None if there is neither."""
        recycled = self.recycled.get(unpack(payload)[0])
        if recycled:
            return recycled
        return self.idle or None

    def respawn(
        self, pid: int, status: int, payload: bytes, hosts: dict[int, tuple[socket.socket, socket.socket]]
    ) -> None:
        """Report the exit of ``pid`` together with a replacement handed to one of ``hosts`` (see the class).

        The owner is told first: its side (exit handling, the supervisor's decision, ``on_start``) is the
        longer path, and a pool host starts in a fraction of it. The replacement counts as our child before
        the host is sent anything, so if the host turns out to be dead its exit is reported like any other.
        """
        hpid, (hsock, hchan) = hosts.popitem()
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
        known = set(self.children) | set(self.idle) | self.coming | self.retired | {self.nursery_pid}
        for hosts in self.recycled.values():
            known |= set(hosts)
        deadline = time.monotonic() + 10.0
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        groups = set(known)
        while time.monotonic() < deadline:
            for pid in groups:
                if pid:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
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
            groups = set()
            time.sleep(0.001)
        os._exit(0)


def _children_of(pid: int) -> set[int]:
    """The live children of ``pid`` (a single-threaded process), from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def zygote_main(  # noqa: PLR0917 - the forked zygote's entry point
    ctl: socket.socket, preload: list[str], warm_pool: int, owner_pid: int, warm_up: str | None, pool_cpus: Cpus
) -> NoReturn:
    """Entry point of the forked zygote."""
    set_user_warm_up(warm_up)
    # The owner's death (even by SIGKILL) reaches us as SIGTERM, which ends `run` through `shutdown`: every
    # descendant is killed first, also those that left their parent (we are their subreaper).
    signal.signal(signal.SIGTERM, _on_owner_death)
    _fds.die_with_parent(owner_pid, signal.SIGTERM)
    _fds.become_subreaper()
    with contextlib.suppress(OSError):
        os.setsid()  # a session of our own: what an owner finds and kills if we were killed (see _leftovers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException:
        ctl.send(pack(["error", traceback.format_exc()]))
        os._exit(1)
    gc.freeze()  # what the preload made too (the owner collected before it forked us; see Zygote._fork_once)
    ctl.send(pack(["ready", os.getpid()]))
    ZygoteServer(ctl, warm_pool, pool_cpus).run()
