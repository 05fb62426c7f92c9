"""Spawns asked of the zygote without waiting for its answer: `SpawnTicket`, and `TicketBook`, the part of the
`Hub` that hands tickets out and fails those the zygote does not answer in time.

A waiting spawn (`Hub.spawn`) makes a ticket too and waits on its ``done``; a ticket from `TicketBook.spawn_nowait`
is completed by the hub thread, which then calls its ``on_done``. This is what lets a supervisor go on to its next
message while the zygote starts a process (see `_SupervisorActor.start_child_nowait`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ._channel import pack
from ._errors import SpawnError
from ._latch import Latch
from ._proc import OnExit, OnMessage, OnStart, Proc, SpareOwner

logger = logging.getLogger("supervisors")


@dataclass(eq=False)
class SpawnTicket:
    """A spawn asked of the zygote: set ``done`` once answered, with ``proc`` (the new process, running and read
    by the hub) or ``error``. `Hub.spawn_nowait` hands it out; ``on_done`` is then called from the hub thread
    right after ``done`` is set."""

    on_start: OnStart | None
    on_message: OnMessage | None
    on_exit: OnExit | None
    trap_exit: bool
    owner: SpareOwner | None
    done: Latch = field(default_factory=Latch)
    proc: Proc | None = None
    error: str | None = None
    on_done: Callable[[SpawnTicket], None] | None = None
    claimed: bool = False
    """Set by the owner once it took the answer (so ``on_done`` knows whether a process is left to end)."""
    answered_at: float = 0.0
    """When the answer came (``time.monotonic()``); an owner that takes it later dates the child's start by it."""
    answered_wall: float = 0.0
    """The same, as ``time.time()``."""

    def finish(self) -> None:
        """Answered: stamp the time, wake whoever waits, then tell ``on_done``."""
        self.answered_at, self.answered_wall = time.monotonic(), time.time()
        self.done.set()
        if self.on_done is not None:
            try:
                self.on_done(self)
            except Exception:
                logger.exception("on_done of a spawn failed")


class TicketBook:
    """The part of the `Hub` that asks for spawns without waiting (a mixin: it works on the hub's table of
    spawns on their way, ``_pending``, under its lock)."""

    _lock: threading.RLock
    _pending: dict[int, SpawnTicket]
    _reqs: Iterator[int]
    _closed: bool
    _zygote_alive: bool

    def __init__(self) -> None:
        #: ``(monotonic deadline, request, target, timeout)`` of each `spawn_nowait`, in the order asked (one
        #: timeout for all of them, so the first is the earliest): the hub thread fails those not answered in time.
        self._deadlines: deque[tuple[float, int, str, float]] = deque()

    def _send_ctl_data(self, data: bytes, fds: Sequence[int] = ()) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Make the hub thread look at its queues (the hub's)."""
        raise NotImplementedError

    def spawn_nowait(
        self,
        ref: str,
        args: Sequence[Any],
        *,
        on_start: OnStart | None,
        on_message: OnMessage | None,
        on_exit: OnExit | None,
        on_done: Callable[[SpawnTicket], None],
        trap_exit: bool,
        timeout: float,
        arm: bool = False,
        recycle: bool = False,
        owner: SpareOwner | None = None,
    ) -> SpawnTicket | None:
        """`spawn` without waiting for the zygote's answer: ask for the process and return its ticket at once.
        The hub thread completes the ticket when the answer comes (or after ``timeout`` s without one, as an
        error) and then calls ``on_done(ticket)``. None if this hub's zygote is gone: ask `spawn`, which goes to
        its successor. Raises `SpawnError` for arguments that cannot be sent."""
        ticket = SpawnTicket(on_start, on_message, on_exit, trap_exit, owner, on_done=on_done)
        if self._ask(ticket, ref, list(args), arm=arm, recycle=recycle, timeout=timeout) is None:
            return None
        return ticket

    def _ask(
        self, ticket: SpawnTicket, ref: str, args: list[Any], *, arm: bool, recycle: bool, timeout: float | None
    ) -> int | None:
        """Send the zygote the request for ``ticket``'s process (the hub thread completes ``ticket`` when the answer
        comes); its request number, or None if this hub's zygote is gone (``ticket.error`` says why if its socket
        broke). ``timeout``: the hub thread fails the ticket after that many seconds without an answer (None: the
        caller waits, and gives up, itself). Raises `SpawnError` for arguments that cannot be sent."""
        # The zygote makes the channel (or has one ready in a pool host) and sends the owner's end with "spawned".
        req = next(self._reqs)
        try:  # packed once, and first: a bad argument is refused for what it is, before anything is sent
            data = pack(["spawn", req, ref, args, arm, recycle])
        except (TypeError, ValueError, msgpack.PackException) as exc:
            raise SpawnError(f"process args must be msgpack-serialisable: {exc}") from exc
        with self._lock:
            if self._closed or not self._zygote_alive:
                return None
            self._pending[req] = ticket
            first = timeout is not None and not self._deadlines
            if timeout is not None:
                self._deadlines.append((time.monotonic() + timeout, req, ref, timeout))
        try:
            self._send_ctl_data(data)
        except SpawnError as exc:  # its socket broke: the zygote is gone (the hub thread sees it in a moment)
            with self._lock:
                self._pending.pop(req, None)
            ticket.error = str(exc)
            return None
        if first:
            self.wake()  # the hub thread's select() had no deadline to keep
        return req

    def _expire_spawns(self) -> float | None:
        """Fail the `spawn_nowait` tickets the zygote did not answer in time; seconds until the next deadline
        (None: no ticket waits). A process the zygote starts after all is killed (see _spawned)."""
        expired: list[tuple[SpawnTicket, str, float]] = []
        wait: float | None = None
        now = time.monotonic()
        with self._lock:
            deadlines = self._deadlines
            while deadlines:
                deadline, req, ref, timeout = deadlines[0]
                if req not in self._pending:
                    deadlines.popleft()
                elif deadline <= now:
                    deadlines.popleft()
                    expired.append((self._pending.pop(req), ref, timeout))
                else:
                    wait = deadline - now
                    break
        for ticket, ref, timeout in expired:
            ticket.error = f"the zygote did not start {ref} within {timeout}s"
            ticket.finish()
        return wait
