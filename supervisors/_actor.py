"""The supervisor actor (owner side): it starts and stops children and applies the restart decisions of
`_decisions` when one exits. Its only time source is the ``clock`` it is given."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from . import _decisions as decisions
from ._children import Child, ChildInfo, NestedSupervisor, start_process, supervised_actor_class
from ._errors import StartError, SupervisorError
from ._inbox import SimpleInbox
from ._proc import Proc, SpareOwner
from ._reasons import ExitReason
from ._specs import ChildSpec, ProcessSpec, Strategy, SupervisorSpec
from ._starting import Notify, NowaitStarts, Spawned, tell_if_alive
from ._zygote import Zygote

logger = logging.getLogger("supervisors")

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` unless a test injects another)."""


class Done:
    """Set once when a supervisor has exited, with its reason."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: ExitReason | None = None


MakeHandle = Callable[[pykka.ActorRef[Any], SupervisorSpec, Done], NestedSupervisor]
"""Builds the handle returned for a supervisor (`Supervisor`), so that this module does not import it."""


@dataclass(frozen=True, slots=True)
class _ChildExit:
    child_id: str
    token: object
    reason: ExitReason
    spare: Proc | None = None  # a replacement the zygote already started (speculative restart)


@dataclass(frozen=True, slots=True)
class StartNowait:
    """`Supervisor.start_child_nowait`, told rather than called through a proxy (no future nobody reads)."""

    spec: ProcessSpec
    on_error: Callable[[str, BaseException], None] | None


@dataclass(frozen=True, slots=True)
class _InitChildren:
    """Asked once by `spawn_supervisor`: start the static children."""


def spawn_supervisor(
    spec: SupervisorSpec,
    zygote: Zygote | None,
    parent_notify: Callable[[ExitReason], None] | None,
    *,
    clock: Clock,
    make_handle: MakeHandle,
    timeout: float = 60.0,
) -> NestedSupervisor:
    """Start a supervisor actor and its static children; its handle. Raises `StartError` if a static child
    cannot be started (the supervisor is then stopped)."""
    done = Done()
    ref = _SupervisorActor.start(spec, zygote, done, parent_notify, clock=clock, make_handle=make_handle)
    handle = make_handle(ref, spec, done)
    try:
        ref.ask(_InitChildren(), timeout=timeout)
    except BaseException:
        done.reason = ExitReason.shutdown()
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=True, timeout=timeout)
        raise
    return handle


class _SupervisorActor(SimpleInbox, pykka.ThreadingActor, NowaitStarts):
    use_daemon_thread = True

    def __init__(
        self,
        spec: SupervisorSpec,
        zygote: Zygote | None,
        done: Done,
        parent_notify: Callable[[ExitReason], None] | None,
        *,
        clock: Clock,
        make_handle: MakeHandle,
    ) -> None:
        super().__init__()
        NowaitStarts.__init__(self)
        self.spec = spec
        self.zygote = zygote
        self.done = done
        self.parent_notify = parent_notify
        self.clock = clock
        self.make_handle = make_handle
        self.children: dict[str, Child] = {}
        self.intensity = decisions.Intensity(spec.max_restarts, spec.max_seconds)
        self.started_at = clock()
        self.stopping = False
        self.exit_reason: ExitReason | None = None
        self.spare_owner = SpareOwner()
        self.adopted: Proc | None = None  # the spare adopted while handling the current exit

    # -- life cycle ---------------------------------------------------------------------------------

    def init_children(self) -> None:
        for spec in self.spec.children:
            if spec.id in self.children:
                self._shutdown_children()
                raise StartError(f"duplicate child id {spec.id!r} in supervisor {self.spec.id!r}")
            child = Child(spec, dynamic=False, meta=dict(spec.meta))
            try:
                self._start(child)
            except Exception as exc:
                self._shutdown_children()
                raise StartError(f"supervisor {self.spec.id!r}: child {spec.id!r} failed to start: {exc}") from exc
            self.children[spec.id] = child

    def on_stop(self) -> None:
        self.stopping = True
        self._shutdown_children()
        self._finish(self.exit_reason or ExitReason.shutdown())

    def on_failure(self, exc_type: Any, exc_value: Any, tb: Any) -> None:
        self.stopping = True
        with contextlib.suppress(Exception):
            self._shutdown_children()
        reason = ExitReason(kind="exception")
        if exc_value is not None:
            reason = ExitReason.from_exception(exc_value)
        self._finish(self.exit_reason or reason)

    def _finish(self, reason: ExitReason) -> None:
        if self.zygote is not None:
            self.zygote.hub.close_owner(self.spare_owner)
        if self.done.event.is_set():
            return
        self.done.reason = reason
        self.done.event.set()
        if self.parent_notify is not None:
            self.parent_notify(reason)

    def _check_open(self) -> None:
        if self.stopping:
            raise SupervisorError(f"supervisor {self.spec.id!r} is stopping")

    # -- starting and stopping one child ------------------------------------------------------------

    def _start(self, child: Child, spare: Proc | None = None) -> None:
        """Start a new incarnation of ``child`` (adopting ``spare`` if given); raises if it cannot be started."""
        token = object()
        cid = child.id
        spec = child.spec
        zygote = self.zygote
        notify = self._notifier(cid, token)
        if isinstance(spec, ProcessSpec):
            if zygote is None:
                raise StartError(f"supervisor {self.spec.id!r} has no zygote to start process {cid!r}")
            armed = self._armed(zygote, child)
            if start_process(child, spec, zygote.hub, notify, spare=spare, arm=armed, owner=self.spare_owner):
                self.adopted = spare
        elif isinstance(spec, SupervisorSpec):
            child.sup = spawn_supervisor(spec, zygote, notify, clock=self.clock, make_handle=self.make_handle)
            child.pid = os.getpid()
        else:
            child.actor = supervised_actor_class(spec.actor_class, notify).start(*spec.args, **spec.kwargs)
            child.pid = os.getpid()
        child.token = token
        child.state = "running"
        child.started_at = self.clock()
        child.started_wall = time.time()

    def _notifier(self, cid: str, token: object) -> Notify:
        """What tells this supervisor that the incarnation ``token`` of child ``cid`` exited (with the spare the
        zygote started in its place, if any, which is discarded if the supervisor is gone)."""
        me = self.actor_ref
        zygote = self.zygote

        def notify(reason: ExitReason, spare: Proc | None = None) -> None:
            if (
                not tell_if_alive(me, _ChildExit(cid, token, reason, spare))
                and spare is not None
                and zygote is not None
            ):
                zygote.hub.discard(spare)

        return notify

    def _armed(self, zygote: Zygote, child: Child) -> bool:
        """Whether the zygote may restart ``child``'s next incarnation speculatively (see ``should_arm``)."""
        return zygote.warm_pool > 0 and decisions.should_arm(
            strategy=self.spec.strategy,
            restart=child.spec.restart,
            child=child.intensity,
            supervisor=self.intensity,
            now=self.clock(),
        )

    def _disarm_all(self) -> None:
        """The supervisor is at its intensity limit: no more speculative restarts of any child."""
        if self.zygote is None:
            return
        self._settle_all()  # an armed child being started counts too
        for child in self.children.values():
            if child.armed and child.proc is not None:
                child.armed = False
                self.zygote.hub.disarm(child.proc)

    def _terminate(self, child: Child, *, kill: bool = False) -> ExitReason:
        """Stop a running child on purpose (grace period, then SIGKILL); calls its on_exit."""
        child.token = None
        reason: ExitReason | None = ExitReason.shutdown()
        spec = child.spec
        if child.proc is not None and self.zygote is not None:
            reason = self.zygote.hub.terminate_proc(child.proc, spec.shutdown_timeout, kill=kill)
        elif child.sup is not None:
            try:
                child.sup.stop(spec.shutdown_timeout)
            except pykka.Timeout:
                logger.warning("supervisor child %r did not stop within %ss", child.id, spec.shutdown_timeout)
        elif child.actor is not None:
            try:
                child.actor.stop(block=True, timeout=spec.shutdown_timeout)
            except pykka.Timeout:
                logger.warning("actor child %r did not stop within %ss", child.id, spec.shutdown_timeout)
        reason = reason or ExitReason.shutdown()
        self._record_exit(child, reason)
        return reason

    def _record_exit(self, child: Child, reason: ExitReason) -> None:
        child.token = None
        child.armed = False
        child.pid = None
        child.proc = None
        child.sup = None
        child.actor = None
        child.state = "stopped"
        child.last_exit = reason
        child.started_at = None
        if child.spec.on_exit is not None:
            try:
                child.spec.on_exit(child.id, reason)
            except Exception:
                logger.exception("on_exit of child %r failed", child.id)

    def _shutdown_children(self) -> None:
        self._settle_all()
        for child in reversed(list(self.children.values())):
            if child.state == "running":
                try:
                    self._terminate(child)
                except Exception:
                    logger.exception("stopping child %r failed", child.id)

    # -- exits and restarts -------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ChildExit):
            self._child_exited(message)
            return None
        if isinstance(message, Spawned):
            entry = self.starting.get(message.child_id)
            if entry is not None and entry.ticket is message.ticket:
                self._started(message.child_id)
            return None
        if isinstance(message, StartNowait):
            self.start_child_nowait(message.spec, message.on_error)
            return None
        if isinstance(message, _InitChildren):
            self.init_children()
            return None
        return super().on_receive(message)

    def _child_exited(self, msg: _ChildExit) -> None:
        if self.spec.strategy != Strategy.ONE_FOR_ONE:
            self._settle_all()  # the siblings an exit stops or restarts include those being started
        else:
            self._settle(msg.child_id)  # its successful spawn is taken here, not told (see `_starting`)
        spare = msg.spare
        self.adopted = None
        try:
            self._handle_exit(msg, spare)
        finally:
            # A replacement started speculatively by the zygote that was not adopted: kill it.
            if spare is not None and spare is not self.adopted and self.zygote is not None:
                self.zygote.hub.discard(spare)
            self.adopted = None

    def _handle_exit(self, msg: _ChildExit, spare: Proc | None) -> None:
        if self.stopping:
            return
        child = self.children.get(msg.child_id)
        if child is None or child.token is None or child.token is not msg.token:
            return
        reason = msg.reason
        decision = decisions.decide_exit(
            failed=child,
            reason=reason,
            children=self.children.values(),
            strategy=self.spec.strategy,
            supervisor=self.intensity,
            now=self.clock(),
        )
        verdict = decision.verdict
        if spare is not None and verdict == decisions.Verdict.DONE and self.zygote is not None:
            self.zygote.hub.discard(spare)  # before on_exit: the spare should run as briefly as possible
        self._record_exit(child, reason)
        self.intensity = decision.supervisor
        child.intensity = decision.child
        if verdict == decisions.Verdict.ESCALATE:
            self._escalate(child, reason)
            return
        for other in decision.terminate:
            if other.running:
                self._terminate(other)
        for gone in decision.remove:
            self._remove(gone)
        if verdict == decisions.Verdict.GIVE_UP:
            self._give_up(child, reason)
            return
        usable = spare if not decision.terminate else None  # with siblings stopped first, it would run too early
        for again in decision.restart:
            self._restart_one(again, usable if again is child else None)
        if verdict == decisions.Verdict.RESTART and self.intensity.at_limit(self.clock()):
            self._disarm_all()

    def _give_up(self, child: Child, reason: ExitReason) -> None:
        on_give_up = child.spec.on_give_up
        if on_give_up is not None:
            try:
                on_give_up(child.id, reason)
            except Exception:
                logger.exception("on_give_up of child %r failed", child.id)

    def _restart_one(self, child: Child, spare: Proc | None = None) -> None:
        child.restarts += 1
        try:
            self._start(child, spare)
        except Exception as exc:
            # A restart that cannot succeed (the zygote is gone) fails again at once, up to the intensity: one
            # warning per streak, not a hundred.
            log = logger.warning if child.failed_restarts == 0 else logger.debug
            child.failed_restarts += 1
            log("restarting child %r of %r failed: %s", child.id, self.spec.id, exc)
            reason = ExitReason.from_exception(exc)
            token = object()
            child.token = token
            child.state = "restarting"
            tell_if_alive(self.actor_ref, _ChildExit(child.id, token, reason))
            return
        if child.failed_restarts:
            logger.info(
                "restarting child %r of %r succeeded after %d failed attempts",
                child.id, self.spec.id, child.failed_restarts,
            )  # fmt: skip
            child.failed_restarts = 0

    def _escalate(self, child: Child, reason: ExitReason) -> None:
        logger.error(
            "supervisor %r: more than %s restarts in %ss (last: child %r, %s); shutting down",
            self.spec.id,
            self.spec.max_restarts,
            self.spec.max_seconds,
            child.id,
            reason,
            extra={"supervisor": self.spec.id, "child_id": child.id, "reason": str(reason)},
        )
        self.exit_reason = decisions.escalation_reason(self.spec.id, self.intensity, child.id, reason)
        self.stopping = True
        self._shutdown_children()
        self.stop()

    def _remove(self, child: Child) -> None:
        self.children.pop(child.id, None)

    # -- calls from the handle ----------------------------------------------------------------------

    def start_child(self, spec: ChildSpec) -> Any:
        self._check_open()
        if spec.id in self.children or spec.id in self.starting:
            raise SupervisorError(f"supervisor {self.spec.id!r} already has a child {spec.id!r}")
        child = Child(spec, dynamic=True, meta=dict(spec.meta))
        try:
            self._start(child)
        except Exception as exc:
            raise StartError(f"child {spec.id!r} failed to start: {exc}") from exc
        self.children[spec.id] = child
        return child.public()

    def _get(self, child_id: str) -> Child:
        self._settle(child_id)
        try:
            return self.children[child_id]
        except KeyError:
            raise SupervisorError(f"supervisor {self.spec.id!r} has no child {child_id!r}") from None

    def terminate_child(self, child_id: str, kill: bool) -> ExitReason | None:
        child = self._get(child_id)
        reason = self._terminate(child, kill=kill) if child.state == "running" else None
        if child.dynamic:
            self._remove(child)
        return reason

    def kill_child(self, child_id: str) -> bool:
        self._settle(child_id)
        child = self.children.get(child_id)
        if child is None or child.state != "running" or child.proc is None or self.zygote is None:
            return False
        self.zygote.hub.signal_proc(child.proc, signal.SIGKILL)
        return True

    def restart_child(self, child_id: str) -> Any:
        self._check_open()
        child = self._get(child_id)
        if child.state == "running":
            raise SupervisorError(f"child {child_id!r} is running")
        self._start(child)
        return child.public()

    def delete_child(self, child_id: str) -> None:
        child = self._get(child_id)
        if child.state == "running":
            raise SupervisorError(f"child {child_id!r} is running; terminate it first")
        self._remove(child)

    def update_meta(self, child_id: str, kv: dict[str, Any]) -> None:
        self._get(child_id).meta.update(kv)

    def child_pid(self, child_id: str) -> int | None:
        self._settle(child_id)
        child = self.children.get(child_id)
        return None if child is None else child.pid

    def child_supervisor(self, child_id: str) -> Any:
        child = self.children.get(child_id)
        return child.sup if child is not None and child.running else None

    def which_children(self) -> list[ChildInfo]:
        self._settle_all()
        return [c.info() for c in self.children.values()]

    def count_children(self) -> dict[str, int]:
        self._settle_all()
        kids = list(self.children.values())
        return {
            "specs": len(kids),
            "active": sum(c.state == "running" for c in kids),
            "supervisors": sum(c.kind == "supervisor" for c in kids),
            "workers": sum(c.kind != "supervisor" for c in kids),
        }

    def tree(self) -> dict[str, Any]:
        self._settle_all()
        now = self.clock()
        return {
            "id": self.spec.id,
            "kind": "supervisor",
            "pid": os.getpid(),
            "state": "stopping" if self.stopping else "running",
            "strategy": str(self.spec.strategy),
            "max_restarts": self.spec.max_restarts,
            "max_seconds": self.spec.max_seconds,
            "uptime": round(now - self.started_at, 3),
            "children": [c.node(now) for c in self.children.values()],
        }
