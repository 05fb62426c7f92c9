"""Owner side: the handle on the zygote, a process forked early that forks every process child."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import _fds
from ._affinity import cpu_set, run_on
from ._channel import OwnerChannel, unpack
from ._decisions import Intensity
from ._errors import SpawnError, ZygoteError
from ._forker import fork, in_forker
from ._hub import Hub
from ._leftovers import kill_session, start_time
from ._proc import Notify
from ._reasons import ExitReason
from ._specs import target_ref
from ._zygote_server import CTL_BUFFER, zygote_main

logger = logging.getLogger("supervisors")

#: How many times a zygote that dies silently during start-up is forked before `Zygote.start` gives up.
START_ATTEMPTS = 3


@dataclass
class _ZygoteSpec:
    """How to fork a zygote (kept for its restarts)."""

    preload: list[str]
    warm_pool: int
    warm_up: str | None
    ready_timeout: float
    close_fds: list[int]
    #: The CPUs the zygote runs on, and every process it forks unless that process sets its own (None: as it
    #: inherits them from the thread that forks it).
    cpus: frozenset[int] | None = None
    #: The CPUs of the nursery and the idle hosts it forks (None: the zygote's).
    pool_cpus: frozenset[int] | None = None

    def fork(self) -> tuple[int, socket.socket]:
        """Fork a zygote and wait until it is ready; its pid and the owner's end of its control socket.

        A zygote that dies during start-up without a word (a signal; a failed import is reported, and raised at
        once) is forked again, ``START_ATTEMPTS`` times in all, as a zygote that dies later is restarted."""
        silent = ""
        for _ in range(START_ATTEMPTS):
            started = self._fork_once()
            if not isinstance(started, str):
                return started
            silent = started
            logger.warning("%s; forking it again", silent)
        raise ZygoteError(f"the zygote failed to start:\n{silent}")

    def _fork_once(self) -> tuple[int, socket.socket] | str:
        """One fork: the zygote's pid and socket once ready, or what became of one that died without a word."""
        owner_pid = os.getpid()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (mine, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CTL_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CTL_BUFFER)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Garbage is collected here, in the owner, not in the zygote: a full collection in a child forked from a
        # process with threads traverses objects those threads left half-changed (seen: SIGSEGV with Ray's
        # protobuf objects on Python 3.13). The zygote freezes what it inherits before any collection can run.
        gc.collect()
        pid = fork()
        if pid == 0:  # pragma: no cover - the zygote
            gc.freeze()
            code = 1
            try:
                mine.close()
                _fds.close_all_in_child()
                for fd in self.close_fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                run_on(self.cpus)
                zygote_main(theirs, self.preload, self.warm_pool, owner_pid, self.warm_up, self.pool_cpus)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        mine.settimeout(self.ready_timeout)
        try:
            data = mine.recv(1 << 20)
        except (TimeoutError, OSError) as exc:
            Zygote.abort(pid, mine)
            raise ZygoteError(f"the zygote did not become ready: {exc}") from exc
        if not data:
            return f"the zygote exited during start-up ({Zygote.abort(pid, mine)})"
        msg = unpack(data)
        if msg[0] != "ready":
            Zygote.abort(pid, mine)
            raise ZygoteError(f"the zygote failed to start:\n{msg[1]}")
        mine.settimeout(None)
        return pid, mine


class Zygote:
    """A process forked from the owner process before its threads exist, that forks every process child.

    Call `Zygote.start` early, before any thread is started (pykka actors included): forking a process that
    has threads is unsafe. It still works when called later (under pytest, for example), but a lock held by
    another thread at that moment stays held in the zygote forever.

    The zygote imports the ``preload`` modules once, then forks children that share those pages
    copy-on-write, and keeps ``warm_pool`` idle forked hosts ready so that starting (or restarting) a child
    is a hand-off of a socket rather than a fork. It is the parent and reaper of every process child and
    reports their exits to the owner's I/O hub thread, which this object owns.

    The zygote gets ``SIGTERM`` when the owner process dies (``PR_SET_PDEATHSIG``, even if the owner is killed
    with ``SIGKILL``), and also when its control socket reaches EOF: it then kills every descendant (it is
    their subreaper; each process child leads a process group) and exits. Every process child dies with
    ``SIGKILL`` when the zygote dies. Zygotes are forked from one long-lived thread of the owner (`_forker`),
    since the parent-death signal is tied to the thread that forked: ``start`` works from any thread.
    """

    def __init__(self, pid: int, ctl: socket.socket, preload: Sequence[str], warm_pool: int) -> None:
        self.pid = pid
        """The zygote's OS pid."""
        self.preload = tuple(preload)
        """The modules imported in the zygote."""
        self.warm_pool = warm_pool
        """The number of idle hosts the zygote keeps ready."""
        self._hub = Hub(ctl, pid)
        self._stopped = False
        self._swap = threading.Lock()  # a restart's swap of pid and hub against stop()
        self._spec = _ZygoteSpec(list(preload), warm_pool, None, 60.0, [])
        self._intensity = Intensity(0, 5.0)
        self._on_restart: Callable[[int, int], None] | None = None
        self._on_give_up: Callable[[str], None] | None = None
        self.started_at: int | None = None
        """The zygote's start time (clock ticks since boot), which with its pid names its session."""
        self.restarts = 0
        """How many times the zygote was restarted after dying."""
        self.gave_up: str | None = None
        """Why the zygote stays down (its restart intensity was exceeded), or None."""

    @classmethod
    def start(
        cls,
        preload: Iterable[str] = (),
        warm_pool: int = 0,
        *,
        warm_up: str | None = None,
        ready_timeout: float = 60.0,
        close_fds: Iterable[int] = (),
        max_restarts: int = 0,
        max_seconds: float = 5.0,
        on_restart: Callable[[int, int], None] | None = None,
        on_give_up: Callable[[str], None] | None = None,
        cpus: Iterable[int] | None = None,
        pool_cpus: Iterable[int] | None = None,
    ) -> Zygote:
        """Fork the zygote, import ``preload`` in it, and start the I/O hub thread.

        ``warm_up`` (a ``"module:function"`` reference) is called once, with no arguments, by every idle pool host
        before it waits for a child: run there the code your children run first, so that the copy-on-write page
        faults it causes happen before a hand-off rather than after. Its errors are ignored.

        ``close_fds``: descriptors of the owner that the zygote closes as soon as it is forked, so that no process
        child holds them (a lock the owner holds, for example).

        ``cpus``: the CPUs the zygote runs on, and with it every process it forks (a process may set its own
        afterwards); by default those the calling thread may run on, as they are now (the zygote is forked by
        another thread, whose own may differ). ``pool_cpus``: the CPUs of the idle pool hosts (and of the process
        that forks them), where they warm up and which a child handed to one keeps unless it sets its own; by
        default the zygote's. Restarts of the zygote keep both; a zygote or nursery forked when the OS no longer
        lets it run on any of them (the machine's cpuset lost them) keeps the CPUs it inherited. ``ValueError``
        for an empty set or a CPU the machine does not have.

        The zygote is supervised: if it dies without being asked to stop, a new one is forked at once, before
        the exits of its process children are reported (so their supervisors restart them on the new one), and
        whatever the dead one's session left running is killed; ``on_restart(old_pid, new_pid)`` is then
        called. At most ``max_restarts`` restarts in ``max_seconds`` (0: none); past that, or if a new zygote
        cannot be started, ``on_give_up(reason)`` is called (from the hub thread) and the zygote stays down.

        Raises `ZygoteError` (with the zygote's traceback) if a preload module fails to import.
        """
        own_cpus, pool = _cpus_of(cpus), cpu_set(pool_cpus, "pool_cpus")
        spec = _ZygoteSpec(list(preload), warm_pool, warm_up, ready_timeout, list(close_fds), own_cpus, pool)
        pid, ctl = in_forker(spec.fork)
        zygote = cls(pid, ctl, spec.preload, warm_pool)
        zygote._spec = spec
        zygote._intensity = Intensity(max_restarts, max_seconds)
        zygote._on_restart = on_restart
        zygote._on_give_up = on_give_up
        zygote._start_hub()
        return zygote

    def _start_hub(self) -> None:
        self.started_at = start_time(self.pid)
        self._hub.on_gone = self._gone
        self._hub.start()

    def _gone(self, status: int | None) -> None:
        """The hub saw the zygote exit (before it reports its children's exits): restart it, or give up."""
        if self._stopped:
            return
        old_pid, old_started = self.pid, self.started_at
        how = "was killed by signal" if status is not None and os.WIFSIGNALED(status) else "exited"
        detail = f"{os.WTERMSIG(status)}" if status is not None and os.WIFSIGNALED(status) else f"(status {status})"
        if old_started is not None:
            kill_session(old_pid, old_started)  # what its children started, orphaned by their deaths
        self._intensity, exceeded = self._intensity.add(time.monotonic())
        if exceeded or not self._intensity.max_restarts:
            self._give_up(
                f"the zygote (pid {old_pid}) {how} {detail}, more than {self._intensity.max_restarts} times in "
                f"{self._intensity.max_seconds}s"
            )
            return
        try:
            pid, ctl = in_forker(self._spec.fork)
        except ZygoteError as exc:
            self._give_up(f"the zygote (pid {old_pid}) {how} {detail}, and a new one could not start: {exc}")
            return
        with self._swap:
            if self._stopped:  # stopped meanwhile: the new zygote is not wanted
                Zygote.abort(pid, ctl)
                return
            logger.warning("the zygote (pid %d) %s %s; restarted as pid %d", old_pid, how, detail, pid)
            old_hub = self._hub
            self.pid = pid
            self._hub = Hub(ctl, pid)
            self._start_hub()
            old_hub.successor = self._hub
        self.restarts += 1
        if self._on_restart is not None:
            try:
                self._on_restart(old_pid, pid)
            except Exception:
                logger.exception("on_restart of the zygote failed")

    def _give_up(self, reason: str) -> None:
        self.gave_up = reason
        if self._intensity.max_restarts:
            logger.error("%s: giving up", reason)
        if self._on_give_up is not None:
            try:
                self._on_give_up(reason)
            except Exception:
                logger.exception("on_give_up of the zygote failed")

    @staticmethod
    def abort(pid: int, sock: socket.socket) -> str:
        """Kill and reap a zygote that failed to start; how it ended, in words."""
        sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return "its exit status was collected elsewhere"
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    @property
    def hub(self) -> Hub:
        """The I/O hub this zygote's process children are run through (for supervisors, tests and statistics)."""
        return self._hub

    @property
    def alive(self) -> bool:
        """True while the zygote runs."""
        return self._hub.alive and not self._stopped

    def spawn(
        self,
        target: Callable[..., Any] | str,
        args: Sequence[Any] = (),
        *,
        on_start: Callable[[int, OwnerChannel], None] | None = None,
        on_message: Callable[[Any], None] | None = None,
        on_exit: Callable[[int, ExitReason], None] | None = None,
        trap_exit: bool = False,
        recycle: bool = False,
        timeout: float = 10.0,
    ) -> int:
        """Start an unsupervised process child running ``target(channel, *args)``; return its pid.

        ``on_start(pid, channel)`` runs in the hub thread before any message is delivered, and gives the
        owner's end of the channel; ``on_message(msg)`` and ``on_exit(pid, reason)`` also run in the hub
        thread. Raises `SpawnError` if the target cannot be resolved in the zygote (the message says why).

        ``recycle=True``: when ``target`` returns normally, the process is not ended but kept idle, and a later
        spawn of the same target may run in it (a hand-off instead of a fork). ``on_exit`` still reports a
        normal exit, and the pid may then belong to that later child. Use it only for targets that leave no
        module state behind them that could matter to the next one.
        """
        exit_cb = None if on_exit is None else (lambda pid, reason, _spare: on_exit(pid, reason))
        return self._hub.spawn(
            target_ref(target),
            args,
            on_start=on_start,
            on_message=on_message,
            on_exit=exit_cb,
            trap_exit=trap_exit,
            timeout=timeout,
            recycle=recycle,
        ).pid

    def channel(self, pid: int) -> OwnerChannel | None:
        """The owner's end of the channel of the live process ``pid``."""
        proc = self._hub.proc(pid)
        return None if proc is None else proc.channel

    def pids(self) -> list[int]:
        """Pids of the live process children."""
        return self._hub.pids()

    def signal(self, pid: int, signum: int) -> None:
        """Send ``signum`` to a live process child (no effect on pids that are not ours)."""
        self._hub.signal(pid, signum)

    def terminate(self, pid: int, timeout: float = 5.0, *, kill: bool = False) -> ExitReason | None:
        """Stop a process child: ``SIGTERM``, ``timeout`` s of grace, then ``SIGKILL`` (at once if ``kill``).

        Blocks until it is reaped; returns its exit reason (kind ``shutdown``), or None if it was unknown.
        """
        return self._hub.terminate(pid, timeout, kill=kill)

    def link(self, a: int, b: int) -> None:
        """Link two process children: an exit other than ``normal`` of one kills the other, unless the
        other traps exits, in which case it receives an `ExitSignal` message on its channel instead."""
        self._hub.link(a, b)

    def unlink(self, a: int, b: int) -> None:
        """Remove the link between ``a`` and ``b``."""
        self._hub.unlink(a, b)

    def links(self, pid: int) -> set[int]:
        """The pids linked to ``pid``."""
        return self._hub.links_of(pid)

    def set_trap_exit(self, pid: int, flag: bool = True) -> None:
        """Make the process child ``pid`` receive exit signals as messages (or not)."""
        self._hub.set_trap_exit(pid, flag)

    def monitor(self, pid: int, notify: Notify) -> int:
        """Monitor the process ``pid``; return the monitor ref.

        ``notify`` is a callable or a pykka ``ActorRef``; it receives exactly one `Down(ref, pid, reason)`
        when the process exits (from the hub thread), or at once with kind ``noproc`` (or the known reason)
        if it is not alive.
        """
        return self._hub.monitor(pid, notify)

    def demonitor(self, ref: int) -> bool:
        """Cancel a monitor. True if it was active (so its `Down` will never be delivered)."""
        return self._hub.demonitor(ref)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the zygote: it SIGKILLs whatever children remain and exits; wait for it and the hub.

        Stop your supervisors first for an ordered shutdown.
        """
        with self._swap:  # a restart under way either finishes first or sees the stop and undoes itself
            if self._stopped:
                return
            self._stopped = True
            hub, pid = self._hub, self.pid
        with contextlib.suppress(SpawnError):
            hub.send_ctl(["stop"])
        if not hub.join(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            while not hub.join(0.1) and time.monotonic() < deadline:
                pass

    def __enter__(self) -> Zygote:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Zygote pid={self.pid} warm_pool={self.warm_pool}{'' if self.alive else ' stopped'}>"


def _cpus_of(cpus: Iterable[int] | None) -> frozenset[int] | None:
    """The zygote's CPUs: ``cpus``, or those of the calling thread (None where the OS has no CPU affinity)."""
    if cpus is not None:
        return cpu_set(cpus, "cpus")
    if not hasattr(os, "sched_getaffinity"):
        return None
    return frozenset(os.sched_getaffinity(0))
