"""Links and monitors between process children (owner side): the tables, and `LinkBook`, the part of the
I/O hub that applies them (exit signals, `Down` deliveries, the requests children send over their channel)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ._channel import SYSTEM, pack
from ._proc import Notify, Proc
from ._reasons import Down, ExitReason

logger = logging.getLogger("supervisors")


@dataclass(frozen=True, slots=True)
class ChildMonitor:
    """A monitor set by a process child through its channel: Down goes back over that channel."""

    owner: int
    local_ref: int


class LinkTable:
    """Bidirectional links between pids, and one-way monitors ``ref -> (pid, notify)``."""

    def __init__(self) -> None:
        self._links: defaultdict[int, set[int]] = defaultdict(set)
        self._monitors: dict[int, tuple[int, Any]] = {}
        self._by_pid: defaultdict[int, set[int]] = defaultdict(set)
        self._child_refs: dict[tuple[int, int], int] = {}

    def link(self, a: int, b: int) -> None:
        """Add a link (idempotent)."""
        if a == b:
            return
        self._links[a].add(b)
        self._links[b].add(a)

    def unlink(self, a: int, b: int) -> None:
        """Remove a link if present."""
        self._links.get(a, set()).discard(b)
        self._links.get(b, set()).discard(a)

    def links_of(self, pid: int) -> set[int]:
        """Pids linked to ``pid``."""
        return set(self._links.get(pid, ()))

    def pop_links(self, pid: int) -> set[int]:
        """Remove and return every link of ``pid``."""
        linked = self._links.pop(pid, set())
        for other in linked:
            self._links.get(other, set()).discard(pid)
        return linked

    def add_monitor(self, ref: int, pid: int, notify: Any) -> None:
        """Add a monitor."""
        self._monitors[ref] = (pid, notify)
        self._by_pid[pid].add(ref)
        if isinstance(notify, ChildMonitor):
            self._child_refs[(notify.owner, notify.local_ref)] = ref

    def remove_monitor(self, ref: int) -> bool:
        """Remove a monitor; False if it was not active."""
        entry = self._monitors.pop(ref, None)
        if entry is None:
            return False
        pid, notify = entry
        self._by_pid.get(pid, set()).discard(ref)
        if isinstance(notify, ChildMonitor):
            self._child_refs.pop((notify.owner, notify.local_ref), None)
        return True

    def child_ref(self, owner: int, local_ref: int) -> int | None:
        """The hub-wide ref of a monitor set by process ``owner`` under its own ``local_ref``."""
        return self._child_refs.get((owner, local_ref))

    def pop_monitors(self, pid: int) -> list[tuple[int, Any]]:
        """Remove and return the monitors on ``pid`` as ``(ref, notify)``."""
        out = []
        for ref in sorted(self._by_pid.pop(pid, set())):
            entry = self._monitors.pop(ref, None)
            if entry is not None:
                notify = entry[1]
                if isinstance(notify, ChildMonitor):
                    self._child_refs.pop((notify.owner, notify.local_ref), None)
                out.append((ref, notify))
        return out

    def drop_owner(self, owner: int) -> None:
        """Forget the monitors a dead process had set."""
        for (o, _local), ref in list(self._child_refs.items()):
            if o == owner:
                self.remove_monitor(ref)

    def monitor_count(self) -> int:
        """Number of active monitors."""
        return len(self._monitors)


Watchers = tuple[list[tuple[int, Notify]], list[Proc]]
"""The monitors of an exited process (ref, notify) and the live processes linked to it."""


class LinkBook:
    """The links-and-monitors part of the `Hub` (a mixin: it works on the hub's process table and lock)."""

    _lock: threading.RLock
    _procs: dict[int, Proc]
    _exited: dict[int, ExitReason]
    _links: LinkTable
    _refs: itertools.count[int]

    def proc(self, pid: int) -> Proc | None:
        """The live process record for ``pid`` (the hub's)."""
        raise NotImplementedError

    def signal_proc(self, proc: Proc, signum: int, *, disarm: bool = False) -> None:
        """Signal this incarnation of a process child (the hub's)."""
        raise NotImplementedError

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

    def _pop_watchers(self, pid: int) -> Watchers:
        """Under the hub's lock, ``pid`` having exited: forget its monitors and links; who must hear of it."""
        monitors = self._links.pop_monitors(pid)
        self._links.drop_owner(pid)
        linked = [p for p in (self._procs.get(x) for x in self._links.pop_links(pid)) if p is not None]
        return monitors, linked

    def _tell_watchers(self, pid: int, reason: ExitReason, watchers: Watchers) -> None:
        """Deliver ``pid``'s exit to its monitors (`Down`) and to the processes linked to it (exit signals)."""
        monitors, linked = watchers
        for ref, notify in monitors:
            self._deliver_down(notify, Down(ref, pid, reason))
        for other in linked:
            self._exit_signal(other, pid, reason)
