"""``aion.Engine``: the Python API to the actor system on one data directory.

``Engine`` is the one class users see: it keeps the API's signatures and docstrings and hands the work to its
parts: :class:`~aion.engine._engine_settings.EngineSettings` (the constructor's options, checked),
:class:`~aion.engine._actor_system.ActorSystem` (starting and stopping the actors; requests to the core and the
schedule service) and :mod:`aion.engine._api_arguments` (what callers give the methods, checked).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple, overload

from prometheus_client import CollectorRegistry

from aion import events as ev
from aion._durations import Duration
from aion._ids import validate_workflow_id
from aion.clock import SYSTEM_CLOCK, Clock
from aion.codec import PayloadCodec
from aion.engine import _api_arguments
from aion.engine._actor_system import ActorSystem
from aion.engine._closures import Closures
from aion.engine._engine_settings import EngineSettings
from aion.engine._handle import WorkflowHandle
from aion.engine._holds import CodeMismatch
from aion.engine._messages import Request, SignalWithStart, StartWorkflow, UnblockWorkflows
from aion.engine._options import IdConflictPolicy, IdReusePolicy
from aion.engine._placement import AUTO, EngineCpu
from aion.engine._residency import DEFAULT_EVICT_IDLE_AFTER, DEFAULT_MAX_RESIDENT
from aion.engine._task_queues import LocalQueue, RayQueue
from aion.engine._tree import run_node
from aion.errors import WorkflowNotFoundError
from aion.observability._setup import MetricsOption
from aion.recorder import DEFAULT_HOLD, RecorderStats
from aion.schedules import ScheduleDescription, ScheduleHandle, SchedulePolicy, ScheduleSpec, load_state
from aion.schedules._handle import create, describe_state
from aion.schedules._service import ScheduleService
from aion.status import WorkflowStatus
from aion.store import EventStore, RunInfo
from aion.visibility import WorkflowCount, WorkflowPage, count_workflows, list_workflows

#: A workflow's result type and the types of its positional arguments (mypy checks a start against them).
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class Engine:
    """A durable workflow engine on one data directory. Use it as a context manager::

        with aion.Engine("./data", workflows=[checkout], activities=[charge]) as engine:
            handle = engine.start_workflow(checkout, {"id": 1}, workflow_id="order-1")
            print(handle.result(timeout=30))

    Entering starts the actor system (a zygote, the supervision tree, the recorder, activity workers) and
    resumes every workflow that was running in the data directory; leaving stops it cleanly. Workflows and
    activities must be decorated with ``@workflow.defn`` / ``@activity.defn``.

    Options: ``activity_workers`` (default: one per CPU, at least 8), ``warm_pool`` (idle forked hosts kept ready),
    ``max_restarts``/``max_seconds`` (how often one workflow process may crash before the run fails),
    ``max_resident`` (how many runs hold a workflow process at once; beyond it, runs waiting on a signal, a child,
    a distant timer or an activity scheduled over a second ago are evicted, and new runs wait their turn: see
    docs/architecture.md, "Residency"), ``evict_idle_after`` (seconds, default 60: such a run not active for
    that long gives up its process even when no other run needs it; ``None``: only when one does), ``metrics``
    (``"HOST:PORT"``: serve Prometheus ``/metrics`` there; True: count only, see ``metrics_registry``),
    ``tracer_provider`` (an OpenTelemetry ``TracerProvider``: spans of every run, needs ``aion[otel]``;
    docs/operations.md lists the logs, metrics and spans),
    ``search_attributes`` (the declared search attributes, name -> one of ``keyword``, ``text``, ``int``,
    ``float``, ``bool``, ``datetime``, ``keyword_list``: see docs/visibility.md),
    ``on_code_mismatch`` (``"block"``, the default: a run whose code does
    not fit it, or whose type or version is not registered, is blocked until code that fits is deployed;
    ``"fail"``: it fails, see docs/versioning.md),
    ``payload_codec`` (an ``aion.PayloadCodec``: compression, encryption) encodes every stored event; see
    ``aion.codec``.

    ``task_queues`` declares where activities run, by queue name: ``LocalQueue(workers=N)`` (a supervised pool of
    worker processes, off the engine's CPU unless ``use_engine_cpu``; ``"default"`` is one of ``activity_workers``
    unless declared) or ``RayQueue(...)`` (Ray tasks, ``aion[ray]``), each with ``max_concurrent`` and
    ``rate_limit``. See docs/scaling.md.
    ``map_size`` is the most bytes the store may grow to: past it a write fails with ``StoreFullError`` (default:
    only the disk bounds it).
    ``engine_cpu`` (``"auto"``, the default; a CPU number; or ``None``): the CPU the engine's own threads share,
    while its workflow processes and activity workers run on the other CPUs (``"auto"``: the highest-numbered CPU
    the starting thread may run on that no other running engine of this machine has claimed, if it may run on two
    or more; ``None``: nothing is pinned). The caller's threads are left as they are. See docs/operations.md,
    "CPU placement".
    ``commit_hold`` (seconds, default 0.002, at most 0.1; 0: never): while callers' appends (starts, signals, ...)
    come in a steady stream, how long a run's own step (an activity's or a timer's event, a completion nobody
    waits for) may wait to share the next caller's transaction rather than take one of its own. See
    docs/architecture.md, "Recorder and group commit".
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
        evict_idle_after: float | None = DEFAULT_EVICT_IDLE_AFTER,
        clock: Clock = SYSTEM_CLOCK,
        metrics: MetricsOption = None,
        tracer_provider: Any = None,
        search_attributes: Mapping[str, str] | None = None,
        on_code_mismatch: CodeMismatch = "block",
        payload_codec: PayloadCodec | None = None,
        task_queues: Mapping[str, LocalQueue | RayQueue] | None = None,
        map_size: int | None = None,
        engine_cpu: EngineCpu = AUTO,
        commit_hold: float = DEFAULT_HOLD,
    ) -> None:
        settings = EngineSettings.check(
            data_dir,
            workflows,
            activities,
            activity_workers=activity_workers,
            warm_pool=warm_pool,
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            activity_cancel_grace=activity_cancel_grace,
            max_resident=max_resident,
            evict_idle_after=evict_idle_after,
            clock=clock,
            metrics=metrics,
            tracer_provider=tracer_provider,
            search_attributes=search_attributes,
            on_code_mismatch=on_code_mismatch,
            payload_codec=payload_codec,
            task_queues=task_queues,
            map_size=map_size,
            engine_cpu=engine_cpu,
            commit_hold=commit_hold,
        )
        self.data_dir = settings.data_dir
        self._telemetry = settings.telemetry
        #: The declared search attributes (name -> type), checked at start and upsert; see docs/visibility.md.
        self.search_attributes = settings.search_attributes
        self.registry = settings.registry
        self.closures = Closures()
        self._system = ActorSystem(settings, self.closures)

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
        self._system.start(self)

    def stop(self) -> None:
        """Stop every process and actor; recorded history stays, and a new engine resumes from it."""
        self._system.stop()

    @property
    def stopped_reason(self) -> str | None:
        """Why the engine stopped by itself after a fault it could not recover from, or None."""
        return self._system.stopped_reason

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
        name, workflow_id, arguments, options = _api_arguments.start_request(
            self.registry,
            self.search_attributes,
            workflow,
            args,
            workflow_id=workflow_id,
            search_attributes=search_attributes,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            memo=memo,
        )
        options = _api_arguments.with_version_and_policies(
            self.registry,
            name,
            options,
            version=version,
            conflict=id_conflict_policy,
            reuse=id_reuse_policy,
            request_id=request_id,
        )
        with self._telemetry.starting(name, workflow_id, options) as options:
            events = self.request(StartWorkflow(name, workflow_id, arguments, options))
        return WorkflowHandle(self, workflow_id, _api_arguments.run_id_of_start(events))

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
        return self.start_workflow(workflow, *args, workflow_id=workflow_id, **options).result(timeout=timeout)

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
        _api_arguments.check_signal(signal, payload)
        name, workflow_id, arguments, options = _api_arguments.start_request(
            self.registry,
            self.search_attributes,
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
            return WorkflowHandle(self, workflow_id, _api_arguments.run_id_of_start(events))
        return self.get_workflow(workflow_id)

    def get_workflow(self, workflow_id: str, run_id: str | None = None) -> WorkflowHandle[Any]:
        """A handle to ``workflow_id``'s current run (or run ``run_id``); ``WorkflowNotFoundError`` if unknown."""
        current = self.store.current_run_id(validate_workflow_id(workflow_id))
        if current is None:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowHandle(self, workflow_id, run_id or current)

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
        wanted, type_name = _api_arguments.run_filter(status, workflow_type)
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
        return self._system.tree()

    def residency(self) -> dict[str, int]:
        """How many runs hold a workflow process (``resident``), wait for one (``waiting``), how many were
        evicted since the engine started (``evictions``), and the bound (``max_resident``)."""
        return self._system.residency()

    def recorder_stats(self) -> RecorderStats:
        """The recorder's counters since the engine started: write transactions committed (``batches``, one fsync
        each), appends, events, refused appends, the largest transaction, and how often deferrable appends were
        held for a caller's (``holds``; docs/architecture.md, "Recorder and group commit")."""
        return self._system.recorder_stats()

    def run_waits(self, runs: Sequence[tuple[str, str]]) -> list[list[str] | None]:
        """For each (workflow id, run id): the signals and conditions its code last reported waiting on beyond
        its history (``["signal 'approve'"]``), ``None`` if the run is not open here or has not reported yet."""
        return self._system.run_waits(runs)

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
        return self._system.store()

    def request(self, message: Request, *, timeout: float | None = None) -> Any:
        """Tell the engine core ``message`` (one of ``aion.engine._messages``' requests) and wait for its
        reply, at most ``timeout`` seconds (``pykka.Timeout``). Internal: what handles and the engine's methods
        use."""
        return self._system.request(message, timeout=timeout)

    # -- schedules (aion.schedules; docs/schedules.md) -------------------------------------------------------

    def create_schedule(
        self,
        schedule_id: str,
        workflow: str | Callable[..., Any],
        *args: Any,
        spec: ScheduleSpec,
        policy: SchedulePolicy | None = None,
        search_attributes: dict[str, Any] | None = None,
        memo: dict[str, Any] | None = None,
        paused: bool = False,
        note: str | None = None,
    ) -> ScheduleHandle:
        """Create schedule ``schedule_id``: start ``workflow(*args)`` at every fire of ``spec`` (a
        ``ScheduleSpec``), with ``policy`` (a ``SchedulePolicy``, default: skip overlapping fires). Returns a
        ``ScheduleHandle`` once ``ScheduleCreated`` is durable. ``ScheduleAlreadyExistsError`` if the id exists;
        ``InvalidArgumentError`` naming the field for bad input (an unknown workflow type included)."""
        return create(
            self,
            schedule_id,
            _api_arguments.scheduled_type(self.registry, workflow),
            list(args),
            spec=spec,
            policy=SchedulePolicy() if policy is None else policy,
            search_attributes=search_attributes,
            memo=memo,
            paused=paused,
            note=note,
        )

    def get_schedule(self, schedule_id: str) -> ScheduleHandle:
        """A ``ScheduleHandle`` to ``schedule_id``; ``ScheduleNotFoundError`` if there is none (or it was deleted)."""
        load_state(self.store, schedule_id)
        return ScheduleHandle(self, schedule_id)

    def list_schedules(self) -> list[ScheduleDescription]:
        """The ``ScheduleDescription`` of every schedule (deleted ones left out), by id."""

        def action(service: ScheduleService) -> list[ScheduleDescription]:
            return [describe_state(slot.state, self.store, service.now()) for slot in service.slots()]

        result: list[ScheduleDescription] = self.schedule_call(None, action)
        return result

    def schedule_call(self, schedule_id: str | None, action: Callable[[Any], Any]) -> Any:
        """Run ``action(service)`` in the schedule service once ``schedule_id`` has nothing on its way, and
        return its value. Internal: what ``ScheduleHandle`` uses."""
        return self._system.schedule_call(schedule_id, action)

    def quiescence(self) -> Any:
        """Whether the engine core and the schedule service have settled, and when the next deadline of either
        is due (a ``Quiescence``; the testing kit's time skipping)."""
        return self._system.quiescence()
