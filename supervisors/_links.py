"""Link and monitor tables (owned by the I/O hub, guarded by its lock)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any


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
