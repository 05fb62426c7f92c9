"""``aion.Engine``: spawns the actor system on a data directory and is the Python API to it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pykka

from aion import events as ev
from aion._codec import check_payload, prepare_event_types
from aion._definitions import workflow_type_name
from aion._durations import Duration, optional_seconds, to_seconds
from aion._ids import new_workflow_id, validate_workflow_id
from aion.clock import SYSTEM_CLOCK, Clock
from aion.control import ControlServer, start_control_server
from aion.engine import _registry
from aion.engine._closures import Closures
from aion.engine._core import EngineCore
from aion.engine._handle import WorkflowHandle
from aion.engine._messages import GetResidency, Recover, Request, SignalWithStart, StartWorkflow
from aion.engine._options import StartOptions
from aion.engine._registry import Registry
from aion.engine._residency import DEFAULT_MAX_RESIDENT
from aion.engine._supervision import Supervision
from aion.engine._tree import run_node
from aion.errors import EngineNotRunningError, EngineStoppedError, InvalidArgumentError, WorkflowNotFoundError
from aion.recorder import RecorderHandle, start_recorder
from aion.status import WorkflowStatus
from aion.store import EventStore, RunInfo, WriterLock, open_store

log = logging.getLogger(__name__)

#: How often a caller waiting for the core's reply looks whether the engine stopped after a fault (seconds).
_FAULT_POLL = 0.25

#: The file in the data directory naming the zygote's session (leftovers of a SIGKILLed engine are found by it).
SESSION_FILE = "zygote.session"


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
    docs/architecture.md, "Residency"), ``map_size`` (the most bytes the store may grow to: past it a write
    fails with ``StoreFullError``; default: only the disk bounds it).
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
        clock: Clock = SYSTEM_CLOCK,
        map_size: int | None = None,
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
        self._clock = clock
        self._store: EventStore | None = None
        self._recorder: RecorderHandle | None = None
        self._supervision: Supervision | None = None
        self._core: pykka.ActorRef[EngineCore] | None = None
        self.closures = Closures()
        self._control: ControlServer | None = None  # the CLI's control socket, served while running
        if map_size is not None and (isinstance(map_size, bool) or not isinstance(map_size, int) or map_size < 1 << 20):
            raise InvalidArgumentError(f"map_size must be an int of at least 1 MiB (bytes), got {map_size!r}")
        self._map_size = map_size
        self._writer_lock: WriterLock | None = None
        self._stopped_reason: str | None = None  # why the engine stopped by itself (see _stop_after_fault)

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
            self._stopped_reason = None
            self.data_dir.mkdir(parents=True, exist_ok=True)
            _registry.install(self.registry)
            prepare_event_types()  # inherited by every workflow process, not built on its live path
            # The writer lock first: a second engine is refused before it forks anything.
            self._writer_lock = WriterLock.acquire(self.data_dir)
            try:
                self._supervision = Supervision(
                    self.registry,
                    warm_pool=self._warm_pool,
                    activity_workers=self._activity_workers,
                    max_restarts=self._max_restarts,
                    max_seconds=self._max_seconds,
                    close_fds=(self._writer_lock.fd,),
                    session_file=self.data_dir / SESSION_FILE,
                    on_give_up=self._stop_after_fault,
                )
            except BaseException:
                self._writer_lock.release()
                self._writer_lock = None
                raise
            try:
                self._store = open_store(
                    self.data_dir, clock=self._clock, writer_lock=self._writer_lock, max_map_size=self._map_size
                )
                self._recorder = start_recorder(self._store)
                self.closures.reset()
                self._core = EngineCore.start(
                    self._store,
                    self._recorder,
                    self.registry,
                    self._supervision,
                    self.closures,
                    cancel_grace=self._cancel_grace,
                    max_resident=self._max_resident,
                    clock=self._clock,
                )
                self._supervision.start(self._core)
                self._running = True
                self.request(Recover())
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
        supervision = self._supervision
        steps = [self._stop_core, self._stop_recorder, self._close_store]
        if supervision is not None:
            steps = [supervision.stop_tree, self._stop_core, self._stop_recorder, supervision.stop_zygote]
            steps.append(self._close_store)
        self._supervision = None
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("error while stopping the engine")

    def _stop_after_fault(self, reason: str) -> None:
        """The engine cannot go on (its zygote could not be restarted): stop it loudly, from another thread
        (this is called from the supervisors' hub thread, which the stop waits on)."""
        self._stopped_reason = f"the engine stopped: {reason}"
        log.error("%s; every call now raises EngineStoppedError", self._stopped_reason)
        self.closures.wake_all()

        def stop() -> None:
            with self._lock:
                if self._running:
                    self._shutdown()

        threading.Thread(target=stop, name="aion-stop-after-fault", daemon=True).start()

    @property
    def stopped_reason(self) -> str | None:
        """Why the engine stopped by itself after a fault it could not recover from, or None."""
        return self._stopped_reason

    def _check_not_stopped(self) -> None:
        if self._stopped_reason is not None:
            raise EngineStoppedError(self._stopped_reason)

    def _stop_core(self) -> None:
        core, self._core = self._core, None
        if core is not None:
            core.stop()

    def _stop_recorder(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.stop()

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()  # releases the writer lock
        elif self._writer_lock is not None:
            self._writer_lock.release()
        self._writer_lock = None

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
        events = self.request(StartWorkflow(name, workflow_id, arguments, options))
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
        events = self.request(SignalWithStart(name, workflow_id, arguments, options, signal, payload))
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
    ) -> tuple[str, str, list[Any], StartOptions]:
        """Validate a start: the type name, the id, the arguments and the recorded options."""
        name = workflow_type_name(workflow)
        self.registry.workflow(name)
        workflow_id = new_workflow_id() if workflow_id is None else validate_workflow_id(workflow_id)
        arguments = list(args)
        check_payload(arguments, path=f"{name} input")
        if search_attributes is not None:
            check_payload(search_attributes, path="search_attributes")
        options = StartOptions(
            search_attributes=dict(search_attributes or {}),
            execution_timeout=optional_seconds(execution_timeout, "execution_timeout"),
            run_timeout=optional_seconds(run_timeout, "run_timeout"),
        )
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
        self._check_not_stopped()
        supervision = self._supervision
        try:
            tree = None if supervision is None else supervision.tree()
        except pykka.ActorDeadError:
            self._check_not_stopped()
            raise EngineNotRunningError("the engine is not running") from None
        if tree is None:
            raise EngineNotRunningError("the engine is not running")
        return tree

    def residency(self) -> dict[str, int]:
        """How many runs hold a workflow process (``resident``), wait for one (``waiting``), how many were
        evicted since the engine started (``evictions``), and the bound (``max_resident``)."""
        figures: dict[str, int] = self.request(GetResidency())
        return figures

    def workflow_pid(self, workflow_id: str) -> int | None:
        """The pid of the live process hosting ``workflow_id``'s run, or ``None`` if it has none right now
        (between a crash and its restart, while it was evicted or waits for a slot, or once it has closed)."""
        node = run_node(self.supervision_tree(), workflow_id)
        return None if node is None else int(node["pid"])

    @property
    def store(self) -> EventStore:
        """The event store (read it freely; only the recorder writes)."""
        self._check_not_stopped()
        if self._store is None:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        return self._store

    def request(self, message: Request, *, timeout: float | None = None) -> Any:
        """Tell the engine core ``message`` (one of ``aion.engine._messages``' requests) and wait for its
        reply, at most ``timeout`` seconds (``pykka.Timeout``). Internal: what handles and the engine's methods
        use."""
        self._check_not_stopped()
        core = self._core
        if core is None or not self._running:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        try:
            core.tell(message)
        except pykka.ActorDeadError:
            self._check_not_stopped()
            raise EngineNotRunningError("the engine is not running") from None
        return self._reply_of(message, timeout)

    def _reply_of(self, message: Request, timeout: float | None) -> Any:
        """Wait for ``message``'s reply, waking now and then to see whether the engine stopped (after a fault, or
        by `stop` from another thread): it would never be answered."""
        left = timeout  # a real-time wait, counted in the slices waited (a timed-out get waited its whole slice)
        while True:
            wait = _FAULT_POLL if left is None else max(min(left, _FAULT_POLL), 0.0)
            try:
                return message.reply.get(timeout=wait)
            except pykka.Timeout:
                self._check_not_stopped()
                if not self._running:  # stopped meanwhile: no reply will come
                    raise EngineNotRunningError("the engine stopped before it answered") from None
                if left is not None:
                    left -= wait
                    if left <= 0:
                        raise
