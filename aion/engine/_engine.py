"""``aion.Engine``: spawns the actor system on a data directory and is the Python API to it."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pykka

import supervisors as sv
from aion import events as ev
from aion._codec import check_payload, prepare_event_types
from aion._definitions import workflow_type_name
from aion._durations import Duration, optional_seconds, to_seconds
from aion._ids import new_workflow_id, validate_workflow_id
from aion.control import ControlServer, start_control_server
from aion.engine import _registry
from aion.engine._activity_worker import run_activity_worker
from aion.engine._core import EngineCore
from aion.engine._handle import WorkflowHandle
from aion.engine._interfaces import Closures
from aion.engine._messages import (
    Call,
    ProcessDown,
    ProcessGaveUp,
    ProcessMessage,
    ProcessUp,
    WorkerDown,
    WorkerMessage,
    WorkerUp,
)
from aion.engine._registry import Registry
from aion.engine._residency import DEFAULT_MAX_RESIDENT
from aion.engine._tree import run_node
from aion.engine._workflow_host import run_workflow_host, warm_up
from aion.errors import EngineNotRunningError, InvalidArgumentError, WorkflowNotFoundError
from aion.recorder import RecorderHandle, start_recorder
from aion.status import WorkflowStatus
from aion.store import EventStore, RunInfo, open_store

log = logging.getLogger(__name__)


def _sigkill(supervisor: sv.Supervisor | None, child_id: str) -> None:
    """SIGKILL ``supervisor``'s child ``child_id`` if it runs; the supervisor then applies its restart policy."""
    if supervisor is not None:
        with contextlib.suppress(sv.SupervisorError, pykka.ActorDeadError):
            supervisor.kill_child(child_id)


def _tell_each(items: list[tuple[pykka.ActorRef[EngineCore], Any]]) -> None:
    """Tell each core its messages, in order; silent for a core that has stopped (engine shutdown)."""
    for core, message in items:
        with contextlib.suppress(pykka.ActorDeadError):
            core.tell(message)


#: The messages the supervisors' hub callbacks make for a core in one round of the hub's loop, told back to back
#: at the end of the round (and before any exit is reported): the core is woken once per round rather than once
#: per frame, and the hub's next recv no longer hands it the GIL between two frames.
_HUB_ROUND: sv.Batch[tuple[pykka.ActorRef[EngineCore], Any]] = sv.Batch(_tell_each)


def _teller(core: pykka.ActorRef[EngineCore], make: Callable[..., Any]) -> Callable[..., None]:
    """A callback that tells the core ``make(*args)``: at the end of the hub's round when the hub calls it
    (``on_start``, ``on_message``), at once from any other thread; silent once the core has stopped."""
    add = _HUB_ROUND.add

    def tell(*args: Any) -> None:
        add((core, make(*args)))

    return tell


class Engine:
    """A durable workflow engine on one data directory. Use it as a context manager::

        with aion.Engine("./data", workflows=[checkout], activities=[charge]) as engine:
            handle = engine.start_workflow(checkout, {"id": 1}, workflow_id="order-1")
            print(handle.result(timeout=30))

    Entering starts the actor system (a zygote, the supervision tree, the recorder, activity workers) and
    resumes every workflow that was running in the data directory; leaving stops it cleanly. Workflows and
    activities must be decorated with ``@workflow.defn`` / ``@activity.defn``.

    Options: ``activity_workers`` (default: the number of CPUs), ``warm_pool`` (idle forked hosts kept ready),
    ``max_restarts``/``max_seconds`` (how often one workflow process may crash before the run fails),
    ``max_resident`` (how many runs hold a workflow process at once; beyond it, runs waiting on a signal, a child,
    a distant timer or an activity scheduled over a second ago are evicted, and new runs wait their turn: see
    docs/architecture.md, "Residency").
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        workflows: Iterable[Callable[..., Any]] = (),
        activities: Iterable[Callable[..., Any]] = (),
        *,
        activity_workers: int | None = None,
        warm_pool: int = 2,
        max_restarts: int = 5,
        max_seconds: float = 60.0,
        activity_cancel_grace: float = 5.0,
        max_resident: int = DEFAULT_MAX_RESIDENT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.registry = Registry.build(workflows, activities)
        workers = activity_workers if activity_workers is not None else (os.cpu_count() or 2)
        if workers < 1:
            raise InvalidArgumentError(f"activity_workers must be at least 1, got {workers}")
        if max_restarts < 0 or max_seconds <= 0:
            raise InvalidArgumentError("max_restarts must be >= 0 and max_seconds > 0")
        if isinstance(max_resident, bool) or not isinstance(max_resident, int) or max_resident < 1:
            raise InvalidArgumentError(f"max_resident must be an int of at least 1, got {max_resident!r}")
        self._max_resident = max_resident
        self._activity_workers = workers
        self._warm_pool = warm_pool
        self._max_restarts = max_restarts
        self._max_seconds = max_seconds
        self._cancel_grace = to_seconds(activity_cancel_grace, "activity_cancel_grace")
        self._lock = threading.Lock()
        self._running = False
        self._store: EventStore | None = None
        self._recorder: RecorderHandle | None = None
        self._zygote: sv.Zygote | None = None
        self._root: Any = None
        self._core: pykka.ActorProxy[EngineCore] | None = None
        self._type_supervisors: dict[str, Any] = {}
        self._activity_supervisor: Any = None
        self.closures = Closures()
        self._control: ControlServer | None = None  # the CLI's control socket, served while running

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the actor system and resume the running workflows found in the data directory."""
        with self._lock:
            if self._running:
                return
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # The zygote is forked first: before any engine thread exists (fork safety), and before the store
            # is open, so no child process inherits the writer lock or LMDB's file descriptors.
            _registry.install(self.registry)
            prepare_event_types()  # inherited by every workflow process, not built on its live path
            self._zygote = sv.Zygote.start(
                preload=self.registry.modules(), warm_pool=self._warm_pool, warm_up=f"{warm_up.__module__}:warm_up"
            )
            try:
                self._store = open_store(self.data_dir)
                self._recorder = start_recorder(self._store)
                self.closures.reset()
                core_ref = EngineCore.start(
                    self._store,
                    self._recorder,
                    self.registry,
                    self,
                    self.closures,
                    cancel_grace=self._cancel_grace,
                    max_resident=self._max_resident,
                )
                self._core = core_ref.proxy()
                self._root = sv.Supervisor.start(
                    sv.SupervisorSpec(id="aion", strategy=sv.Strategy.ONE_FOR_ONE, max_restarts=10, max_seconds=5.0),
                    zygote=self._zygote,
                )
                self._activity_supervisor = self._root.start_child(self._activity_supervisor_spec(core_ref))
                self._running = True
                self._core.recover().get()
                self._control = start_control_server(self)
            except BaseException:
                self._running = True
                self._shutdown()
                raise

    def stop(self) -> None:
        """Stop every process and actor; recorded history stays, and a new engine resumes from it."""
        with self._lock:
            if self._running:
                self._shutdown()

    def _shutdown(self) -> None:
        control, self._control = self._control, None
        if control is not None:
            control.stop()
        self._running = False
        for step in (self._stop_root, self._stop_core, self._stop_recorder, self._stop_zygote, self._close_store):
            try:
                step()
            except Exception:
                log.exception("error while stopping the engine")
        self._type_supervisors.clear()

    def _stop_root(self) -> None:
        if self._root is not None:
            self._root.stop()
            self._root = None

    def _stop_core(self) -> None:
        if self._core is not None:
            self._core.actor_ref.stop()
            self._core = None

    def _stop_recorder(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None

    def _stop_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the Python API -------------------------------------------------------------------------------------

    def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Duration | None = None,
        run_timeout: Duration | None = None,
    ) -> WorkflowHandle:
        """Start a run of ``workflow`` (a decorated function or a type name) with ``args``.

        ``workflow_id`` defaults to a new UUID. Raises ``WorkflowAlreadyStartedError`` while a run of that id is
        running; an id whose last run closed starts a new run. Returns once ``WorkflowStarted`` is durable.
        ``execution_timeout`` bounds the whole chain of runs (across continue-as-new), ``run_timeout`` this run;
        when one passes, ``WorkflowTimedOut`` is recorded and its work is cancelled.
        """
        name, workflow_id, arguments, options = self._start_request(
            workflow,
            args,
            workflow_id=workflow_id,
            search_attributes=search_attributes,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
        )
        events = self.call_core(EngineCore.start_workflow, name, workflow_id, arguments, options)
        return self._handle_of_start(workflow_id, events)

    def signal_with_start(
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str,
        signal: str,
        payload: Any = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Duration | None = None,
        run_timeout: Duration | None = None,
    ) -> WorkflowHandle:
        """Deliver ``signal`` to ``workflow_id``, starting it with ``args`` first if it is not running.

        Start and signal are one transaction: the workflow never runs without the signal, and a running one gets
        the signal without a second start.
        """
        if not isinstance(signal, str) or not signal:
            raise InvalidArgumentError(f"signal name must be a non-empty string, got {signal!r}")
        check_payload(payload, path=f"signal {signal!r} payload")
        name, workflow_id, arguments, options = self._start_request(
            workflow,
            args,
            workflow_id=workflow_id,
            search_attributes=search_attributes,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
        )
        events = self.call_core(EngineCore.signal_with_start, name, workflow_id, arguments, options, (signal, payload))
        if isinstance(events[0], ev.WorkflowStarted):
            return self._handle_of_start(workflow_id, events)
        return self.get_workflow(workflow_id)

    def _start_request(
        self,
        workflow: str | Callable[..., Any],
        args: Sequence[Any],
        *,
        workflow_id: str | None,
        search_attributes: dict[str, Any] | None,
        execution_timeout: Duration | None,
        run_timeout: Duration | None,
    ) -> tuple[str, str, list[Any], dict[str, Any]]:
        """Validate a start: the type name, the id, the arguments and the recorded options."""
        name = workflow_type_name(workflow)
        self.registry.workflow(name)
        workflow_id = new_workflow_id() if workflow_id is None else validate_workflow_id(workflow_id)
        arguments = list(args)
        check_payload(arguments, path=f"{name} input")
        if search_attributes is not None:
            check_payload(search_attributes, path="search_attributes")
        options = {
            "search_attributes": search_attributes,
            "execution_timeout": optional_seconds(execution_timeout, "execution_timeout"),
            "run_timeout": optional_seconds(run_timeout, "run_timeout"),
        }
        return name, workflow_id, arguments, options

    def _handle_of_start(self, workflow_id: str, events: list[ev.Event]) -> WorkflowHandle:
        started = events[0]
        assert isinstance(started, ev.WorkflowStarted)
        return WorkflowHandle(self, workflow_id, started.run_id)

    def get_workflow(self, workflow_id: str, run_id: str | None = None) -> WorkflowHandle:
        """A handle to ``workflow_id``'s current run (or run ``run_id``); ``WorkflowNotFoundError`` if unknown."""
        info = self.store.get_run(validate_workflow_id(workflow_id))
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowHandle(self, workflow_id, run_id or info.run_id)

    def list_workflows(
        self,
        *,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | Callable[..., Any] | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """The workflows' current runs, newest first, optionally filtered by status and type."""
        wanted = None
        if status is not None:
            try:
                wanted = WorkflowStatus(status)
            except ValueError:
                known = ", ".join(s.value for s in WorkflowStatus)
                raise InvalidArgumentError(f"unknown status {status!r} (one of: {known})") from None
        type_name = None if workflow_type is None else workflow_type_name(workflow_type)
        return self.store.list_workflows(status=wanted, workflow_type=type_name, limit=limit)

    def supervision_tree(self) -> dict[str, Any]:
        """A JSON-able snapshot of the live supervision tree (workflow processes carry their workflow ids)."""
        if self._root is None:
            raise EngineNotRunningError("the engine is not running")
        tree: dict[str, Any] = self._root.tree()
        return tree

    def residency(self) -> dict[str, int]:
        """How many runs hold a workflow process (``resident``), wait for one (``waiting``), how many were
        evicted since the engine started (``evictions``), and the bound (``max_resident``)."""
        return self._require_core().residency().get()  # type: ignore[no-any-return]

    def workflow_pid(self, workflow_id: str) -> int | None:
        """The pid of the live process hosting ``workflow_id``'s run, or ``None`` if it has none right now
        (between a crash and its restart, while it was evicted or waits for a slot, or once it has closed)."""
        node = run_node(self.supervision_tree(), workflow_id)
        return None if node is None else int(node["pid"])

    @property
    def store(self) -> EventStore:
        """The event store (read it freely; only the recorder writes)."""
        if self._store is None:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        return self._store

    @property
    def core(self) -> pykka.ActorProxy[EngineCore]:
        """The engine core actor (internal)."""
        return self._require_core()

    def call_core(self, method: Callable[..., pykka.Future[Any]], *args: Any, timeout: float | None = None) -> Any:
        """Run the core's API ``method`` (``EngineCore.signal``, ...) with ``args`` and wait for its outcome,
        at most ``timeout`` seconds (``pykka.Timeout``). Internal: what handles and the engine's methods use."""
        reply: pykka.Future[Any] = pykka.ThreadingFuture()
        self._require_core().actor_ref.tell(Call(method, args, reply))
        return reply.get(timeout=timeout)

    def _require_core(self) -> pykka.ActorProxy[EngineCore]:
        if self._core is None or not self._running:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        return self._core

    # -- processes (the core's Processes protocol) ----------------------------------------------------------

    def start_run_process(self, workflow_type: str, child_id: str, meta: dict[str, Any]) -> None:
        """Start the process hosting a run under its type's supervisor."""
        spec = self._workflow_spec(child_id, sv.Restart.TRANSIENT, meta)
        self._type_supervisor(workflow_type).start_child_nowait(spec, on_error=self._start_failed)

    def terminate_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill a run's process for good (the run was closed from outside)."""
        supervisor = self._type_supervisors.get(workflow_type)
        if supervisor is not None:
            with contextlib.suppress(sv.SupervisorError):
                supervisor.terminate_child(child_id, kill=True)

    def start_query_process(self, workflow_type: str, child_id: str) -> None:
        """Start a one-off process that replays a run to answer a query."""
        spec = self._workflow_spec(child_id, sv.Restart.TEMPORARY, {})
        self._type_supervisor(workflow_type).start_child_nowait(spec, on_error=self._start_failed)

    def _start_failed(self, child_id: str, error: BaseException) -> None:
        """A workflow process could not be started: its run fails (or its query is answered with the error)."""
        core = self._core
        if core is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                core.actor_ref.tell(ProcessGaveUp(child_id, f"the process could not be started: {error}"))

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL an activity worker; the activity supervisor (permanent children) replaces it."""
        _sigkill(self._activity_supervisor, worker_id)

    def _type_supervisor(self, workflow_type: str) -> Any:
        supervisor = self._type_supervisors.get(workflow_type)
        if supervisor is None:
            spec = sv.SupervisorSpec(
                id=f"workflows:{workflow_type}",
                strategy=sv.Strategy.ONE_FOR_ONE,
                restart=sv.Restart.PERMANENT,
                max_restarts=None,
            )
            supervisor = self._root.start_child(spec)
            self._type_supervisors[workflow_type] = supervisor
        return supervisor

    #: The core the workflow processes' callbacks tell, and those callbacks (on_start, on_message, on_exit,
    #: on_give_up): made once per core, not once per process.
    _workflow_tellers: tuple[pykka.ActorRef[EngineCore], tuple[Callable[..., None], ...]] | None = None

    def _workflow_spec(self, child_id: str, restart: sv.Restart, meta: dict[str, Any]) -> sv.ProcessSpec:
        core = self._require_core().actor_ref
        tellers = self._workflow_tellers
        if tellers is None or tellers[0] is not core:
            tellers = self._workflow_tellers = (
                core,
                (
                    _teller(core, lambda cid, _pid, channel: ProcessUp(cid, channel)),
                    _teller(core, ProcessMessage),
                    _teller(core, lambda cid, reason: ProcessDown(cid, str(reason))),
                    _teller(core, lambda cid, reason: ProcessGaveUp(cid, str(reason))),
                ),
            )
        on_start, on_message, on_exit, on_give_up = tellers[1]
        role, _, workflow_id = child_id.split(":", 2)
        return sv.ProcessSpec(
            id=child_id,
            target=run_workflow_host,
            args=(workflow_id,),
            recycle=True,
            restart=restart,
            shutdown_timeout=1.0,
            on_start=on_start,
            on_message=on_message,
            on_exit=on_exit,
            max_restarts=self._max_restarts,
            max_seconds=self._max_seconds,
            on_give_up=on_give_up,
            meta={"workflow_id": workflow_id, "role": role, **meta},
        )

    def _activity_supervisor_spec(self, core: pykka.ActorRef[EngineCore]) -> sv.SupervisorSpec:
        workers: Sequence[sv.ProcessSpec] = [
            sv.ProcessSpec(
                id=f"worker-{index}",
                target=run_activity_worker,
                restart=sv.Restart.PERMANENT,
                shutdown_timeout=1.0,
                on_start=_teller(core, lambda cid, _pid, channel: WorkerUp(cid, channel)),
                on_message=_teller(core, WorkerMessage),
                on_exit=_teller(core, lambda cid, reason: WorkerDown(cid, str(reason))),
                meta={"role": "activity_worker"},
            )
            for index in range(1, self._activity_workers + 1)
        ]
        return sv.SupervisorSpec(
            id="activities",
            strategy=sv.Strategy.ONE_FOR_ONE,
            max_restarts=100,
            max_seconds=10.0,
            children=workers,
        )
