"""The engine's supervision tree: the zygote, the root supervisor, one supervisor per workflow type, and the pool
of activity workers; and the core's :class:`~aion.engine._interfaces.Processes` on top of it.

Process callbacks from the supervisors' hub become core messages: they are told back to back at the end of a hub
round (:data:`HUB_ROUND`), so the core is woken once per round rather than once per frame.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pykka

import supervisors as sv
from aion.engine._activity_worker import run_activity_worker
from aion.engine._child_ids import parse_child_id
from aion.engine._messages import (
    ProcessDown,
    ProcessGaveUp,
    ProcessMessage,
    ProcessUp,
    WorkerDown,
    WorkerMessage,
    WorkerUp,
)
from aion.engine._registry import Registry
from aion.engine._task_queues import LocalQueue
from aion.engine._workflow_host import run_workflow_host, warm_up

log = logging.getLogger(__name__)

#: The root supervisor's restart intensity, which the zygote's restarts are held to as well.
ROOT_MAX_RESTARTS = 10
ROOT_MAX_SECONDS = 5.0

#: The core's mailbox, as the callbacks see it.
CoreRef = pykka.ActorRef[Any]


def kill_leftovers(session_file: Path) -> int:
    """Kill what a previous incarnation left running (its zygote's session, see `supervisors.kill_session`),
    as recorded in ``session_file``; how many processes were killed."""
    try:
        pid, started = (int(field) for field in session_file.read_text().split())
    except (OSError, ValueError):
        return 0
    killed = sv.kill_session(pid, started)
    if killed:
        log.warning("killed %d process(es) left running by a previous engine (zygote %d)", killed, pid)
    return killed


def _tell_each(items: list[tuple[CoreRef, Any]]) -> None:
    """Tell each core its messages, in order; silent for a core that has stopped (engine shutdown)."""
    for core, message in items:
        with contextlib.suppress(pykka.ActorDeadError):
            core.tell(message)


#: The messages the hub's callbacks make for a core in one round of the hub's loop, told back to back at the end
#: of the round (and before any exit is reported): the hub's next recv no longer hands the core the GIL between
#: two frames.
HUB_ROUND: sv.Batch[tuple[CoreRef, Any]] = sv.Batch(_tell_each)


def _teller(core: CoreRef, make: Callable[..., Any]) -> Callable[..., None]:
    """A callback that tells the core ``make(*args)`` at the end of the hub's round (at once from any other
    thread); silent once the core has stopped."""
    add = HUB_ROUND.add

    def tell(*args: Any) -> None:
        add((core, make(*args)))

    return tell


class Supervision:
    """Starts and owns the supervision tree of one engine incarnation; implements ``Processes`` for its core."""

    def __init__(
        self,
        registry: Registry,
        *,
        warm_pool: int,
        activity_workers: int,
        max_restarts: int,
        max_seconds: float,
        local_queues: Mapping[str, LocalQueue] | None = None,
        close_fds: Sequence[int] = (),
        session_file: Path | None = None,
        on_give_up: Callable[[str], None] | None = None,
        host_cpus: frozenset[int] | None = None,
        all_cpus: frozenset[int] | None = None,
    ) -> None:
        self._session_file = session_file
        if session_file is not None:
            kill_leftovers(session_file)
        # The zygote is forked first: before any engine thread exists (fork safety), and before the store is open,
        # so no child process inherits LMDB's file descriptors; it closes the writer lock's (``close_fds``).
        self.zygote = sv.Zygote.start(
            preload=registry.modules(),
            warm_pool=warm_pool,
            warm_up=f"{warm_up.__module__}:warm_up",
            close_fds=close_fds,
            # The zygote is a child of the root like any other: restarted within the root's intensity.
            max_restarts=ROOT_MAX_RESTARTS,
            max_seconds=ROOT_MAX_SECONDS,
            on_restart=lambda _old, _new: self._record_session(),
            on_give_up=on_give_up,
            # The zygote hands every run its process: it runs beside them, off the engine's CPU. Its idle hosts warm
            # up on every CPU: refilling the pool after a crash may use the engine's CPU while the restarted run
            # replays on the others.
            cpus=host_cpus,
            pool_cpus=all_cpus,
        )
        self._record_session()
        #: Each local task queue (``"default"``: ``activity_workers`` workers).
        self._local_queues = (
            dict(local_queues) if local_queues is not None else {"default": LocalQueue(workers=activity_workers)}
        )
        #: Each local task queue's supervisor id (its handle is asked of the root when needed: a supervisor the
        #: root restarted after it escalated is a new actor).
        self._activity_supervisors: dict[str, str] = {}
        self._max_restarts = max_restarts
        self._max_seconds = max_seconds
        #: The workflow processes' CPUs, which each sets as its run starts (see `run_workflow_host`), and the
        #: engine's starting thread's: an activity worker sets one or the other as it starts (see
        #: `run_activity_worker` and ``LocalQueue.use_engine_cpu``).
        self._host_cpus = None if host_cpus is None else sorted(host_cpus)
        self._all_cpus = None if all_cpus is None else sorted(all_cpus)
        self._root: sv.Supervisor | None = None
        self._type_supervisors: dict[str, sv.Supervisor] = {}
        self._workflow_tellers: tuple[Callable[..., None], ...] = ()
        self._core: CoreRef | None = None
        #: The tree is being stopped: a process that cannot start now is no failure of its run.
        self._stopping = False

    def start(self, core: CoreRef) -> None:
        """Start the root supervisor and the activity workers, reporting to ``core``."""
        self._core = core
        self._workflow_tellers = (
            _teller(core, lambda cid, _pid, channel: ProcessUp(cid, channel)),
            _teller(core, ProcessMessage),
            _teller(core, lambda cid, reason: ProcessDown(cid, str(reason))),
            self._unless_down(_teller(core, lambda cid, reason: ProcessGaveUp(cid, str(reason)))),
        )
        self._root = sv.Supervisor.start(
            sv.SupervisorSpec(
                id="aion",
                strategy=sv.Strategy.ONE_FOR_ONE,
                max_restarts=ROOT_MAX_RESTARTS,
                max_seconds=ROOT_MAX_SECONDS,
            ),
            zygote=self.zygote,
        )
        for queue, config in self._local_queues.items():
            spec = self._activity_supervisor_spec(core, queue, config)
            self._root.start_child(spec)
            self._activity_supervisors[queue] = spec.id

    def tree(self) -> dict[str, Any] | None:
        """A snapshot of the live tree, or None before it started."""
        return None if self._root is None else self._root.tree()

    def stop_tree(self) -> None:
        """Stop the tree, in reverse start order (every workflow process and activity worker)."""
        self._stopping = True
        root, self._root = self._root, None
        self._type_supervisors.clear()
        if root is not None:
            root.stop()

    def stop_zygote(self) -> None:
        """Stop the zygote (and the idle hosts it keeps)."""
        self.zygote.stop()
        if self._session_file is not None:
            with contextlib.suppress(OSError):
                self._session_file.unlink()

    def _record_session(self) -> None:
        """Write down the zygote's session, for `kill_leftovers` after a SIGKILL of engine and zygote."""
        if self._session_file is None:
            return
        started = sv.start_time(self.zygote.pid)
        with contextlib.suppress(OSError):
            tmp = self._session_file.with_suffix(".tmp")
            tmp.write_text(f"{self.zygote.pid} {started}\n")
            os.replace(tmp, self._session_file)

    # -- Processes ------------------------------------------------------------------------------------------

    def start_run_process(self, workflow_type: str, child_id: str, meta: dict[str, Any]) -> None:
        """Start the process hosting a run under its type's supervisor (nothing once the tree is stopping)."""
        if self._stopping:
            return
        spec = self._workflow_spec(child_id, sv.Restart.TRANSIENT, meta)
        self._type_supervisor(workflow_type).start_child_nowait(spec, on_error=self._start_failed)

    def terminate_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill a run's process for good."""
        supervisor = self._type_supervisors.get(workflow_type)
        if supervisor is not None:
            with contextlib.suppress(sv.SupervisorError):
                supervisor.terminate_child(child_id, kill=True)

    def start_query_process(self, workflow_type: str, child_id: str) -> None:
        """Start a one-off process that replays a run to answer a query (nothing once the tree is stopping)."""
        if self._stopping:
            return
        spec = self._workflow_spec(child_id, sv.Restart.TEMPORARY, {})
        self._type_supervisor(workflow_type).start_child_nowait(spec, on_error=self._start_failed)

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL an activity worker; the activity supervisor (permanent children) replaces it."""
        queue = worker_id.partition("/")[0] if "/" in worker_id else "default"
        supervisor_id = self._activity_supervisors.get(queue)
        if supervisor_id is None or self._root is None:
            return
        with contextlib.suppress(sv.SupervisorError, pykka.ActorDeadError):
            supervisor = self._root.child_supervisor(supervisor_id)
            if supervisor is not None:
                supervisor.kill_child(worker_id)

    # -- internals ------------------------------------------------------------------------------------------

    def _unless_down(self, tell: Callable[..., None]) -> Callable[..., None]:
        """``tell``, except once the zygote is down for good: a process that cannot start then is no fault of its
        run's, which must not fail for it (the engine is stopping; the next one resumes the run)."""

        def guarded(*args: Any) -> None:
            if self.zygote.gave_up is None:
                tell(*args)

        return guarded

    def _start_failed(self, child_id: str, error: BaseException) -> None:
        """A workflow process could not be started: its run fails (or its query is answered with the error),
        unless the engine is stopping (a run given a slot as the tree stops resumes with the next engine)."""
        if self._core is not None and not self._stopping and self.zygote.gave_up is None:
            with contextlib.suppress(pykka.ActorDeadError):
                self._core.tell(ProcessGaveUp(child_id, f"the process could not be started: {error}"))

    def _type_supervisor(self, workflow_type: str) -> sv.Supervisor:
        supervisor = self._type_supervisors.get(workflow_type)
        if supervisor is None:
            assert self._root is not None
            spec = sv.SupervisorSpec(
                id=f"workflows:{workflow_type}",
                strategy=sv.Strategy.ONE_FOR_ONE,
                restart=sv.Restart.PERMANENT,
                max_restarts=None,
            )
            supervisor = self._root.start_child(spec)
            self._type_supervisors[workflow_type] = supervisor
        return supervisor

    def _workflow_spec(self, child_id: str, restart: sv.Restart, meta: dict[str, Any]) -> sv.ProcessSpec:
        on_start, on_message, on_exit, on_give_up = self._workflow_tellers
        role, _, workflow_id = parse_child_id(child_id)
        return sv.ProcessSpec(
            id=child_id,
            target=run_workflow_host,
            args=(workflow_id, self._host_cpus),
            recycle=True,
            restart=restart,
            shutdown_timeout=1.0,
            on_start=on_start,
            on_message=on_message,
            on_exit=on_exit,
            max_restarts=self._max_restarts,
            max_seconds=self._max_seconds,
            on_give_up=on_give_up,
            meta={"workflow_id": workflow_id, "role": role.value, **meta},
        )

    def _activity_supervisor_spec(self, core: CoreRef, queue: str, config: LocalQueue) -> sv.SupervisorSpec:
        """The pool of a local task queue: ``activities`` with ``worker-N`` for ``"default"``, else
        ``activities:<queue>`` with ``<queue>/worker-N``."""
        prefix = "" if queue == "default" else f"{queue}/"
        cpus = self._all_cpus if config.use_engine_cpu else self._host_cpus
        workers: Sequence[sv.ProcessSpec] = [
            sv.ProcessSpec(
                id=f"{prefix}worker-{index}",
                target=run_activity_worker,
                args=(cpus,),
                restart=sv.Restart.PERMANENT,
                shutdown_timeout=1.0,
                on_start=_teller(core, lambda cid, _pid, channel: WorkerUp(cid, channel, queue)),
                on_message=_teller(core, WorkerMessage),
                on_exit=_teller(core, lambda cid, reason: WorkerDown(cid, str(reason))),
                meta={"role": "activity_worker", "task_queue": queue},
            )
            for index in range(1, (config.workers or 1) + 1)
        ]
        return sv.SupervisorSpec(
            id="activities" if queue == "default" else f"activities:{queue}",
            strategy=sv.Strategy.ONE_FOR_ONE,
            max_restarts=100,
            max_seconds=10.0,
            children=workers,
        )
