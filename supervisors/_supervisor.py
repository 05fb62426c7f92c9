"""The `Supervisor` handle (owner side): what the rest of the program holds. It only forwards calls to the
supervisor actor (`_actor`), where every decision is made."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, overload

import pykka

from ._actor import Clock, Done, StartNowait, spawn_supervisor
from ._children import ChildInfo
from ._reasons import ExitReason
from ._specs import ActorSpec, ChildSpec, ProcessSpec, SupervisorSpec
from ._zygote import Zygote


class Supervisor:
    """A handle on a running supervisor (a pykka actor): start and stop children, inspect the tree.

    Create one with `Supervisor.start`; nested supervisors are created by `start_child` with a
    `SupervisorSpec` (or listed in a parent's ``children``) and returned as handles too. Every method is a
    synchronous call to the actor, safe from any thread except the I/O hub's callbacks (``on_start``,
    ``on_message``), which must not wait on a supervisor.
    """

    def __init__(self, ref: pykka.ActorRef[Any], spec: SupervisorSpec, done: Done) -> None:
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
        cls,
        spec: SupervisorSpec,
        zygote: Zygote | None = None,
        *,
        timeout: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> Supervisor:
        """Start a root supervisor and its static children (in order); process children need a ``zygote``.

        ``clock`` (monotonic seconds) is the supervisor's only time source, inherited by the supervisors under
        it: restart intensity windows and uptimes are measured with it (tests inject a fake one).

        Raises `StartError` if a static child cannot be started (those already started are stopped).
        """
        handle = spawn_supervisor(spec, zygote, None, clock=clock, make_handle=cls, timeout=timeout)
        assert isinstance(handle, Supervisor)
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
        called (from the supervisor's thread), else the failure is logged. For callers, like an application's
        event loop, that must never block on a fork.
        """
        with contextlib.suppress(pykka.ActorDeadError):  # as a proxy call's future would have held it
            self.actor_ref.tell(StartNowait(spec, on_error))

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
        """The OS pid of a child (the owner process's pid for actors and supervisors), None if not running."""
        return self._call("child_pid", child_id)  # type: ignore[no-any-return]

    def child_supervisor(self, child_id: str) -> Supervisor | None:
        """The handle of the supervisor child ``child_id`` as it runs now, None if it is not running (or is no
        supervisor). A supervisor child that was restarted is a new actor: the handle ``start_child`` returned
        for its first incarnation then reaches nothing, this one does."""
        return self._call("child_supervisor", child_id)  # type: ignore[no-any-return]

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
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.stop(block=True, timeout=timeout)
        self._done.event.wait(timeout)

    def __repr__(self) -> str:
        return f"<Supervisor {self.id!r}{'' if self.is_alive() else ' stopped'}>"
