"""Booting and stopping one engine's actor system, and the way the engine's calls reach it.

:class:`ActorSystem` is the running side of an ``aion.Engine``. Its ``start`` takes the data directory's writer
lock, forks the zygote and the supervision tree, opens the store, starts the recorder, the engine core, the Ray
executors and the schedule service, recovers the runs found in history, starts the metrics and serves the CLI's
control socket; its ``stop`` stops them again in order (the store, and with it the writer lock, last). Between the
two it carries the API's requests to the core (``request``) and to the schedule service (``schedule_call``), and
after a fault it cannot recover from it stops the engine loudly (``stopped_reason``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from aion._codec import prepare_event_types
from aion.control import ControlServer, start_control_server
from aion.control._engine_api import ControlledEngine
from aion.engine import _registry
from aion.engine._closures import Closures
from aion.engine._core import EngineCore
from aion.engine._engine_settings import EngineSettings
from aion.engine._messages import GetQuiescence, GetResidency, GetWaits, Quiescence, Recover, Request
from aion.engine._placement import CpuClaim, Placement, current_cpus, place
from aion.engine._ray_executor import ray_executors, teller
from aion.engine._supervision import Supervision
from aion.engine._task_queues import LocalQueue
from aion.errors import AionError, EngineNotRunningError, EngineStartError, EngineStoppedError, InternalError
from aion.observability._setup import recorder_source, residency_source
from aion.recorder import RecorderHandle, RecorderStats, start_recorder
from aion.schedules._messages import Call
from aion.schedules._service import ScheduleService
from aion.store import EventStore, WriterLock, open_store
from aion.workflow import _guard
from supervisors import SupervisionError

log = logging.getLogger(__name__)

#: How often a caller waiting for the core's reply looks whether the engine stopped after a fault (seconds).
_FAULT_POLL = 0.25

#: The file in the data directory naming the zygote's session (leftovers of a SIGKILLed engine are found by it).
SESSION_FILE = "zygote.session"


class ActorSystem:
    """The actors of one engine, started and stopped as one (what ``Engine.start``/``stop`` do), and the way
    requests reach them."""

    def __init__(self, settings: EngineSettings, closures: Closures) -> None:
        self._settings = settings
        self._telemetry = settings.telemetry
        self._closures = closures
        self._lock = threading.Lock()
        self._running = False
        self._store: EventStore | None = None
        self._recorder: RecorderHandle | None = None
        self._supervision: Supervision | None = None
        self._core: pykka.ActorRef[EngineCore] | None = None
        self._control: ControlServer | None = None  # the CLI's control socket, served while running
        self._schedules: pykka.ActorRef[Any] | None = None  # the schedule service (aion.schedules)
        self._ray_executors: dict[str, Any] = {}
        self._writer_lock: WriterLock | None = None
        self._cpu_claim: CpuClaim | None = None  # this engine's CPU, claimed while it runs (see _placement)
        self._stopped_reason: str | None = None  # why the engine stopped by itself (see _stop_after_fault)

    # -- starting and stopping ------------------------------------------------------------------------------

    def start(self, engine: ControlledEngine) -> None:
        """Start the actor system and resume the running workflows found in the data directory; ``engine`` is
        what the control socket serves."""
        with self._lock:
            if self._running:
                return
            placement, self._cpu_claim = place(self._settings.engine_cpu, current_cpus())
            try:
                with placement.engine_threads():  # every thread started from here on shares the engine's CPU
                    self._boot(engine, placement)
            except BaseException:
                self._release_cpu()  # a start refused or failed leaves the CPU to the next engine
                raise

    def _boot(self, engine: ControlledEngine, placement: Placement) -> None:
        """`start`'s work, with the lock held and the calling thread on the engine's CPU."""
        settings = self._settings
        self._stopped_reason = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _registry.install(settings.registry)
        prepare_event_types()  # inherited by every workflow process, not built on its live path
        _guard.prepare()  # likewise: which loaded modules are user code (a realpath each)
        # The writer lock first: a second engine is refused before it forks anything.
        self._writer_lock = WriterLock.acquire(settings.data_dir)
        held = (self._writer_lock.fd,) if self._cpu_claim is None else (self._writer_lock.fd, self._cpu_claim.fd)
        try:
            self._supervision = Supervision(
                settings.registry,
                warm_pool=settings.warm_pool,
                activity_workers=settings.activity_workers,
                max_restarts=settings.max_restarts,
                max_seconds=settings.max_seconds,
                local_queues={
                    name: queue for name, queue in settings.task_queues.items() if isinstance(queue, LocalQueue)
                },
                close_fds=held,  # no child holds the writer lock or the CPU's claim
                session_file=settings.data_dir / SESSION_FILE,
                on_give_up=self._stop_after_fault,
                host_cpus=placement.host_cpus,
                all_cpus=placement.all_cpus,
            )
        except BaseException as error:
            self._writer_lock.release()
            self._writer_lock = None
            if isinstance(error, SupervisionError):  # the zygote could not be started
                raise EngineStartError(f"the engine could not start its zygote: {error}") from error
            raise
        try:
            self._ray_executors = ray_executors(settings.task_queues, settings.registry)
            self._store = open_store(
                settings.data_dir,
                clock=settings.clock,
                payload_codec=settings.payload_codec,
                writer_lock=self._writer_lock,
                max_map_size=settings.map_size,
            )
            self._store.set_search_attribute_schema(settings.search_attributes.to_dict())
            self._recorder = start_recorder(
                self._store, on_commit=self._telemetry.commit_observer(), hold=settings.commit_hold
            )
            self._closures.reset()
            self._core = EngineCore.start(
                self._store,
                self._recorder,
                settings.registry,
                self._supervision,
                self._closures,
                cancel_grace=settings.cancel_grace,
                max_resident=settings.max_resident,
                evict_idle_after=settings.evict_idle_after,
                clock=settings.clock,
                observer=self._telemetry.observer,
                on_code_mismatch=settings.on_code_mismatch,
                task_queues=settings.task_queues,
                executors=self._ray_executors,
            )
            for executor in self._ray_executors.values():
                with placement.unpinned():  # Ray's own processes must not inherit the engine's CPU
                    executor.open(teller(self._core))
            self._supervision.start(self._core)
            self._running = True
            recovered = self.request(Recover())
            recorder = self._recorder
            sources = [residency_source(lambda: self.residency(timeout=5))]
            sources.append(recorder_source(recorder.stats))
            self._start_schedules()
            schedules = self.schedule_call(None, lambda service: len(service.slots()))
            self._telemetry.started(settings.data_dir, recovered, schedules, sources)
            self._control = start_control_server(engine, on_request=self._telemetry.control_request)
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
            self._telemetry.stopped(self._settings.data_dir)
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
        steps.append(self._release_cpu)
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("error while stopping the engine")

    def _start_schedules(self) -> None:
        assert self._store is not None and self._recorder is not None and self._core is not None
        self._schedules = ScheduleService.start(
            self._store,
            self._recorder,
            self._core,
            self._settings.clock,
            self._closures,
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
        self._closures.wake_all()

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

    def _release_cpu(self) -> None:
        claim, self._cpu_claim = self._cpu_claim, None
        if claim is not None:
            claim.release()

    # -- while running --------------------------------------------------------------------------------------

    def store(self) -> EventStore:
        """The open event store; ``EngineStoppedError``/``EngineNotRunningError`` when there is none."""
        self._check_not_stopped()
        if self._store is None:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        return self._store

    def tree(self) -> dict[str, Any]:
        """A JSON-able snapshot of the live supervision tree, the schedule service a node of its own."""
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

    def request(self, message: Request, *, timeout: float | None = None) -> Any:
        """Tell the engine core ``message`` and wait for its reply, at most ``timeout`` seconds
        (``pykka.Timeout``); a handler's bug comes back as ``InternalError``."""
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

    def recorder_stats(self) -> RecorderStats:
        """The recorder's counters (all zero before the engine started)."""
        recorder = self._recorder
        return recorder.stats() if recorder is not None else RecorderStats(0, 0, 0, 0, 0, 0)

    def residency(self, *, timeout: float | None = None) -> dict[str, int]:
        """The core's residency figures (``resident``, ``waiting``, ``evictions``, ``max_resident``)."""
        figures: dict[str, int] = self.request(GetResidency(), timeout=timeout)
        return figures

    def run_waits(self, runs: Sequence[tuple[str, str]]) -> list[list[str] | None]:
        """For each (workflow id, run id): what its code last reported waiting on, ``None`` if unknown here."""
        found: list[list[str] | None] = self.request(GetWaits(tuple((wid, rid) for wid, rid in runs)))
        return found

    def schedule_call(self, schedule_id: str | None, action: Callable[[Any], Any]) -> Any:
        """Run ``action(service)`` in the schedule service once ``schedule_id`` has nothing on its way, and
        return its value."""
        service = self._schedules
        if service is None or not self._running:
            raise EngineNotRunningError("the engine is not running: use it as a context manager")
        call = Call(schedule_id, action)
        service.tell(call)
        return call.reply.get()

    def quiescence(self) -> Quiescence:
        """Whether the core and the schedule service have settled, and when the next deadline of either is due.

        Each hands the other work (the service starts runs, the core reports closures), so the core is read
        between two reads of the service: settled only if the service was settled both times and handled nothing
        but the second read between them. A start that lands between the reads then shows in the core's read, and
        a closure the core reported before its read shows as a message the service handled.
        """
        if self._schedules is None:
            core: Quiescence = self.request(GetQuiescence())
            return core
        before, _, handled_before = self.schedule_call(None, lambda service: service.quiescence())
        core = self.request(GetQuiescence())
        after, next_due, handled_after = self.schedule_call(None, lambda service: service.quiescence())
        settled = core.settled and before and after and handled_after == handled_before + 1
        dues = [due for due in (core.next_due, next_due) if due is not None]
        return Quiescence(settled, core.activities_busy, min(dues) if dues else None)
