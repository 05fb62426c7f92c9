"""Speculative restarts on the owner side: the hub's bookkeeping of *spares*.

The zygote may report an exit together with a spare, a replacement it already started with the same target
and args (only for children spawned with ``arm=True``). The spare is kept *provisional* (its channel is not
read, its exit is held) until its owner either `SpareBook.adopt` s it (``on_start`` then runs in the hub
thread, as for a spawn) or `SpareBook.discard` s it (it is killed and forgotten, with no callback). The zygote
side of the same mechanism (idle pool hosts, recycled hosts) is in `_pool`.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import _fds
from ._channel import OwnerChannel
from ._errors import SpawnError
from ._latch import Latch
from ._proc import OnExit, OnMessage, OnStart, Proc, SpareOwner
from ._reasons import ExitReason

logger = logging.getLogger("supervisors")


class SpareBook:
    """The spares part of the `Hub` (a mixin: it works on the hub's process table, in the hub thread)."""

    _lock: threading.RLock
    _procs: dict[int, Proc]
    _exited: dict[int, ExitReason]
    _sel: selectors.DefaultSelector
    spares_adopted: int
    """Speculative restarts taken (statistics, for tests and benchmarks)."""
    spares_discarded: int
    """Speculative restarts killed because their owner did not want them."""

    def _post(self, call: Callable[[], None]) -> bool:
        raise NotImplementedError

    def send_ctl(self, msg: list[Any], fds: Sequence[int] = ()) -> None:
        """Send a control message to the zygote (the hub's)."""
        raise NotImplementedError

    def signal_proc(self, proc: Proc, signum: int, *, disarm: bool = False) -> None:
        """Signal this incarnation of a process child (the hub's)."""
        raise NotImplementedError

    def _read_channel(self, proc: Proc, *, drain: bool = False) -> None:
        raise NotImplementedError

    def _finish_exit(self, proc: Proc, status: int | None, spare: Proc | None) -> None:
        raise NotImplementedError

    def disarm(self, proc: Proc) -> None:
        """No speculative restart for this incarnation any more."""
        with contextlib.suppress(SpawnError):
            self.send_ctl(["disarm", proc.pid, proc.token])

    def _provisional(self, started: tuple[int, int, int], parent: Proc | None) -> Proc:
        """Hub thread: record the spare the zygote ``started`` (pid, token, channel fd) to replace ``parent``."""
        spare_pid, spare_token, spare_fd = started
        _fds.register(spare_fd)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=spare_fd)
        spare = Proc(
            spare_pid,
            OwnerChannel(sock, spare_pid),
            None,
            None,
            parent.trap_exit if parent is not None else False,
            token=spare_token,
            owner=parent.owner if parent is not None else None,
            provisional=True,
        )
        with self._lock:
            self._procs[spare_pid] = spare
            self._exited.pop(spare_pid, None)
        return spare

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
        done = Latch()
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

    def _wanted(self, proc: Proc, spare: Proc | None) -> Proc | None:
        """Hub thread: ``spare`` if its owner may still adopt it (``proc`` exited), else discard it: None."""
        if spare is not None and (
            proc.on_exit is None or proc.shutdown_requested or (proc.owner is not None and proc.owner.closed)
        ):
            self._discard(spare)
            return None
        return spare
