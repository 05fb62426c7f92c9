"""``aion.Engine``: spawns the actor system on a data directory and is the Python API to it."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple, overload

import pykka
from prometheus_client import CollectorRegistry

from aion import events as ev
from aion._checks import count, data_dir_path
from aion._codec import check_payload, prepare_event_types
from aion._definitions import workflow_type_name
from aion._durations import Duration, optional_seconds, to_seconds
from aion._ids import new_workflow_id, validate_workflow_id
from aion.clock import SYSTEM_CLOCK, Clock
from aion.codec import PayloadCodec
from aion.control import ControlServer, start_control_server
from aion.engine import _registry
from aion.engine._closures import Closures
from aion.engine._core import EngineCore
from aion.engine._handle import WorkflowHandle
from aion.engine._holds import CodeMismatch
from aion.engine._messages import (
    GetResidency,
    GetWaits,
    Recover,
    Request,
    SignalWithStart,
    StartWorkflow,
    UnblockWorkflows,
)
from aion.engine._options import IdConflictPolicy, IdReusePolicy, StartOptions
from aion.engine._ray_executor import ray_executors, teller
from aion.engine._registry import Registry
from aion.engine._residency import DEFAULT_MAX_RESIDENT
from aion.engine._supervision import Supervision
from aion.engine._task_queues import LocalQueue, RayQueue, check_queues
from aion.engine._tree import run_node
from aion.errors import (
    AionError,
    EngineNotRunningError,
    EngineStartError,
    EngineStoppedError,
    InternalError,
    InvalidArgumentError,
    WorkflowNotFoundError,
)
from aion.observability._setup import MetricsOption, Telemetry, recorder_source, residency_source
from aion.recorder import RecorderHandle, start_recorder
from aion.status import WorkflowStatus
from aion.store import EventStore, RunInfo, WriterLock, open_store
from aion.visibility import SearchAttributeSchema, WorkflowCount, WorkflowPage, count_workflows, list_workflows
from supervisors import SupervisionError

log = logging.getLogger(__name__)

#: A workflow's result type and the types of its positional arguments (mypy checks a start against them).
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")

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
    docs/architecture.md, "Residency"), ``metrics`` (``"HOST:PORT"``: serve Prometheus ``/metrics`` there;
    True: count only, see ``metrics_registry``), ``tracer_provider`` (an OpenTelemetry ``TracerProvider``: spans
    of every run, needs ``aion[otel]``; docs/operations.md lists the logs, metrics and spans),
    ``search_attributes`` (the declared search attributes, name -> one of ``keyword``, ``text``, ``int``,
    ``float``, ``bool``, ``datetime``, ``keyword_list``: see docs/visibility.md),
    ``on_code_mismatch`` (``"block"``, the default: a run whose code does
    not fit it, or whose type or version is not registered, is blocked until code that fits is deployed;
    ``"fail"``: it fails, see docs/versioning.md),
    ``payload_codec`` (an ``aion.PayloadCodec``: compression, encryption) encodes every stored event; see
    ``aion.codec``.

    ``task_queues`` declares where activities run, by queue name: ``LocalQueue(workers=N)`` (a supervised pool of
    worker processes; ``"default"`` is one of ``activity_workers`` unless declared) or ``RayQueue(...)`` (Ray
    tasks, ``aion[ray]``), each with ``max_concurrent`` and ``rate_limit``. See docs/scaling.md.
    ``map_size`` is the most bytes the store may grow to: past it a write fails with ``StoreFullError`` (default:
    only the disk bounds it).
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
        metrics: MetricsOption = None,
        tracer_provider: Any = None,
        search_attributes: Mapping[str, str] | None = None,
        on_code_mismatch: CodeMismatch = "block",
        payload_codec: PayloadCodec | None = None,
        task_queues: Mapping[str, LocalQueue | RayQueue] | None = None,
        map_size: int | None = None,
    ) -> None:
        self.data_dir = data_dir_path(data_dir)
        for name, given in (("workflows", workflows), ("activities", activities)):
            if isinstance(given, str) or not isinstance(given, Iterable):
                raise InvalidArgumentError(f"{name} must be a list of decorated functions, got {given!r}")
        if payload_codec is not None and not isinstance(payload_codec, PayloadCodec):
            raise InvalidArgumentError(f"payload_codec must be an aion.PayloadCodec, got {payload_codec!r}")
        self._payload_codec = payload_codec
        self._telemetry = Telemetry(metrics, tracer_provider, clock)
        #: The declared search attributes (name -> type), checked at start and upsert; see docs/visibility.md.
        self.search_attributes = SearchAttributeSchema(search_attributes)
        if on_code_mismatch not in ("block", "fail"):
            raise InvalidArgumentError(f"on_code_mismatch must be 'block' or 'fail', got {on_code_mismatch!r}")
        self._on_code_mismatch: CodeMismatch = on_code_mismatch
        self.registry = Registry.build(workflows, activities)
        workers = activity_workers if activity_workers is not None else min(os.cpu_count() or 2, 1024)
        self._activity_workers = count(workers, "activity_workers", minimum=1, maximum=1024)
        self._max_restarts = count(max_restarts, "max_restarts", minimum=0)
        self._max_seconds = to_seconds(max_seconds, "max_seconds", allow_zero=False)
        self._max_resident = count(max_resident, "max_resident", minimum=1)
        self._warm_pool = count(warm_pool, "warm_pool", minimum=0, maximum=1024)
        if not all(callable(getattr(clock, name, None)) for name in ("time", "now", "monotonic", "wait_until")):
            raise InvalidArgumentError(f"clock must be an aion.clock.Clock, got {clock!r}")
        self._task_queues = check_queues(task_queues, self._activity_workers)
        self.registry.task_queues = frozenset(self._task_queues)
        self._ray_executors: dict[str, Any] = {}
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
        self._schedules: pykka.ActorRef[Any] | None = None  # the schedule service (aion.schedules)
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
                    local_queues={
                        name: queue.workers or 1
                        for name, queue in self._task_queues.items()
                        if isinstance(queue, LocalQueue)
                    },
                    close_fds=(self._writer_lock.fd,),
                    session_file=self.data_dir / SESSION_FILE,
                    on_give_up=self._stop_after_fault,
                )
            except BaseException as error:
                self._writer_lock.release()
                self._writer_lock = None
                if isinstance(error, SupervisionError):  # the zygote could not be started
                    raise EngineStartError(f"the engine could not start its zygote: {error}") from error
                raise
            try:
                self._ray_executors = ray_executors(self._task_queues, self.registry)
                self._store = open_store(
                    self.data_dir,
                    clock=self._clock,
                    payload_codec=self._payload_codec,
                    writer_lock=self._writer_lock,
                    max_map_size=self._map_size,
                )
                self._store.set_search_attribute_schema(self.search_attributes.to_dict())
                self._recorder = start_recorder(self._store, on_commit=self._telemetry.commit_observer())
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
                    observer=self._telemetry.observer,
                    on_code_mismatch=self._on_code_mismatch,
                    task_queues=self._task_queues,
                    executors=self._ray_executors,
                )
                for executor in self._ray_executors.values():
                    executor.open(teller(self._core))
                self._supervision.start(self._core)
                self._running = True
                recovered = self.request(Recover())
                recorder = self._recorder
                sources = [residency_source(lambda: self.request(GetResidency(), timeout=5))]
                sources.append(recorder_source(recorder.stats))
                self._start_schedules()
                schedules = self.schedule_call(None, lambda service: len(service.slots()))
                self._telemetry.started(self.data_dir, recovered, schedules, sources)
                self._control = start_control_server(self, on_request=self._telemetry.control_request)
            except BaseException as error:
                self._running = True
                self._shutdown()
                if isinstance(error, SupervisionError):  # keep the supervision library's errors out of the API
                    raise EngineStartError(f"the engine could not start its processes: {error}") from error
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
        try:
            self._telemetry.stopped(self.data_dir)
        except Exception:
            log.exception("error while stopping the metrics server")
        self._running = False
        supervision = self._supervision
        steps = [self._stop_core, self._stop_recorder, self._close_store]
        if supervision is not None:
            steps = [supervision.stop_tree, self._stop_executors, self._stop_core, self._stop_recorder]
            steps.append(supervision.stop_zygote)
            steps.append(self._close_store)
        self._supervision = None
        steps.insert(0, self._stop_schedules)
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("error while stopping the engine")

    def _start_schedules(self) -> None:
        from aion.schedules._service import ScheduleService  # noqa: PLC0415 (schedules import the engine)

        assert self._store is not None and self._recorder is not None and self._core is not None
        self._schedules = ScheduleService.start(
            self._store,
            self._recorder,
            self._core,
            self._clock,
            self.closures,
            observer=self._telemetry.observer.schedules,
        )

    def _stop_schedules(self) -> None:
        service, self._schedules = self._schedules, None
        if service is not None:
            service.stop()

    def _stop_executors(self) -> None:
        executors, self._ray_executors = self._ray_executors, {}
        for executor in sorted(executors.values(), key=lambda e: e.owns_ray):  # whoever started Ray stops it last
            executor.close()

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

    @overload
    def start_workflow(
        self,
        workflow: Callable[[*_Ts], Awaitable[_R]],
        *args: *_Ts,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Duration | None = None,
        run_timeout: Duration | None = None,
        memo: Any = None,
        version: int | None = None,
        id_conflict_policy: IdConflictPolicy = IdConflictPolicy.FAIL,
        id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE,
        request_id: str | None = None,
    ) -> WorkflowHandle[_R]: ...
    @overload
    def start_workflow(
        self,
        workflow: str,
        *args: Any,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Duration | None = None,
        run_timeout: Duration | None = None,
        memo: Any = None,
        version: int | None = None,
        id_conflict_policy: IdConflictPolicy = IdConflictPolicy.FAIL,
        id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE,
        request_id: str | None = None,
    ) -> WorkflowHandle[Any]: ...
    def start_workflow(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        execution_timeout: Duration | None = None,
        run_timeout: Duration | None = None,
        memo: Any = None,
        version: int | None = None,
        id_conflict_policy: IdConflictPolicy = IdConflictPolicy.FAIL,
        id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE,
        request_id: str | None = None,
    ) -> WorkflowHandle[Any]:
        """Start a run of ``workflow`` (a decorated function or a type name) with ``args``.

        ``workflow_id`` defaults to a new UUID. Returns once ``WorkflowStarted`` is durable.
        ``execution_timeout`` bounds the whole chain of runs (across continue-as-new), ``run_timeout`` this run;
        when one passes, ``WorkflowTimedOut`` is recorded and its work is cancelled.

        While a run of that id is running, ``id_conflict_policy`` decides: ``FAIL`` raises
        ``WorkflowAlreadyStartedError`` (the default), ``USE_EXISTING`` returns a handle to the running run,
        ``TERMINATE_EXISTING`` terminates it and starts the new run. When the id's last run has closed,
        ``id_reuse_policy`` decides: ``ALLOW_DUPLICATE`` starts a new run (the default),
        ``ALLOW_DUPLICATE_FAILED_ONLY`` only if that run did not complete, ``REJECT_DUPLICATE`` never.
        ``request_id`` makes the start idempotent: a start retried with the same request id (after a lost reply,
        an engine crash) returns the run it started, even after that run closed, for 24 hours
        (``REQUEST_ID_WINDOW``) and as long as that run is the id's latest.
        The run starts on the type's highest registered version, or on ``version``
        (``UnknownWorkflowVersionError`` if it is not registered), and keeps it for its whole life.
        ``search_attributes`` must be declared (``Engine(search_attributes=...)``) and of their types
        (``InvalidArgumentError`` names the attribute); ``memo`` is any payload shown with the run (``describe``,
        ``list``) and never indexed.
        """
        name, workflow_id, arguments, options = self._start_request(
            workflow,
            args,
            workflow_id=workflow_id,
            search_attributes=search_attributes,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            memo=memo,
        )
        if version is not None:
            self.registry.workflow_version(name, version)
            options = dataclasses.replace(options, version=version)
        options = _with_policies(options, id_conflict_policy, id_reuse_policy, request_id)
        with self._telemetry.starting(name, workflow_id, options) as options:
            events = self.request(StartWorkflow(name, workflow_id, arguments, options))
        return self._handle_of_start(workflow_id, events)

    @overload
    def execute_workflow(
        self,
        workflow: Callable[[*_Ts], Awaitable[_R]],
        *args: *_Ts,
        workflow_id: str | None = None,
        timeout: Duration | None = None,
        **options: Any,
    ) -> _R: ...
    @overload
    def execute_workflow(
        self,
        workflow: str,
        *args: Any,
        workflow_id: str | None = None,
        timeout: Duration | None = None,
        **options: Any,
    ) -> Any: ...
    def execute_workflow(  # type: ignore[misc]  # mypy: an implementation never matches *Ts overloads
        self,
        workflow: str | Callable[..., Any],
        *args: Any,
        workflow_id: str | None = None,
        timeout: Duration | None = None,
        **options: Any,
    ) -> Any:
        """Start ``workflow`` with ``args`` and wait for its result (``start_workflow`` then ``result``):
        ``options`` are ``start_workflow``'s, ``timeout`` is ``result``'s."""
        handle = self.start_workflow(workflow, *args, workflow_id=workflow_id, **options)
        return handle.result(timeout=timeout)

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
        memo: Any = None,
    ) -> WorkflowHandle[Any]:
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
            memo=memo,
        )
        with self._telemetry.starting(name, workflow_id, options) as options:
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
        memo: Any = None,
    ) -> tuple[str, str, list[Any], StartOptions]:
        """Validate a start: the type name, the id, the arguments and the recorded options."""
        name = workflow_type_name(workflow)
        self.registry.workflow(name)
        workflow_id = new_workflow_id() if workflow_id is None else validate_workflow_id(workflow_id)
        arguments = list(args)
        check_payload(arguments, path=f"{name} input")
        if search_attributes is not None:
            if not isinstance(search_attributes, dict):
                raise InvalidArgumentError(f"search_attributes must be a dict, got {search_attributes!r}")
            check_payload(search_attributes, path="search_attributes")
        checked = self.search_attributes.check(search_attributes)
        check_payload(memo, path="memo")
        options = StartOptions(
            search_attributes=checked,
            execution_timeout=optional_seconds(execution_timeout, "execution_timeout"),
            run_timeout=optional_seconds(run_timeout, "run_timeout"),
            memo=memo,
        )
        return name, workflow_id, arguments, options

    def _handle_of_start(self, workflow_id: str, events: list[ev.Event]) -> WorkflowHandle[Any]:
        started = events[0]
        assert isinstance(started, ev.WorkflowStarted)
        return WorkflowHandle(self, workflow_id, started.run_id)

    def get_workflow(self, workflow_id: str, run_id: str | None = None) -> WorkflowHandle[Any]:
        """A handle to ``workflow_id``'s current run (or run ``run_id``); ``WorkflowNotFoundError`` if unknown."""
        info = self.store.get_run(validate_workflow_id(workflow_id))
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowHandle(self, workflow_id, run_id or info.run_id)

    @overload
    def list_workflows(
        self, query: str, *, page_size: int = 100, next_page_token: str | None = None
    ) -> WorkflowPage: ...
    @overload
    def list_workflows(
        self,
        query: None = None,
        *,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | Callable[..., Any] | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]: ...
    def list_workflows(
        self,
        query: str | None = None,
        *,
        status: WorkflowStatus | str | None = None,
        workflow_type: str | Callable[..., Any] | None = None,
        limit: int | None = None,
        page_size: int = 100,
        next_page_token: str | None = None,
    ) -> list[RunInfo] | WorkflowPage:
        """The workflows' current runs.

        With ``query`` (the query language of docs/visibility.md; ``""`` for every run): one page of at most
        ``page_size`` runs in the query's order, and the ``next_page_token`` to pass for the next page
        (``InvalidArgumentError`` naming the position for a malformed query). Without it: a list, newest first,
        optionally filtered by status and type, at most ``limit``.
        """
        if query is not None:
            return list_workflows(
                self.store, query, page_size=page_size, next_page_token=next_page_token, schema=self.search_attributes
            )
        wanted = None
        if status is not None:
            try:
                wanted = WorkflowStatus(status)
            except ValueError:
                known = ", ".join(s.value for s in WorkflowStatus)
                raise InvalidArgumentError(f"unknown status {status!r} (one of: {known})") from None
        type_name = None if workflow_type is None else workflow_type_name(workflow_type)
        return self.store.list_workflows(status=wanted, workflow_type=type_name, limit=limit)

    def count_workflows(self, query: str | None = None) -> WorkflowCount:
        """How many current runs match ``query`` (every run when ``None``); with ``GROUP BY Status``, how many of
        each status (``WorkflowCount.groups``)."""
        return count_workflows(self.store, query, schema=self.search_attributes)

    def unblock_all(self) -> int:
        """Try every blocked run again (see docs/versioning.md); returns how many were given a process to
        replay (those whose type and version this engine registers)."""
        return int(self.request(UnblockWorkflows(None)))

    def supervision_tree(self) -> dict[str, Any]:
        """A JSON-able snapshot of the live supervision tree (workflow processes carry their workflow ids; the
        schedule service is a node of its own, its schedules below it)."""
        self._check_not_stopped()
        supervision = self._supervision
        try:
            tree = None if supervision is None else supervision.tree()
        except pykka.ActorDeadError:
            self._check_not_stopped()
            raise EngineNotRunningError("the engine is not running") from None
        if tree is None:
            raise EngineNotRunningError("the engine is not running")
        if self._schedules is not None:
            tree.setdefault("children", []).append(self.schedule_call(None, lambda service: service.tree_node()))
        return tree

    def residency(self) -> dict[str, int]:
        """How many runs hold a workflow process (``resident``), wait for one (``waiting``), how many were
        evicted since the engine started (``evictions``), and the bound (``max_resident``)."""
        figures: dict[str, int] = self.request(GetResidency())
        return figures

    def run_waits(self, runs: Sequence[tuple[str, str]]) -> list[list[str] | None]:
        """For each (workflow id, run id): the signals and conditions its code last reported waiting on beyond
        its history (``["signal 'approve'"]``), ``None`` if the run is not open here or has not reported yet."""
        found: list[list[str] | None] = self.request(GetWaits(tuple((wid, rid) for wid, rid in runs)))
        return found

    def workflow_pid(self, workflow_id: str) -> int | None:
        """The pid of the live process hosting ``workflow_id``'s run, or ``None`` if it has none right now
        (between a crash and its restart, while it was evicted or waits for a slot, or once it has closed)."""
        node = run_node(self.supervision_tree(), workflow_id)
        return None if node is None else int(node["pid"])

    @property
    def metrics_registry(self) -> CollectorRegistry | None:
        """The engine's Prometheus registry (``Engine(metrics=...)``), or None without metrics."""
        metrics = self._telemetry.metrics
        return None if metrics is None else metrics.registry

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``(host, port)`` where ``/metrics`` is served while the engine runs (the bound port when 0 was
        asked), or None."""
        return self._telemetry.address

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
        try:
            return self._reply_of(message, timeout)
        except (AionError, pykka.Timeout):
            raise
        except Exception as error:  # a bug in a handler: typed for the caller, logged with its traceback
            log.error("engine request %s failed", type(message).__name__, exc_info=error)
            raise InternalError(f"{type(message).__name__} failed: {type(error).__name__}: {error}") from error

    # -- schedules (aion.schedules; docs/schedules.md) -------------------------------------------------------

    def create_schedule(
        self,
        schedule_id: str,
        workflow: str | Callable[..., Any],
        *args: Any,
        spec: Any,
        policy: Any = None,
        search_attributes: dict[str, Any] | None = None,
        memo: dict[str, Any] | None = None,
        paused: bool = False,
        note: str | None = None,
    ) -> Any:
        """Create schedule ``schedule_id``: start ``workflow(*args)`` at every fire of ``spec`` (a
        ``ScheduleSpec``), with ``policy`` (a ``SchedulePolicy``, default: skip overlapping fires). Returns a
        ``ScheduleHandle`` once ``ScheduleCreated`` is durable. ``ScheduleAlreadyExistsError`` if the id exists;
        ``InvalidArgumentError`` naming the field for bad input (an unknown workflow type included)."""
        from aion.schedules import SchedulePolicy  # noqa: PLC0415
        from aion.schedules._handle import create  # noqa: PLC0415

        name = workflow_type_name(workflow)
        try:
            self.registry.workflow(name)
        except AionError as error:
            raise InvalidArgumentError(f"workflow: {error}") from None
        return create(
            self,
            schedule_id,
            name,
            list(args),
            spec=spec,
            policy=SchedulePolicy() if policy is None else policy,
            search_attributes=search_attributes,
            memo=memo,
            paused=paused,
            note=note,
        )

    def get_schedule(self, schedule_id: str) -> Any:
        """A ``ScheduleHandle`` to ``schedule_id``; ``ScheduleNotFoundError`` if there is none (or it was deleted)."""
        from aion.schedules import ScheduleHandle, load_state  # noqa: PLC0415

        load_state(self.store, schedule_id)
        return ScheduleHandle(self, schedule_id)

    def list_schedules(self) -> list[Any]:
        """The ``ScheduleDescription`` of every schedule (deleted ones left out), by id."""
        from aion.schedules._handle import describe_state  # noqa: PLC0415

        def action(service: Any) -> list[Any]:
            return [describe_state(slot.state, self.store, service.now()) for slot in service.slots()]

        result: list[Any] = self.schedule_call(None, action)
        return result

    def schedule_call(self, schedule_id: str | None, action: Callable[[Any], Any]) -> Any:
        """Run ``action(service)`` in the schedule service once ``schedule_id`` has nothing on its way, and
        return its value. Internal: what ``ScheduleHandle`` uses."""
        from aion.schedules._service import Call  # noqa: PLC0415

        service = self._schedules
        if service is None or not self._running:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        call = Call(schedule_id, action)
        service.tell(call)
        return call.reply.get()

    def quiescence(self) -> Any:
        """Whether the engine core and the schedule service have settled, and when the next deadline of either
        is due (a ``Quiescence``; the testing kit's time skipping)."""
        from aion.engine._messages import GetQuiescence, Quiescence  # noqa: PLC0415

        core: Quiescence = self.request(GetQuiescence())
        if self._schedules is None:
            return core
        settled, next_due = self.schedule_call(None, lambda service: service.quiescence())
        dues = [due for due in (core.next_due, next_due) if due is not None]
        return Quiescence(core.settled and settled, core.activities_busy, min(dues) if dues else None)


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


def _with_policies(
    options: StartOptions, conflict: IdConflictPolicy, reuse: IdReusePolicy, request_id: str | None
) -> StartOptions:
    """``options`` with a start's policies and request id, checked."""
    if not isinstance(conflict, IdConflictPolicy):
        raise InvalidArgumentError(f"id_conflict_policy must be an aion.IdConflictPolicy, got {conflict!r}")
    if not isinstance(reuse, IdReusePolicy):
        raise InvalidArgumentError(f"id_reuse_policy must be an aion.IdReusePolicy, got {reuse!r}")
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        raise InvalidArgumentError(f"request_id must be a non-empty string, got {request_id!r}")
    return dataclasses.replace(options, id_conflict_policy=conflict, id_reuse_policy=reuse, request_id=request_id)
