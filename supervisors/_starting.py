"""Process children started without waiting for the zygote: the part of the supervisor actor that asks for a
child's spawn, goes on to its next message, and takes the zygote's answer as soon as something needs the child
(`NowaitStarts._settle`: its exit, a call about it, a look at the children), or when a failed spawn is told
(`Spawned`). See `Supervisor.start_child_nowait`.

A spawn that succeeded is not told: the hub thread's answer is already in the child's ticket, and a message for
it would cost the supervisor's thread a wake-up per child life for nothing the next message could not do (a
recycled workflow process lives a few milliseconds; its exit is that next message)."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka

from ._children import Child, spawn_process_nowait
from ._errors import StartError, SupervisorError
from ._proc import Proc, SpareOwner
from ._reasons import ExitReason
from ._specs import ChildSpec, ProcessSpec, SupervisorSpec
from ._succession import ZYGOTE_EXITED
from ._tickets import SpawnTicket
from ._zygote import Zygote

logger = logging.getLogger("supervisors")

OnError = Callable[[str, BaseException], None]
"""Told ``(child_id, error)`` when a child started without waiting cannot be started."""


def tell_if_alive(ref: pykka.ActorRef[Any], msg: Any) -> bool:
    """Tell ``ref`` ``msg``; False if the actor is gone."""
    try:
        ref.tell(msg)
    except pykka.ActorDeadError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Spawned:
    """The hub thread's word that the spawn of a child started by `StartNowait` failed (a successful one is
    taken when something needs the child, see the module's docstring)."""

    child_id: str
    ticket: SpawnTicket


@dataclass(frozen=True, slots=True)
class _Starting:
    """A process child started by `StartNowait` whose spawn's answer the supervisor has not taken yet."""

    child: Child
    ticket: SpawnTicket
    on_error: OnError | None


class Notify(Protocol):
    """Tells a supervisor that an incarnation of one of its children exited (see `_SupervisorActor._notifier`)."""

    def __call__(self, reason: ExitReason, spare: Proc | None = None) -> None: ...


class NowaitStarts:
    """The supervisor actor's children being started without waiting (a mixin of `_SupervisorActor`)."""

    children: dict[str, Child]
    zygote: Zygote | None
    spec: SupervisorSpec
    clock: Callable[[], float]
    spare_owner: SpareOwner

    def __init__(self) -> None:
        #: Children started by `StartNowait` whose spawn's answer is not taken yet (on its way, or come and not
        #: needed so far), by id: not yet in ``children``. Whatever would look at such a child first takes the
        #: answer, waiting for it if need be (`_settle`), so nothing sees it half started.
        self.starting: dict[str, _Starting] = {}

    @property
    def actor_ref(self) -> pykka.ActorRef[Any]:
        """The supervisor actor's own ref (pykka's)."""
        raise NotImplementedError

    def start_child(self, spec: ChildSpec) -> Any:
        """Start a dynamic child, waiting for it (the supervisor actor's)."""
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    def _notifier(self, cid: str, token: object) -> Notify:
        raise NotImplementedError

    def _armed(self, zygote: Zygote, child: Child) -> bool:
        raise NotImplementedError

    def start_child_nowait(self, spec: ChildSpec, on_error: OnError | None) -> None:
        """`start_child` for callers that must not wait: a failure goes to ``on_error(child_id, error)``.

        A process child is not waited for either: its spawn is asked of the zygote and this thread goes on to
        its next message (the answer is taken when something needs the child; a failure comes back as
        `Spawned`), so the spawns of a burst overlap instead of taking one round trip each."""
        try:
            if isinstance(spec, ProcessSpec) and self._spawn_nowait(spec, on_error):
                return
            self.start_child(spec)
        except Exception as exc:
            self._start_failed(spec.id, exc, on_error)

    def _spawn_nowait(self, spec: ProcessSpec, on_error: OnError | None) -> bool:
        """Ask for the first incarnation of a new dynamic process child without waiting; False where it must be
        started the waiting way (no zygote, or the zygote is gone: `start_child` asks its successor)."""
        self._check_open()
        if spec.id in self.children or spec.id in self.starting:
            raise SupervisorError(f"supervisor {self.spec.id!r} already has a child {spec.id!r}")
        zygote = self.zygote
        if zygote is None:
            return False
        child = Child(spec, dynamic=True, meta=dict(spec.meta))
        token = object()
        me = self.actor_ref
        cid = spec.id

        def answered(ticket: SpawnTicket) -> None:  # in the hub thread
            if ticket.proc is not None and ticket.error is None and me.is_alive():
                return  # taken when something needs the child (`_settle`); a stopping supervisor settles all
            if not tell_if_alive(me, Spawned(cid, ticket)) and ticket.proc is not None and not ticket.claimed:
                zygote.hub.signal_proc(ticket.proc, signal.SIGKILL, disarm=True)  # no supervisor left to own it

        notify = self._notifier(cid, token)
        armed = self._armed(zygote, child)
        try:
            ticket = spawn_process_nowait(child, spec, zygote.hub, notify, answered, arm=armed, owner=self.spare_owner)
        except Exception as exc:
            raise StartError(f"child {cid!r} failed to start: {exc}") from exc
        if ticket is None:
            return False
        child.token = token
        self.starting[cid] = _Starting(child, ticket, on_error)
        return True

    def _started(self, child_id: str) -> None:
        """The spawn of ``child_id`` (in ``starting``) was answered: the child runs, or its failure is told."""
        entry = self.starting.pop(child_id)
        child, ticket = entry.child, entry.ticket
        ticket.claimed = True
        proc = ticket.proc
        if proc is not None and ticket.error is None:
            child.proc, child.pid = proc, proc.pid
            child.state = "running"
            # Dated by the answer, not by this later look at it, on the supervisor's own clock.
            child.started_at = self.clock() - max(time.monotonic() - ticket.answered_at, 0.0)
            child.started_wall = ticket.answered_wall
            self.children[child_id] = child
            return
        if ticket.error == ZYGOTE_EXITED:  # asked of a zygote that died: its successor starts it, waiting
            try:
                self.start_child(child.spec)
            except Exception as exc:
                self._start_failed(child_id, exc, entry.on_error)
            return
        error = StartError(f"child {child_id!r} failed to start: {ticket.error or 'the zygote did not start it'}")
        self._start_failed(child_id, error, entry.on_error)

    def _settle(self, child_id: str) -> None:
        """If ``child_id`` is being started, wait for its spawn's answer and take it (see ``starting``)."""
        entry = self.starting.get(child_id)
        if entry is not None:
            entry.ticket.done.wait()  # the hub answers every ticket: in time, late as an error, or the zygote gone
            self._started(child_id)

    def _settle_all(self) -> None:
        """`_settle` every child being started, in the order they were asked for."""
        for child_id in list(self.starting):
            self._settle(child_id)

    @staticmethod
    def _start_failed(child_id: str, error: BaseException, on_error: OnError | None) -> None:
        """Tell ``on_error`` that ``child_id`` could not be started, or log it if there is no one to tell."""
        if on_error is None:
            logger.error("starting child %r failed", child_id, exc_info=error)
        else:
            on_error(child_id, error)
