"""A supervisor's record of each child (owner side): its spec, current incarnation and restart history, and
what is reported about it (`ChildInfo`, the nodes of ``tree()``); how an incarnation of a process child is
started (spawned, or a spare adopted); and the pykka actor subclass that tells its supervisor when an actor
child stops or crashes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import psutil
import pykka

from ._channel import OwnerChannel
from ._decisions import Intensity
from ._hub import Hub
from ._proc import OnExit, OnMessage, OnStart, Proc, SpareOwner
from ._reasons import ExitReason
from ._specs import ChildSpec, ProcessSpec, Restart, SupervisorSpec, target_ref
from ._tickets import SpawnTicket

ChildKind = Literal["process", "supervisor", "actor"]
ChildState = Literal["running", "restarting", "stopped"]
#: How long a process child's spawn may take (the zygote's answer), in seconds.
SPAWN_TIMEOUT: Final = 10.0


class NestedSupervisor(Protocol):
    """What a supervisor needs of the handle of a supervisor it supervises."""

    def stop(self, timeout: float | None = None) -> None:
        """Ordered shutdown, waiting at most ``timeout`` s."""

    def tree(self, timeout: float | None = 30.0) -> dict[str, Any]:
        """Its snapshot."""


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


def kind_of(spec: ChildSpec) -> ChildKind:
    """The kind of child a spec describes."""
    if isinstance(spec, ProcessSpec):
        return "process"
    if isinstance(spec, SupervisorSpec):
        return "supervisor"
    return "actor"


@dataclass(eq=False)
class Child:
    """One child of a supervisor: its spec and what runs now (compared by identity)."""

    spec: ChildSpec
    dynamic: bool
    meta: dict[str, Any]
    token: object | None = None
    """Identifies the current incarnation: an exit report carrying another token is stale."""
    state: ChildState = "stopped"
    pid: int | None = None
    proc: Proc | None = None  # a process child's current incarnation
    sup: NestedSupervisor | None = None
    actor: pykka.ActorRef[Any] | None = None
    restarts: int = 0
    intensity: Intensity | None = None
    """Its own restart intensity (``max_restarts`` of a process or actor spec), None if it has none."""
    last_exit: ExitReason | None = None
    failed_restarts: int = 0
    """Restarts that failed in a row (each is logged as a warning only when it is the first of its streak)."""
    started_at: float | None = None
    started_wall: float | None = None
    armed: bool = False  # the zygote restarts it speculatively after an abnormal exit

    def __post_init__(self) -> None:
        spec = self.spec
        if not isinstance(spec, SupervisorSpec) and spec.max_restarts is not None:
            self.intensity = Intensity(spec.max_restarts, spec.max_seconds)

    @property
    def id(self) -> str:
        """Its id."""
        return self.spec.id

    @property
    def kind(self) -> ChildKind:
        """Process, supervisor or actor."""
        return kind_of(self.spec)

    @property
    def restart(self) -> Restart:
        """Its restart type."""
        return self.spec.restart

    @property
    def running(self) -> bool:
        """True while an incarnation runs."""
        return self.state == "running"

    def info(self) -> ChildInfo:
        """Its line of `Supervisor.which_children`."""
        return ChildInfo(self.id, self.kind, self.pid, self.state, self.restarts, self.last_exit, dict(self.meta))

    def public(self) -> Any:
        """What ``start_child`` returns for it: a supervisor handle, an actor ref, or a pid."""
        if self.sup is not None:
            return self.sup
        if self.actor is not None:
            return self.actor
        return self.pid

    def node(self, now: float) -> dict[str, Any]:
        """Its node of ``tree()`` (``now``: the supervisor's monotonic time, for the uptime)."""
        node: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "pid": self.pid,
            "state": self.state,
            "restart": str(self.spec.restart),
            "restarts": self.restarts,
            "last_exit": None if self.last_exit is None else self.last_exit.to_dict(),
            "uptime": None if self.started_at is None else round(now - self.started_at, 3),
            "started_at": self.started_wall,
            "meta": dict(self.meta),
        }
        if self.kind == "process":
            if self.pid is not None and self.state == "running":
                node.update(process_stats(self.pid))
                if not node["alive"]:
                    node["state"] = "exiting"  # dead, its exit not yet handled by this supervisor
            else:
                node.update({"alive": False, "memory_rss": None, "cpu_seconds": None})
        elif self.sup is not None:
            try:
                sub = self.sup.tree(timeout=10.0)
            except (pykka.ActorDeadError, pykka.Timeout):
                sub = {"children": [], "state": "stopping"}
            node["children"] = sub.get("children", [])
            node["strategy"] = sub.get("strategy")
            node["supervisor_state"] = sub.get("state")
        elif self.actor is not None:
            node["actor_urn"] = self.actor.actor_urn
        return node


def start_process(
    child: Child,
    spec: ProcessSpec,
    hub: Hub,
    notify: Callable[[ExitReason, Proc | None], None],
    *,
    spare: Proc | None,
    arm: bool,
    owner: SpareOwner,
) -> bool:
    """Start a new incarnation of the process child ``child``: adopt ``spare`` (a replacement the zygote already
    started) if there is one and it is still wanted, else spawn one. ``arm``: the zygote may restart it
    speculatively. True if ``spare`` was adopted. Raises `SpawnError` if it cannot be started."""
    on_start, on_message, on_exit = _callbacks(child.id, spec, notify)
    child.armed = arm
    if spare is not None and hub.adopt(spare, on_start=on_start, on_message=on_message, on_exit=on_exit):
        child.pid, child.proc = spare.pid, spare
        if not arm:  # the zygote armed the replacement like the original
            hub.disarm(spare)
        return True
    child.proc = hub.spawn(
        target_ref(spec.target),
        spec.args,
        on_start=on_start,
        on_message=on_message,
        on_exit=on_exit,
        trap_exit=spec.trap_exit,
        timeout=SPAWN_TIMEOUT,
        arm=arm,
        recycle=spec.recycle,
        owner=owner,
    )
    child.pid = child.proc.pid
    return False


def spawn_process_nowait(
    child: Child,
    spec: ProcessSpec,
    hub: Hub,
    notify: Callable[[ExitReason, Proc | None], None],
    on_done: Callable[[SpawnTicket], None],
    *,
    arm: bool,
    owner: SpareOwner,
) -> SpawnTicket | None:
    """Ask for a new incarnation of the process child ``child`` without waiting (see `Hub.spawn_nowait`): its
    ticket, or None if the hub's zygote is gone (`start_process` then asks its successor). ``child`` gets its
    ``proc`` and ``pid`` from the caller once the ticket is done. Raises `SpawnError` for arguments that cannot
    be sent."""
    on_start, on_message, on_exit = _callbacks(child.id, spec, notify)
    child.armed = arm
    return hub.spawn_nowait(
        target_ref(spec.target),
        spec.args,
        on_start=on_start,
        on_message=on_message,
        on_exit=on_exit,
        on_done=on_done,
        trap_exit=spec.trap_exit,
        timeout=SPAWN_TIMEOUT,
        arm=arm,
        recycle=spec.recycle,
        owner=owner,
    )


def _callbacks(
    cid: str, spec: ProcessSpec, notify: Callable[[ExitReason, Proc | None], None]
) -> tuple[OnStart, OnMessage | None, OnExit]:
    """The hub's callbacks for an incarnation of the process child ``cid``: ``spec``'s, given the child's id,
    and its exit told to its supervisor through ``notify``."""
    user_start, user_message = spec.on_start, spec.on_message

    def on_start(pid: int, channel: OwnerChannel) -> None:
        if user_start is not None:
            user_start(cid, pid, channel)

    def on_message(msg: Any) -> None:
        if user_message is not None:
            user_message(cid, msg)

    return on_start, on_message if user_message is not None else None, lambda _pid, reason, spare: notify(reason, spare)


def process_stats(pid: int) -> dict[str, Any]:
    """Liveness, memory and CPU time of a process, for ``tree()``."""
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


def supervised_actor_class(base: type[pykka.Actor], notify: Callable[[ExitReason], None]) -> type[pykka.Actor]:
    """A subclass of ``base`` that tells its supervisor when it stops or crashes."""

    def _handle_failure(self: Any, exc_type: Any, exc_value: Any, tb: Any) -> None:
        super(cls, self)._handle_failure(exc_type, exc_value, tb)  # pykka's hook, extended
        if exc_value is None:
            notify(ExitReason(kind="exception"))
        else:
            notify(ExitReason.from_exception(exc_value))

    def on_stop(self: Any) -> None:
        try:
            super(cls, self).on_stop()
        finally:
            notify(ExitReason.normal())

    cls: type[pykka.Actor] = type(base.__name__, (base,), {"_handle_failure": _handle_failure, "on_stop": on_stop})
    cls.__qualname__ = base.__qualname__
    cls.__module__ = base.__module__
    return cls
