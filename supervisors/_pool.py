"""Process side: the zygote's bookkeeping of idle hosts, for hand-offs and speculative restarts.

Runs inside the zygote. It keeps the warm pool's idle hosts (forked by the nursery, each with a channel made
in advance), the recycled hosts (a recyclable child whose target returned, kept idle for the next spawn of the
same target reference), the recyclable children's control sockets, and the recycled hosts told to exit. The
owner side of speculative restarts (the spares it adopts or discards) is in `_spares`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time
from typing import Any

#: Recycled idle hosts kept per target reference; a host offered back beyond this exits.
MAX_RECYCLED_IDLE = 64
#: Recycled idle hosts kept per target reference however long they stay idle. Beyond these, a host idle for
#: `RECYCLED_IDLE_SECONDS` exits: the memory of a burst's hosts goes back to the machine once the burst is over,
#: and hand-offs take the most recently idle host first, so that the ones a steady load does not need age out
#: instead of every host being kept warm in turn.
RECYCLED_IDLE_FLOOR = 8
RECYCLED_IDLE_SECONDS = 5.0


class HostPool:
    """The idle and recycled hosts of the `ZygoteServer` (a mixin: it shares the server's selector)."""

    sel: selectors.DefaultSelector
    children: dict[int, int]
    armed: dict[int, bytes]

    def __init__(self) -> None:
        # Recyclable children: pid -> (their control socket, their target reference).
        self.recyclers: dict[int, tuple[socket.socket, str]] = {}
        # Idle recycled hosts, by target reference: pid -> (control socket, owner's end of a spare channel).
        self.recycled: dict[str, dict[int, tuple[socket.socket, socket.socket]]] = {}
        self.retired: set[int] = set()  # recycled hosts told to exit, not reaped yet
        self.idle_since: dict[int, float] = {}  # recycled idle host -> when it became idle (monotonic)
        # pid -> (control socket, owner's end of a channel made in advance for a speculative restart)
        self.idle: dict[int, tuple[socket.socket, socket.socket]] = {}

    def send(self, msg: list[Any], fds: list[int] | None = None) -> None:
        """Send one control message to the owner (the server's)."""
        raise NotImplementedError

    @staticmethod
    def hand_off(
        hosts: dict[int, tuple[socket.socket, socket.socket]], payload: bytes, recycle: bool
    ) -> tuple[int, socket.socket | None, socket.socket | None]:
        """Hand ``payload`` to one of ``hosts`` (the most recently idle), which runs it on the channel made with it:
        its pid (0 if none took it), for a recyclable child its control socket (else closed), and the owner's end
        of its channel."""
        while hosts:
            hpid = next(reversed(hosts))
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

    def take_returns(self) -> bool:
        """Take in the ``done`` of every recyclable child that said it since this loop last looked (True if
        any): a burst of spawns read in one go would otherwise fork a process each while the hosts whose
        targets returned meanwhile wait, unread, behind it."""
        taken = False
        for key, _ in self.sel.select(0):
            if isinstance(key.data, int):
                self.read_recycler(key.data)
                taken = True
        return taken

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
            self.idle_since[pid] = time.monotonic()
        else:
            self.retire(pid, control, spare_channel)

    def retire(self, pid: int, control: socket.socket, spare_channel: socket.socket) -> None:
        """Tell a recycled host to exit (it sees its control socket close); it is reaped like any child."""
        control.close()
        spare_channel.close()
        self.retired.add(pid)

    def retire_idle(self, now: float) -> None:
        """Retire the recycled hosts idle for `RECYCLED_IDLE_SECONDS`, keeping `RECYCLED_IDLE_FLOOR` per target."""
        since = self.idle_since
        for hosts in self.recycled.values():
            for pid in list(hosts)[: max(0, len(hosts) - RECYCLED_IDLE_FLOOR)]:  # the longest idle first
                if now - since.get(pid, now) < RECYCLED_IDLE_SECONDS:
                    break
                self.retire(pid, *hosts.pop(pid))
        idle = {pid for hosts in self.recycled.values() for pid in hosts}
        if len(since) != len(idle):  # forget hosts handed off, retired or dead since
            self.idle_since = {pid: at for pid, at in since.items() if pid in idle}

    def pop_host(self, pid: int) -> tuple[socket.socket, socket.socket] | None:
        """Forget the recycled idle host ``pid`` (it died); its sockets, or None if it was not one."""
        for hosts in self.recycled.values():
            if pid in hosts:
                return hosts.pop(pid)
        return None

    def close_pool(self) -> None:
        """In a freshly forked process: close every host's sockets (they are the zygote's)."""
        for hosts in (self.idle, *self.recycled.values()):
            for hsock, hchan in hosts.values():
                hsock.close()
                hchan.close()
        self.idle.clear()
        self.recycled.clear()
        for control, _ref in self.recyclers.values():
            control.close()
        self.recyclers.clear()
