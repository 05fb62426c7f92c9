"""The supervisor actor, and the `Supervisor` handle the rest of the program uses."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import psutil
import pykka

from ._channel import OwnerChannel
from ._errors import StartError, SupervisorError
from ._hub import Proc, SpareOwner
from ._inbox import SimpleInbox
from ._reasons import ExitReason
from ._specs import ActorSpec, ChildSpec, ProcessSpec, Restart, Strategy, SupervisorSpec, target_ref
from ._zygote import Zygote

logger = logging.getLogger("supervisors")

ChildKind = Literal["process", "supervisor", "actor"]
ChildState = Literal["running", "restarting", "stopped"]


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One line of `Supervisor.which_children`."""

    id: str
    kind: ChildKind
    pid: int | None
    state: ChildState
    restarts: int
    last_exit: ExitReason | None
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _ChildExit:
    child_id: str
    token: object
    reason: ExitReason
    spare: Proc | None = None  # a replacement the zygote already started (speculative restart)


@dataclass(frozen=True, slots=True)
class _StartNowait:
    """`Supervisor.start_child_nowait`, told rather than called through a proxy (no future nobody reads)."""

    spec: ProcessSpec
    on_error: Callable[[str, BaseException], None] | None


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    dynamic: bool
    meta: dict[str, Any]
    token: object | None = None
    state: ChildState = "stopped"
    pid: int | None = None
    proc: Proc | None = None  # a process child's current incarnation
    sup: Supervisor | None = None
    actor: pykka.ActorRef[Any] | None = None
    restarts: int = 0
    restart_log: deque[float] = field(default_factory=deque)
    last_exit: ExitReason | None = None
    started_at: float | None = None
    started_wall: float | None = None
    armed: bool = False  # the zygote restarts it speculatively after an abnormal exit

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def kind(self) -> ChildKind:
        if isinstance(self.spec, ProcessSpec):
            return "process"
        if isinstance(self.spec, SupervisorSpec):
            return "supervisor"
        return "actor"


class _Done:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: ExitReason | None = None


def _kind_of(spec: ChildSpec) -> ChildKind:
    if isinstance(spec, ProcessSpec):
        return "process"
    if isinstance(spec, SupervisorSpec):
        return "supervisor"
    return "actor"


def _tell(ref: pykka.ActorRef[Any], msg: Any) -> bool:
    try:
        ref.tell(msg)
    except pykka.ActorDeadError:
        return False
    return True


def _process_stats(pid: int) -> dict[str, Any]:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            rss = proc.memory_info().rss
            times = proc.cpu_times()
        return {
            "alive": status != psutil.STATUS_ZOMBIE,
            "memory_rss": rss,
            "cpu_seconds": round(times.user + times.system, 3),
        }
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {"alive": False, "memory_rss": None, "cpu_seconds": None}


class _SupervisorActor(SimpleInbox, pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(
        self,
        spec: SupervisorSpec,
        zygote: Zygote | None,
        done: _Done,
        parent_notify: Callable[[ExitReason], None] | None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.zygote = zygote
        self.done = done
        self.parent_notify = parent_notify
        self.children: dict[str, _Child] = {}
        self.restart_log: deque[float] = deque()
        self.started_at = time.monotonic()
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
            child = _Child(spec, dynamic=False, meta=dict(spec.meta))
            try:
                self._start(child)
            except Exception as exc:
                self._shutdown_children()
                raise StartError(
                    f"supervisor {self.spec.id!r}: child {spec.id!r} failed to start: {exc}"
                ) from exc
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
            self.zygote._hub.close_owner(self.spare_owner)
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

    def _start(self, child: _Child, spare: Proc | None = None) -> None:
        """Start a new incarnation of ``child`` (adopting ``spare`` if given); raises if it cannot be started."""
        token = object()
        me = self.actor_ref
        cid = child.id
        spec = child.spec
        zygote = self.zygote

        def notify(reason: ExitReason, spare: Proc | None = None) -> None:
            if not _tell(me, _ChildExit(cid, token, reason, spare)) and spare is not None and zygote is not None:
                zygote._hub.discard(spare)

        if isinstance(spec, ProcessSpec):
            if self.zygote is None:
                raise StartError(f"supervisor {self.spec.id!r} has no zygote to start process {cid!r}")
            user_start, user_message = spec.on_start, spec.on_message

            def on_start(pid: int, channel: OwnerChannel) -> None:
                if user_start is not None:
                    user_start(cid, pid, channel)

            def on_message(msg: Any) -> None:
                if user_message is not None:
                    user_message(cid, msg)

            hub = self.zygote._hub
            child.armed = self._arm(child)
            if spare is not None and hub.adopt(
                spare,
                on_start=on_start,
                on_message=on_message if user_message is not None else None,
                on_exit=lambda _pid, reason, spare: notify(reason, spare),
            ):
                child.pid, child.proc = spare.pid, spare
                self.adopted = spare
                if not child.armed:  # the zygote armed the replacement like the original
                    hub.disarm(spare)
            else:
                child.proc = hub.spawn(
                    target_ref(spec.target),
                    spec.args,
                    on_start=on_start,
                    on_message=on_message if user_message is not None else None,
                    on_exit=lambda _pid, reason, spare: notify(reason, spare),
                    trap_exit=spec.trap_exit,
                    timeout=10.0,
                    arm=child.armed,
                    recycle=spec.recycle,
                    owner=self.spare_owner,
                )
                child.pid = child.proc.pid
        elif isinstance(spec, SupervisorSpec):
            child.sup = Supervisor._spawn(spec, self.zygote, notify)
            child.pid = os.getpid()
        else:
            child.actor = _supervised_actor_class(spec.actor_class, notify).start(*spec.args, **spec.kwargs)
            child.pid = os.getpid()
        child.token = token
        child.state = "running"
        child.started_at = time.monotonic()
        child.started_wall = time.time()

    def _arm(self, child: _Child) -> bool:
        """Should the zygote restart ``child`` speculatively? Only if an abnormal exit right now would be
        restarted alone: one_for_one, not temporary, and neither intensity at its limit."""
        spec = child.spec
        if (
            self.zygote is None
            or self.zygote.warm_pool == 0
            or self.spec.strategy != Strategy.ONE_FOR_ONE
            or spec.restart == Restart.TEMPORARY
            or isinstance(spec, SupervisorSpec)
        ):
            return False
        if spec.max_restarts is not None and self._at_limit(child.restart_log, spec.max_restarts, spec.max_seconds):
            return False
        return not (
            self.spec.max_restarts is not None
            and self._at_limit(self.restart_log, self.spec.max_restarts, self.spec.max_seconds)
        )

    @staticmethod
    def _at_limit(log: deque[float], max_restarts: int, max_seconds: float) -> bool:
        """True if one more restart now would exceed the intensity (forgets restarts older than the window)."""
        since = time.monotonic() - max_seconds
        while log and log[0] < since:
            log.popleft()
        return len(log) + 1 > max_restarts

    def _disarm_all(self) -> None:
        """The supervisor is at its intensity limit: no more speculative restarts of any child."""
        if self.zygote is None:
            return
        for child in self.children.values():
            if child.armed and child.proc is not None:
                child.armed = False
                self.zygote._hub.disarm(child.proc)

    def _terminate(self, child: _Child, *, kill: bool = False) -> ExitReason:
        """Stop a running child on purpose (grace period, then SIGKILL); calls its on_exit."""
        child.token = None
        reason: ExitReason | None = ExitReason.shutdown()
        spec = child.spec
        if child.proc is not None and self.zygote is not None:
            reason = self.zygote._hub.terminate_proc(child.proc, spec.shutdown_timeout, kill=kill)
        elif child.sup is not None:
            try:
                child.sup._stop_and_wait(spec.shutdown_timeout)
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

    def _record_exit(self, child: _Child, reason: ExitReason) -> None:
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
        if isinstance(message, _StartNowait):
            self.start_child_nowait(message.spec, message.on_error)
            return None
        return super().on_receive(message)

    def _child_exited(self, msg: _ChildExit) -> None:
        spare = msg.spare
        self.adopted = None
        try:
            self._handle_exit(msg, spare)
        finally:
            # A replacement started speculatively by the zygote that was not adopted: kill it.
            if spare is not None and spare is not self.adopted and self.zygote is not None:
                self.zygote._hub.discard(spare)
            self.adopted = None

    def _handle_exit(self, msg: _ChildExit, spare: Proc | None) -> None:
        if self.stopping:
            return
        child = self.children.get(msg.child_id)
        if child is None or child.token is None or child.token is not msg.token:
            return
        reason = msg.reason
        spec = child.spec
        transient_crash = spec.restart == Restart.TRANSIENT and reason.is_abnormal
        restart = spec.restart == Restart.PERMANENT or transient_crash
        if spare is not None and not restart and self.zygote is not None:
            self.zygote._hub.discard(spare)  # before on_exit: the spare should run as briefly as possible
        self._record_exit(child, reason)
        if not restart:
            if spec.restart == Restart.TEMPORARY or child.dynamic:
                self._remove(child)
            return
        per_child = not isinstance(spec, SupervisorSpec) and spec.max_restarts is not None
        if (
            per_child
            and spec.max_restarts is not None
            and self._exceeded(child.restart_log, spec.max_restarts, spec.max_seconds)
        ):
            self._remove(child)
            if spec.on_give_up is not None:
                try:
                    spec.on_give_up(child.id, reason)
                except Exception:
                    logger.exception("on_give_up of child %r failed", child.id)
            return
        if self.spec.max_restarts is not None and self._exceeded(
            self.restart_log, self.spec.max_restarts, self.spec.max_seconds
        ):
            self._escalate(child, reason)
            return
        self._restart_group(child, spare)

    @staticmethod
    def _exceeded(log: deque[float], max_restarts: int, max_seconds: float) -> bool:
        now = time.monotonic()
        log.append(now)
        while log and log[0] < now - max_seconds:
            log.popleft()
        return len(log) > max_restarts

    def _restart_group(self, failed: _Child, spare: Proc | None = None) -> None:
        strategy = self.spec.strategy
        children = list(self.children.values())
        if strategy == Strategy.ONE_FOR_ONE:
            group = [failed]
        elif strategy == Strategy.ONE_FOR_ALL:
            group = [c for c in children if c is failed or c.state == "running"]
        else:
            after = children[children.index(failed) :]
            group = [c for c in after if c is failed or c.state == "running"]
        if len(group) > 1:
            spare = None  # siblings are stopped first: the spare would run too early (it is discarded)
        for other in reversed(group):
            if other is not failed and other.state == "running":
                self._terminate(other)
        for child in group:
            if child is not failed and child.spec.restart == Restart.TEMPORARY:
                self._remove(child)
                continue
            self._restart_one(child, spare if child is failed else None)
        if self.spec.max_restarts is not None and self._at_limit(
            self.restart_log, self.spec.max_restarts, self.spec.max_seconds
        ):
            self._disarm_all()

    def _restart_one(self, child: _Child, spare: Proc | None = None) -> None:
        child.restarts += 1
        try:
            self._start(child, spare)
        except Exception as exc:
            logger.warning("restarting child %r of %r failed: %s", child.id, self.spec.id, exc)
            reason = ExitReason.from_exception(exc)
            token = object()
            child.token = token
            child.state = "restarting"
            _tell(self.actor_ref, _ChildExit(child.id, token, reason))

    def _escalate(self, child: _Child, reason: ExitReason) -> None:
        logger.error(
            "supervisor %r: more than %s restarts in %ss (last: child %r, %s); shutting down",
            self.spec.id, self.spec.max_restarts, self.spec.max_seconds, child.id, reason,
        )
        self.exit_reason = ExitReason(
            kind="exception",
            exc_type="supervisors.MaxRestartsExceeded",
            message=(
                f"supervisor {self.spec.id!r} exceeded {self.spec.max_restarts} restarts in "
                f"{self.spec.max_seconds}s; last exit: child {child.id!r}: {reason}"
            ),
            traceback=reason.traceback,
        )
        self.stopping = True
        self._shutdown_children()
        self.stop()

    def _remove(self, child: _Child) -> None:
        self.children.pop(child.id, None)

    # -- calls from the handle ----------------------------------------------------------------------

    def start_child(self, spec: ChildSpec) -> Any:
        self._check_open()
        if spec.id in self.children:
            raise SupervisorError(f"supervisor {self.spec.id!r} already has a child {spec.id!r}")
        child = _Child(spec, dynamic=True, meta=dict(spec.meta))
        try:
            self._start(child)
        except Exception as exc:
            raise StartError(f"child {spec.id!r} failed to start: {exc}") from exc
        self.children[spec.id] = child
        return self._public(child)

    def start_child_nowait(self, spec: ChildSpec, on_error: Callable[[str, BaseException], None] | None) -> None:
        """`start_child` for callers that must not wait: a failure goes to ``on_error(child_id, error)``."""
        try:
            self.start_child(spec)
        except Exception as exc:
            if on_error is None:
                logger.exception("starting child %r failed", spec.id)
            else:
                on_error(spec.id, exc)

    @staticmethod
    def _public(child: _Child) -> Any:
        if child.sup is not None:
            return child.sup
        if child.actor is not None:
            return child.actor
        return child.pid

    def _get(self, child_id: str) -> _Child:
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
        child = self.children.get(child_id)
        if child is None or child.state != "running" or child.proc is None or self.zygote is None:
            return False
        self.zygote._hub.signal_proc(child.proc, signal.SIGKILL)
        return True

    def restart_child(self, child_id: str) -> Any:
        self._check_open()
        child = self._get(child_id)
        if child.state == "running":
            raise SupervisorError(f"child {child_id!r} is running")
        self._start(child)
        return self._public(child)

    def delete_child(self, child_id: str) -> None:
        child = self._get(child_id)
        if child.state == "running":
            raise SupervisorError(f"child {child_id!r} is running; terminate it first")
        self._remove(child)

    def update_meta(self, child_id: str, kv: dict[str, Any]) -> None:
        self._get(child_id).meta.update(kv)

    def child_pid(self, child_id: str) -> int | None:
        child = self.children.get(child_id)
        return None if child is None else child.pid

    def which_children(self) -> list[ChildInfo]:
        return [
            ChildInfo(c.id, c.kind, c.pid, c.state, c.restarts, c.last_exit, dict(c.meta))
            for c in self.children.values()
        ]

    def count_children(self) -> dict[str, int]:
        kids = list(self.children.values())
        return {
            "specs": len(kids),
            "active": sum(c.state == "running" for c in kids),
            "supervisors": sum(c.kind == "supervisor" for c in kids),
            "workers": sum(c.kind != "supervisor" for c in kids),
        }

    def tree(self) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "kind": "supervisor",
            "pid": os.getpid(),
            "state": "stopping" if self.stopping else "running",
            "strategy": str(self.spec.strategy),
            "max_restarts": self.spec.max_restarts,
            "max_seconds": self.spec.max_seconds,
            "uptime": round(time.monotonic() - self.started_at, 3),
            "children": [self._node(c) for c in self.children.values()],
        }

    def _node(self, child: _Child) -> dict[str, Any]:
        now = time.monotonic()
        node: dict[str, Any] = {
            "id": child.id,
            "kind": child.kind,
            "pid": child.pid,
            "state": child.state,
            "restart": str(child.spec.restart),
            "restarts": child.restarts,
            "last_exit": None if child.last_exit is None else child.last_exit.to_dict(),
            "uptime": None if child.started_at is None else round(now - child.started_at, 3),
            "started_at": child.started_wall,
            "meta": dict(child.meta),
        }
        if child.kind == "process":
            if child.pid is not None and child.state == "running":
                node.update(_process_stats(child.pid))
                if not node["alive"]:
                    node["state"] = "exiting"  # dead, its exit not yet handled by this supervisor
            else:
                node.update({"alive": False, "memory_rss": None, "cpu_seconds": None})
        elif child.sup is not None:
            try:
                sub = child.sup.tree(timeout=10.0)
            except (pykka.ActorDeadError, pykka.Timeout):
                sub = {"children": [], "state": "stopping"}
            node["children"] = sub.get("children", [])
            node["strategy"] = sub.get("strategy")
            node["supervisor_state"] = sub.get("state")
        elif child.actor is not None:
            node["actor_urn"] = child.actor.actor_urn
        return node


def _supervised_actor_class(
    base: type[pykka.Actor], notify: Callable[[ExitReason], None]
) -> type[pykka.Actor]:
    """A subclass of ``base`` that tells its supervisor when it stops or crashes."""

    def _handle_failure(self: Any, exc_type: Any, exc_value: Any, tb: Any) -> None:
        base._handle_failure(self, exc_type, exc_value, tb)
        if exc_value is None:
            notify(ExitReason(kind="exception"))
        else:
            notify(ExitReason.from_exception(exc_value))

    def on_stop(self: Any) -> None:
        try:
            base.on_stop(self)
        finally:
            notify(ExitReason.normal())

    cls = type(base.__name__, (base,), {"_handle_failure": _handle_failure, "on_stop": on_stop})
    cls.__qualname__ = base.__qualname__
    cls.__module__ = base.__module__
    return cls


class Supervisor:
    """A handle on a running supervisor (a pykka actor): start and stop children, inspect the tree.

    Create one with `Supervisor.start`; nested supervisors are created by `start_child` with a
    `SupervisorSpec` (or listed in a parent's ``children``) and returned as handles too. Every method is a
    synchronous call to the actor, safe from any thread except the I/O hub's callbacks (``on_start``,
    ``on_message``), which must not wait on a supervisor.
    """

    def __init__(self, ref: pykka.ActorRef[Any], spec: SupervisorSpec, done: _Done) -> None:
        self.actor_ref = ref
        """The supervisor's pykka actor ref."""
        self.spec = spec
        """The spec it was started with."""
        self._done = done
        self._proxy: Any = None  # made at first use: building a pykka proxy introspects the whole actor

    @property
    def id(self) -> str:
        """The supervisor's id."""
        return self.spec.id

    @classmethod
    def start(
        cls, spec: SupervisorSpec, zygote: Zygote | None = None, *, timeout: float = 60.0
    ) -> Supervisor:
        """Start a root supervisor and its static children (in order); process children need a ``zygote``.

        Raises `StartError` if a static child cannot be started (those already started are stopped).
        """
        return cls._spawn(spec, zygote, None, timeout=timeout)

    @classmethod
    def _spawn(
        cls,
        spec: SupervisorSpec,
        zygote: Zygote | None,
        parent_notify: Callable[[ExitReason], None] | None,
        *,
        timeout: float = 60.0,
    ) -> Supervisor:
        done = _Done()
        ref = _SupervisorActor.start(spec, zygote, done, parent_notify)
        handle = cls(ref, spec, done)
        try:
            handle._call("init_children", timeout=timeout)
        except BaseException:
            done.reason = ExitReason.shutdown()
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(block=True, timeout=timeout)
            raise
        return handle

    def _actor(self) -> Any:
        proxy = self._proxy
        if proxy is None:
            proxy = self._proxy = self.actor_ref.proxy()
        return proxy

    def _call(self, name: str, *args: Any, timeout: float | None = None) -> Any:
        return getattr(self._actor(), name)(*args).get(timeout=timeout)

    @overload
    def start_child(self, spec: ProcessSpec) -> int: ...
    @overload
    def start_child(self, spec: SupervisorSpec) -> Supervisor: ...
    @overload
    def start_child(self, spec: ActorSpec) -> pykka.ActorRef[Any]: ...
    def start_child(self, spec: ChildSpec) -> Any:
        """Start a dynamic child: returns its pid (process), its handle (supervisor) or its ActorRef (actor).

        Dynamic children are removed when they exit for good (temporary, transient after a normal exit,
        gave up) or are terminated. Raises `StartError` if it cannot be started (e.g. unknown target).
        """
        return self._call("start_child", spec)

    def start_child_nowait(
        self, spec: ProcessSpec, on_error: Callable[[str, BaseException], None] | None = None
    ) -> None:
        """Start a dynamic process child without waiting for it: the supervisor starts it in its own thread.

        The child's ``on_start`` says when it runs; if it cannot be started, ``on_error(child_id, error)`` is
        called (from the supervisor's thread), else the failure is logged. For callers, like an engine's event
        loop, that must never block on a fork.
        """
        with contextlib.suppress(pykka.ActorDeadError):  # as a proxy call's future would have held it
            self.actor_ref.tell(_StartNowait(spec, on_error))

    def terminate_child(self, child_id: str, kill: bool = False) -> ExitReason | None:
        """Stop a child: graceful (``SIGTERM``, ``shutdown_timeout``, then ``SIGKILL``) or ``kill`` at once.

        A dynamic child is removed; a static one stays listed as ``stopped`` (see `restart_child`).
        Returns its exit reason, or None if it was not running.
        """
        return self._call("terminate_child", child_id, kill)  # type: ignore[no-any-return]

    def kill_child(self, child_id: str) -> bool:
        """``SIGKILL`` a process child as a crash would: not a shutdown, so its restart policy applies. Only
        the incarnation running now is killed, never a later one in the same (recycled) pid. False if the
        child is not a running process."""
        return self._call("kill_child", child_id)  # type: ignore[no-any-return]

    def restart_child(self, child_id: str) -> Any:
        """Start again a static child that is stopped."""
        return self._call("restart_child", child_id)

    def delete_child(self, child_id: str) -> None:
        """Forget a stopped child."""
        self._call("delete_child", child_id)

    def update_meta(self, child_id: str, **kv: Any) -> None:
        """Merge ``kv`` into the child's free-form metadata (shown by `tree`)."""
        self._call("update_meta", child_id, kv)

    def pid_of(self, child_id: str) -> int | None:
        """The OS pid of a child (the engine's pid for actors and supervisors), None if not running."""
        return self._call("child_pid", child_id)  # type: ignore[no-any-return]

    def which_children(self) -> list[ChildInfo]:
        """The children, in start order."""
        return self._call("which_children")  # type: ignore[no-any-return]

    def count_children(self) -> dict[str, int]:
        """Counts as in OTP: ``specs``, ``active``, ``supervisors``, ``workers``."""
        return self._call("count_children")  # type: ignore[no-any-return]

    def tree(self, timeout: float | None = 30.0) -> dict[str, Any]:
        """A JSON-able snapshot of this supervisor and everything under it (see docs/supervisors.md)."""
        return self._call("tree", timeout=timeout)  # type: ignore[no-any-return]

    def is_alive(self) -> bool:
        """True until the supervisor has stopped (or given up)."""
        return not self._done.event.is_set()

    def wait(self, timeout: float | None = None) -> ExitReason | None:
        """Wait for the supervisor to exit; its reason (``shutdown``, or ``exception`` when it gave up)."""
        self._done.event.wait(timeout)
        return self._done.reason

    @property
    def exit_reason(self) -> ExitReason | None:
        """Why it exited, None while it runs."""
        return self._done.reason

    def stop(self, timeout: float | None = None) -> None:
        """Ordered shutdown: children stop in reverse start order, each with its grace period."""
        self._stop_and_wait(timeout)

    def _stop_and_wait(self, timeout: float | None) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.stop(block=True, timeout=timeout)
        self._done.event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Supervisor {self.id!r}{'' if self.is_alive() else ' stopped'}>"
