"""The engine core: the actor that turns workflow commands into recorded events and recorded events into effects.

It is the one place that appends for a workflow (through the Recorder), so it knows every run's head and can
pipeline appends. Every effect waits for its record: an activity is dispatched, a timer armed, a result or a
signal delivered to the workflow process only after the event that implies it is durable (record before effect).

Threads never block here on I/O: the recorder calls back when a commit is durable and the callback re-enters
this actor as a message; process callbacks from the supervisors' hub arrive the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka

from aion import events as ev
from aion._codec import check_payload, decode_payload, encode_payload
from aion._ids import new_run_id
from aion.engine import _protocol as protocol
from aion.engine._activities import ActivityPool
from aion.engine._activity_manager import ActivityManager
from aion.engine._interfaces import Closures, Processes
from aion.engine._messages import (
    Call,
    Due,
    ProcessDown,
    ProcessGaveUp,
    ProcessMessage,
    ProcessUp,
    WorkerDown,
    WorkerMessage,
    WorkerUp,
    parse_child_id,
    query_child_id,
    run_child_id,
)
from aion.engine._registry import Registry
from aion.engine._relations import Relations
from aion.engine._residency import DEFAULT_MAX_RESIDENT, Residency
from aion.engine._runs import ChildRef, PendingActivity, PendingSignal, Run, next_query_id
from aion.engine._timers import TimerService
from aion.errors import (
    AionError,
    PayloadError,
    QueryError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.recorder import CommitSink, Committed, RecorderHandle
from aion.store import EventStore
from aion.workflow._commands import (
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    RequestCancelActivity,
    RequestCancelChild,
    ScheduleActivity,
    SignalExternal,
    StartChild,
    StartTimer,
    is_arrival,
)
from supervisors import ChannelClosedError, SimpleInbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Append:
    """What the core needs back with the outcome of one append (its token with the recorder)."""

    run: Run
    then: Callable[[list[ev.Event]], None] | None
    reply: pykka.Future[Any] | None
    closing: bool
    #: The run's ``generation`` when it was sent: one from before a resync fails as a consequence of the failure
    #: that caused it, and needs no resync of its own.
    generation: int


@dataclass(frozen=True)
class _Committed:
    """The outcomes of the core's appends in one committed batch of the recorder."""

    outcomes: list[Committed]


class _RecoverMore:
    """Resume the next batch of running workflows."""


#: How many runs recovery resumes per message before letting other messages through.
_RECOVERY_BATCH = 32


class EngineCore(Relations, SimpleInbox, pykka.ThreadingActor):
    """The sequencer of every workflow's history and the dispatcher of its effects."""

    def __init__(
        self,
        store: EventStore,
        recorder: RecorderHandle,
        registry: Registry,
        processes: Processes,
        closures: Closures,
        *,
        cancel_grace: float = 5.0,
        max_resident: int = DEFAULT_MAX_RESIDENT,
    ) -> None:
        super().__init__()
        self._store = store
        self._recorder = recorder
        self._registry = registry
        self._processes = processes
        self._closures = closures
        self._runs: dict[str, Run] = {}
        self._pool = ActivityPool()
        self._timers = TimerService(self._timer_due)
        self._activities = ActivityManager(self._append, self._timers, self._pool, processes, cancel_grace=cancel_grace)
        self._one_off_queries: dict[int, tuple[str, dict[str, Any], pykka.Future[Any]]] = {}
        #: Running workflows that recovery has not resumed yet (in store order).
        self._to_recover: dict[str, None] = {}
        #: Requests that reached a workflow while its run was continuing as new, for the successor run.
        self._after_continue: dict[str, list[Callable[[Run], None]]] = {}
        self._sink = self._commit_sink()
        self._residency = Residency(
            max_resident, self._spawn_process, self._evict_process, lambda at: self._timers.arm(at, ("residency",))
        )

    # -- lifecycle ------------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self._timers.start()

    def on_stop(self) -> None:
        self._timers.stop()

    def recover(self) -> int:
        """Resume every running workflow found in the store; returns how many.

        Runs are resumed in small batches between the core's other messages, so the first resumed workflows make
        progress while the rest load; a run not resumed yet is loaded at once when anything needs it (a signal,
        a query, its parent, its child). Resuming a run also repairs what a crash between two writes left half
        done (see :mod:`aion.engine._relations`).
        """
        self._to_recover = dict.fromkeys(info.workflow_id for info in self._store.running_workflows())
        if self._to_recover:
            self.actor_ref.tell(_RecoverMore())
        return len(self._to_recover)

    def _recover_some(self) -> None:
        resumed = 0
        while self._to_recover and resumed < _RECOVERY_BATCH:
            self._live(next(iter(self._to_recover)))
            resumed += 1
        self._pump()
        if self._to_recover:
            self.actor_ref.tell(_RecoverMore())

    def _live(self, workflow_id: str) -> Run | None:
        """The run the core works on for ``workflow_id``, resuming it now if recovery has not reached it yet."""
        run = self._runs.get(workflow_id)
        if run is None and workflow_id in self._to_recover:
            del self._to_recover[workflow_id]
            run = self._resume(workflow_id)
        return run

    def _resume(self, workflow_id: str) -> Run:
        """Rebuild a running workflow's run from history and set it going again."""
        history = self._store.read_run(workflow_id)
        run = Run.from_history(history)
        self._drive(run)
        self._arm_timers(run)
        self._activities.recover(run, history)
        self._begin(run, spawn=True, resumed=True)
        for ref in list(run.children.values()):
            self._repair_child(run, ref)
        for pending in list(run.signals_out.values()):
            self._deliver_external(run, pending, recovering=True)
        self._repair_orphan(run)
        return run

    # -- API: asked through the proxy, or told as a ``Call`` (then the future is the caller's ``reply``) ------

    def start_workflow(
        self,
        workflow_type: str,
        workflow_id: str,
        args: list[Any],
        options: dict[str, Any],
        *,
        reply: pykka.Future[Any] | None = None,
    ) -> pykka.Future[Any]:
        """Record a new run's ``WorkflowStarted``; the returned future (``reply`` if given) resolves when it is
        durable."""
        reply = pykka.ThreadingFuture() if reply is None else reply
        self._start_run(workflow_type, workflow_id, args, options, reply=reply)
        return reply

    def signal_with_start(
        self,
        workflow_type: str,
        workflow_id: str,
        args: list[Any],
        options: dict[str, Any],
        signal: tuple[str, Any],
        *,
        reply: pykka.Future[Any] | None = None,
    ) -> pykka.Future[Any]:
        """Deliver signal ``name``, starting the workflow first (in the same transaction) if it is not running."""
        reply = pykka.ThreadingFuture() if reply is None else reply
        run = self._live(workflow_id)
        if run is not None and not run.closing:
            name, payload = signal
            self._append(run, [ev.SignalReceived(workflow_id=workflow_id, name=name, payload=payload)], reply=reply)
        else:
            self._start_run(workflow_type, workflow_id, args, options, signal=signal, reply=reply)
        return reply

    def signal(
        self, workflow_id: str, name: str, payload: Any, *, reply: pykka.Future[Any] | None = None
    ) -> pykka.Future[Any]:
        """Record ``SignalReceived``; the future resolves once it is durable (then it is delivered)."""
        reply = pykka.ThreadingFuture() if reply is None else reply

        def deliver(run: Run) -> None:
            self._append(run, [ev.SignalReceived(workflow_id=workflow_id, name=name, payload=payload)], reply=reply)

        if not self._with_open_run(workflow_id, deliver):
            info = self._store.get_run(workflow_id)
            status = info.status.value if info is not None else "closed"
            raise WorkflowNotRunningError(f"workflow {workflow_id!r} is {status}: it takes no signals")
        return reply

    def cancel(
        self, workflow_id: str, reason: str | None, *, reply: pykka.Future[Any] | None = None
    ) -> pykka.Future[Any]:
        """Request cancellation; the future gives True once it is recorded, False if the run was closed."""
        reply = pykka.ThreadingFuture() if reply is None else reply

        def request(run: Run) -> None:
            if not self._request_cancel(run, reason, reply):
                reply.set(True)

        if not self._with_open_run(workflow_id, request):
            reply.set(False)
        return reply

    def terminate(
        self, workflow_id: str, reason: str | None, *, reply: pykka.Future[Any] | None = None
    ) -> pykka.Future[Any]:
        """Terminate now; the future gives True once ``WorkflowTerminated`` is recorded, False if it was closed."""
        reply = pykka.ThreadingFuture() if reply is None else reply

        def end(run: Run) -> None:
            if not self._end_run(run, ev.WorkflowTerminated(workflow_id=workflow_id, reason=reason), reply):
                reply.set(False)

        if not self._with_open_run(workflow_id, end):
            reply.set(False)
        return reply

    def query(
        self, workflow_id: str, name: str, args: list[Any], *, reply: pykka.Future[Any] | None = None
    ) -> pykka.Future[Any]:
        """Ask the run's process (or a one-off replay of a closed run) to answer query ``name``."""
        reply = pykka.ThreadingFuture() if reply is None else reply
        query_id = next_query_id()
        message = {"t": protocol.QUERY, "id": query_id, "name": name, "args": encode_payload(args)}
        run = self._live(workflow_id)
        if run is not None and not run.closing:
            run.queries[query_id] = reply
            if run.channel is not None:
                self._send(run, message)
            else:
                run.waiting_queries.append((query_id, message))
                self._residency.want(run, started=True)
            return reply
        info = self._store.get_run(workflow_id)
        if info is None:
            raise WorkflowNotFoundError(workflow_id)
        self._one_off_queries[query_id] = (workflow_id, message, reply)
        self._processes.start_query_process(info.workflow_type, query_child_id(query_id, workflow_id))
        return reply

    def residency(self) -> dict[str, int]:
        """Runs holding a process, runs waiting for one, evictions so far, and the bound."""
        slots = self._residency
        return {
            "resident": slots.resident,
            "waiting": slots.waiting,
            "evictions": slots.evictions,
            "max_resident": slots.max_resident,
        }

    # -- starting, ending and closing runs ------------------------------------------------------------------

    def _start_run(
        self,
        workflow_type: str,
        workflow_id: str,
        args: list[Any],
        options: dict[str, Any],
        *,
        parent: tuple[str, str] | None = None,
        run_id: str | None = None,
        signal: tuple[str, Any] | None = None,
        reply: pykka.Future[Any] | None = None,
    ) -> None:
        self._registry.workflow(workflow_type)
        existing = self._live(workflow_id)
        if existing is not None and not existing.closing:
            raise WorkflowAlreadyStartedError(workflow_id, existing.run_id)
        info = self._store.get_run(workflow_id)
        if info is not None and info.is_running:
            raise WorkflowAlreadyStartedError(workflow_id, info.run_id)
        head = existing.head if existing is not None else self._store.head(workflow_id)
        run_id = run_id or new_run_id()
        execution_timeout = options.get("execution_timeout")
        deadline = None if execution_timeout is None else datetime.now(UTC) + timedelta(seconds=execution_timeout)
        started = ev.WorkflowStarted(
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            input=args,
            run_id=run_id,
            first_run_id=run_id,
            search_attributes=dict(options.get("search_attributes") or {}),
            execution_timeout=execution_timeout,
            execution_deadline=deadline,
            run_timeout=options.get("run_timeout"),
            parent_workflow_id=parent[0] if parent else None,
            parent_workflow_run_id=parent[1] if parent else None,
        )
        run = Run(workflow_id, run_id, workflow_type, head=head, started=started)
        self._drive(run)
        events: list[ev.Event] = [started]
        if signal is not None:
            events.append(ev.SignalReceived(workflow_id=workflow_id, name=signal[0], payload=signal[1]))

        def begin(stamped: list[ev.Event]) -> None:
            first = stamped[0]
            assert isinstance(first, ev.WorkflowStarted)
            run.started = first
            self._begin(run, spawn=True)

        self._append(run, events, then=begin, reply=reply)

    def _drive(self, run: Run) -> None:
        """Make ``run`` the workflow's run the core works on, before anything is appended for it (so that
        ``Closures.opened`` comes before any ``Closures.closed`` of the run)."""
        self._runs[run.workflow_id] = run
        self._closures.opened(run.workflow_id, run.run_id)

    def _begin(self, run: Run, *, spawn: bool, resumed: bool = False) -> None:
        """A run's ``WorkflowStarted`` is durable: arm its timeouts and give it a process (now, or when a slot
        frees: see :mod:`aion.engine._residency`). ``resumed``: the run had started before (engine recovery,
        continue-as-new), so it goes ahead of new runs."""
        for kind, at in run.deadlines():
            self._timers.arm(at, (kind, run.workflow_id, run.run_id))
        if spawn:
            self._residency.want(run, started=resumed)

    def _arm_timers(self, run: Run) -> None:
        """Arm the run's pending durable timers (rebuilt from its history)."""
        for timer_id, fire_at in run.timers.items():
            self._timers.arm(fire_at, ("timer", run.workflow_id, run.run_id, timer_id))

    def _disarm_timers(self, run: Run) -> None:
        """Disarm the run's pending durable timers (they stay in its history)."""
        for timer_id in run.timers:
            self._timers.disarm(("timer", run.workflow_id, run.run_id, timer_id))

    def _spawn_process(self, run: Run) -> None:
        """Start the process of a run that was given a slot."""
        parent = run.parent
        meta = {"parent_workflow_id": parent[0]} if parent else {}
        self._processes.start_run_process(run.workflow_type, run_child_id(run.process_token, run.workflow_id), meta)

    def _evict_process(self, run: Run) -> None:
        """Tell a parked run's process to stop (it is then kept for another run); the run's state is its history,
        and anything that arrives for it gives it a process again, which replays."""
        channel, run.channel = run.channel, None
        run.residency += 1
        with contextlib.suppress(ChannelClosedError):
            channel.send({"t": protocol.STOP})

    def _end_run(self, run: Run, terminal: ev.Event, reply: pykka.Future[Any] | None = None) -> bool:
        """Close a run from outside its code (terminate, timeout): record ``terminal``, kill its process and
        stop its work. False if the run is already closing."""
        if run.closing:
            return False
        run.closing = True
        self._append(run, [terminal], reply=reply)
        self._processes.terminate_run_process(run.workflow_type, run_child_id(run.process_token, run.workflow_id))
        self._activities.forget(run)
        return True

    def _request_cancel(self, run: Run, reason: str | None, reply: pykka.Future[Any] | None = None) -> bool:
        """Record ``WorkflowCancelRequested`` (delivered to the code as ``aion.CancelledError``); False if it
        was requested already."""
        if run.cancel_requested or run.closing:
            return False
        run.cancel_requested = True

        def answer(_: list[ev.Event]) -> None:
            if reply is not None:
                reply.set(True)

        self._append(run, [ev.WorkflowCancelRequested(workflow_id=run.workflow_id, reason=reason)], then=answer)
        return True

    def _close(self, run: Run, terminal: ev.Event) -> None:
        """``terminal`` is durable: release the run, apply its parent-close policy, tell its parent."""
        self._disarm_timers(run)
        for kind, _ in run.deadlines():
            self._timers.disarm((kind, run.workflow_id, run.run_id))
        self._activities.forget(run)
        self._residency.release(run)
        for query in run.queries.values():
            query.set_exception((QueryError, QueryError("the run closed before answering"), None))
        if self._runs.get(run.workflow_id) is run:
            del self._runs[run.workflow_id]
        for ref in list(run.children.values()):
            self._apply_parent_close_policy(ref.workflow_id, ref.parent_close_policy)
        if not isinstance(terminal, ev.WorkflowContinuedAsNew):
            self._notify_parent(run, terminal)

    def _with_open_run(self, workflow_id: str, action: Callable[[Run], None]) -> bool:
        """Apply ``action`` to the workflow's open run: now, or, while a run is continuing as new, to its
        successor as soon as that opens (a signal or a terminate aimed at the workflow must not fall between
        two runs). False if the workflow has no open run; ``WorkflowNotFoundError`` if it never existed."""
        run = self._live(workflow_id)
        if run is not None and not run.closing:
            action(run)
            return True
        if run is not None and run.continuing:
            self._after_continue.setdefault(workflow_id, []).append(action)
            return True
        if self._store.get_run(workflow_id) is None:
            raise WorkflowNotFoundError(workflow_id)
        return False

    # -- messages -------------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            self._handle(message)
        except Exception:
            # One bad message must not take the sequencer down; the run it concerns is resynced if needed.
            log.exception("engine core failed to handle %r", message)
        return None

    def _handle(self, message: Any) -> None:
        match message:
            case _Committed(outcomes=outcomes):
                for append, stamped, error in outcomes:
                    try:
                        self._on_appended(append, stamped, error)
                    except Exception:
                        log.exception("engine core failed to handle the commit of %r", append)
            case Call(method=method, args=args, reply=reply):
                try:
                    method(self, *args, reply=reply)
                except Exception:
                    reply.set_exception()
            case ProcessUp(child_id=child_id, channel=channel):
                self._on_process_up(child_id, channel)
            case ProcessMessage(child_id=child_id, message=frame):
                self._on_process_message(child_id, frame)
            case ProcessDown(child_id=child_id):
                run = self._run_of_child(child_id)
                if run is not None:
                    run.channel = None
            case ProcessGaveUp(child_id=child_id, reason=reason):
                self._on_gave_up(child_id, reason)
            case WorkerUp(worker_id=worker_id, channel=channel):
                self._pool.worker_up(worker_id, channel)
                self._pump()
            case WorkerMessage(worker_id=worker_id, message=frame):
                self._on_worker_message(worker_id, frame)
            case WorkerDown(worker_id=worker_id, reason=reason):
                lost = self._pool.worker_down(worker_id)
                if lost is not None:
                    log.warning("activity worker %s lost (%s) while running %s", worker_id, reason, lost)
                    self._activities.worker_lost(self._runs.get(lost.workflow_id), lost, reason)
                self._pump()
            case Due(key=key):
                self._on_due(key)
            case _RecoverMore():
                self._recover_some()

    # -- recording ------------------------------------------------------------------------------------------

    def _append(
        self,
        run: Run,
        events: Sequence[ev.Event],
        *,
        then: Callable[[list[ev.Event]], None] | None = None,
        reply: pykka.Future[Any] | None = None,
    ) -> None:
        expected = run.head
        run.head += len(events)
        closing = any(event.terminal for event in events)
        append = _Append(run, then, reply, closing, run.generation)
        self._recorder.append_to(self._sink, append, run.workflow_id, events, expected)

    def _commit_sink(self) -> CommitSink:
        """Where the recorder hands the outcomes of the core's appends: one message per committed batch."""
        actor = self.actor_ref
        closures = self._closures

        def committed(outcomes: list[Committed]) -> None:
            # On the recorder's thread, once durable: tell the core first (whoever ``result()`` wakes may ask it
            # something next), then hand closed runs' terminal events straight to their waiters.
            with contextlib.suppress(pykka.ActorDeadError):
                actor.tell(_Committed(outcomes))
            for append, stamped, _ in outcomes:
                if append.closing and stamped is not None:
                    terminal = next(event for event in stamped if event.terminal)
                    run = append.run  # its ids never change, so reading them on this thread is safe
                    closures.closed(run.workflow_id, run.run_id, terminal)

        return committed

    def _on_appended(self, append: _Append, stamped: list[ev.Event] | None, error: BaseException | None) -> None:
        run = append.run
        if error is not None or stamped is None:
            error = error or AionError("append failed")
            if append.reply is not None:
                append.reply.set_exception((type(error), error, error.__traceback__))
            log.error("append for workflow %s failed: %r", run.workflow_id, error)
            self._closures.forget(run.workflow_id, run.run_id)  # its result waiters look in the store
            if self._runs.get(run.workflow_id) is run and append.generation == run.generation:
                self._resync(run)
            return
        if append.then is not None:
            append.then(stamped)
        if append.reply is not None:
            append.reply.set(stamped)
        for event in stamped:
            if event.terminal:
                self._close(run, event)
                break
            self._forward(run, event)

    def _forward(self, run: Run, event: ev.Event) -> None:
        """Deliver a recorded event to the run's process unless it has seen it already; an arrival for a run
        without a process (evicted) gives it one, which is sent the whole history."""
        if run.channel is None:
            if is_arrival(event) and not run.closing and not self._residency.is_resident(run):
                self._residency.want(run, started=True)
            return
        if event.seq <= run.delivered:
            return
        run.delivered = event.seq
        if is_arrival(event):
            run.sent = event.seq
            self._residency.touch(run)
            self._send(run, protocol.event_message(event))
        elif run.delivered == run.head:
            self._residency.settled(run)  # its last append is in: it may be parked now

    def _resync(self, run: Run) -> None:
        """After an unexpected append failure, rebuild the run from the store and give it a new process, which
        replays what was recorded. Its old process is killed for good: it has run ahead of its history (or has
        already exited, after sending its closing command), and nothing it sends is taken any more. Its
        activities are taken up again from history as after an engine restart (an attempt whose start was
        recorded counts as lost); the appends it still has in flight fail, and are not resynced again."""
        self._processes.terminate_run_process(run.workflow_type, run_child_id(run.process_token, run.workflow_id))
        run.channel = None
        run.residency += 1  # a new incarnation: a new child id
        run.generation += 1
        self._residency.release(run)
        self._activities.forget(run)
        self._disarm_timers(run)
        try:
            history = self._store.read_run(run.workflow_id)
        except WorkflowNotFoundError:
            history = []
        opened = history[0] if history else None
        if not isinstance(opened, ev.WorkflowStarted) or opened.run_id != run.run_id:
            # Its WorkflowStarted is what failed (the caller was told): the run never existed.
            if self._runs.get(run.workflow_id) is run:
                del self._runs[run.workflow_id]
            return
        fresh = Run.from_history(history)
        run.head, run.issued, run.closing = fresh.head, fresh.issued, fresh.closing
        run.activities, run.timers = fresh.activities, fresh.timers
        for query in run.queries.values():
            query.set_exception((QueryError, QueryError("the run's process was replaced before answering"), None))
        run.queries.clear()
        if run.closing:
            self._close(run, history[-1])
            return
        self._arm_timers(run)
        self._activities.recover(run, history)
        self._pump()
        self._residency.want(run, started=True)

    # -- workflow processes ---------------------------------------------------------------------------------

    def _run_of_child(self, child_id: str) -> Run | None:
        kind, token, workflow_id = parse_child_id(child_id)
        run = self._runs.get(workflow_id)
        if kind != "run" or run is None or run.process_token != token:
            return None
        return run

    def _on_process_up(self, child_id: str, channel: Any) -> None:
        kind, token, workflow_id = parse_child_id(child_id)
        if kind == "query":
            pending = self._one_off_queries.get(int(token))
            if pending is None:
                channel.send({"t": protocol.STOP})
                return
            channel.send(protocol.run_message(self._store.read_run(workflow_id), once=True))
            channel.send(pending[1])
            return
        run = self._run_of_child(child_id)
        if run is None:
            channel.send({"t": protocol.STOP})
            return
        # A run that has recorded nothing since it started (the common case: a new run) needs no store read.
        started = run.started
        history = [started] if started is not None and run.head == started.seq else self._store.read_run(workflow_id)
        run.channel = channel
        run.delivered = run.sent = history[-1].seq
        run.acked = 0
        self._send(run, protocol.run_message(history))
        for _, message in run.waiting_queries:
            self._send(run, message)
        run.waiting_queries.clear()

    @staticmethod
    def _send(run: Run, message: dict[str, Any]) -> None:
        """Send to the run's process; if it just died, forget it: its restart is sent the history anew."""
        try:
            run.channel.send(message)
        except ChannelClosedError:
            run.channel = None

    def _on_process_message(self, child_id: str, message: dict[str, Any]) -> None:
        kind = message.get("t")
        child_kind, token, _ = parse_child_id(child_id)
        if child_kind == "query":
            pending = self._one_off_queries.pop(int(token), None)
            if kind == protocol.ANSWER and pending is not None:
                _resolve_query(pending[2], message)
            return
        run = self._run_of_child(child_id)
        if run is None:
            return
        if kind == protocol.COMMANDS:
            self._residency.touch(run)
            run.acked = max(run.acked, message["at"])
            for command in protocol.decode_commands(message):
                self._on_command(run, command)
            self._residency.settled(run)
        elif kind == protocol.ANSWER:
            reply = run.queries.pop(message["id"], None)
            if reply is not None:
                _resolve_query(reply, message)
        elif kind == protocol.DIVERGED:
            self._fail_run(run, protocol.decode_failure(message))

    def _on_gave_up(self, child_id: str, reason: str) -> None:
        kind, token, _ = parse_child_id(child_id)
        if kind == "query":
            pending = self._one_off_queries.pop(int(token), None)
            if pending is not None:
                error = QueryError(f"the replay to answer the query crashed: {reason}")
                pending[2].set_exception((QueryError, error, None))
            return
        run = self._run_of_child(child_id)
        if run is not None:
            failure = ev.Failure(
                type="WorkflowProcessCrashed",
                message=f"the workflow process crashed more often than its restart intensity allows; last: {reason}",
            )
            self._fail_run(run, failure)

    def _fail_run(self, run: Run, failure: ev.Failure) -> None:
        if run.closing:
            return
        run.closing = True
        self._append(run, [ev.WorkflowFailed(workflow_id=run.workflow_id, failure=failure)])

    # -- commands -------------------------------------------------------------------------------------------

    def _on_command(self, run: Run, command: Command) -> None:
        if run.closing:
            return
        key = command.key
        if key in run.issued and not isinstance(command, CompleteWorkflow | FailWorkflow):
            return  # issued already (by an earlier incarnation of the process): never twice
        run.issued.add(key)
        wf = run.workflow_id
        match command:
            case ScheduleActivity(activity_id=aid, activity_type=name, args=args, options=options):
                activity = PendingActivity(aid, name, args, options)
                run.activities[aid] = activity
                scheduled = ev.ActivityScheduled(
                    workflow_id=wf, activity_id=aid, activity_type=name, input=args, options=options
                )

                def dispatch(stamped: list[ev.Event]) -> None:
                    self._activities.scheduled(run, activity, stamped[0].recorded_at)
                    self._pump()

                self._append(run, [scheduled], then=dispatch)
            case RequestCancelActivity(activity_id=aid):
                if aid in run.activities:

                    def cancel(_: list[ev.Event]) -> None:
                        self._activities.cancel(run, aid)
                        self._pump()

                    requested = ev.ActivityCancelRequested(workflow_id=wf, activity_id=aid)
                    self._append(run, [requested], then=cancel)
            case StartTimer(timer_id=tid, seconds=seconds):
                fire_at = datetime.now(UTC) + timedelta(seconds=seconds)
                run.timers[tid] = fire_at.timestamp()
                started = ev.TimerStarted(workflow_id=wf, timer_id=tid, fire_at=fire_at)
                key_ = ("timer", wf, run.run_id, tid)
                self._append(run, [started], then=lambda _: self._timers.arm(fire_at.timestamp(), key_))
            case CancelTimer(timer_id=tid):
                if run.timers.pop(tid, None) is not None:
                    self._timers.disarm(("timer", wf, run.run_id, tid))
                    self._append(run, [ev.TimerCancelled(workflow_id=wf, timer_id=tid)])
            case CompleteWorkflow(result=result):
                try:
                    check_payload(result, path="workflow result")
                except PayloadError as error:
                    self._fail_run(run, ev.Failure(type(error).__name__, str(error)))
                    return
                run.closing = True
                self._append(run, [ev.WorkflowCompleted(workflow_id=wf, result=result)])
            case FailWorkflow(failure=failure):
                self._fail_run(run, failure)
            case CancelWorkflow(reason=reason):
                run.closing = True
                self._append(run, [ev.WorkflowCancelled(workflow_id=wf, reason=reason)])
            case ContinueAsNew():
                self._continue_as_new(run, command)
            case StartChild(child_id=cid, workflow_id=child_wf, workflow_type=child_type, args=args):
                ref = ChildRef(
                    cid, child_wf, new_run_id(), child_type, args, command.parent_close_policy, command.options
                )
                run.children[cid] = ref
                child_started = ev.ChildWorkflowStarted(
                    workflow_id=wf,
                    child_id=cid,
                    child_workflow_id=child_wf,
                    workflow_type=child_type,
                    input=args,
                    child_run_id=ref.run_id,
                    parent_close_policy=ref.parent_close_policy,
                )
                self._append(run, [child_started], then=lambda _: self._start_child(run, ref))
            case RequestCancelChild(child_id=cid):
                child_ref = run.children.get(cid)
                if child_ref is not None:
                    cancel_requested = ev.ChildWorkflowCancelRequested(workflow_id=wf, child_id=cid)
                    target = child_ref.workflow_id
                    self._append(run, [cancel_requested], then=lambda _: self._cancel_child(target))
            case SignalExternal(signal_id=sid, target_workflow_id=target_id, name=name, payload=payload):
                pending = PendingSignal(sid, target_id, name, payload)
                run.signals_out[sid] = pending
                sent = ev.SignalExternalSent(
                    workflow_id=wf, signal_id=sid, target_workflow_id=target_id, name=name, payload=payload
                )
                self._append(run, [sent], then=lambda _: self._deliver_external(run, pending))

    def _continue_as_new(self, run: Run, command: ContinueAsNew) -> None:
        """Close the run with ``WorkflowContinuedAsNew`` and open the next one, in one transaction."""
        workflow_type = command.workflow_type or run.workflow_type
        try:
            self._registry.workflow(workflow_type)
            check_payload(command.args, path="continue_as_new input")
        except AionError as error:
            self._fail_run(run, ev.Failure(type(error).__name__, str(error)))
            return
        run.closing = True
        run.continuing = True
        previous = run.started
        assert previous is not None
        new_run_id_ = new_run_id()
        closing = ev.WorkflowContinuedAsNew(
            workflow_id=run.workflow_id, input=command.args, new_run_id=new_run_id_, workflow_type=workflow_type
        )
        started = ev.WorkflowStarted(
            workflow_id=run.workflow_id,
            workflow_type=workflow_type,
            input=command.args,
            run_id=new_run_id_,
            parent_run_id=run.run_id,
            first_run_id=previous.first_run_id or previous.run_id,
            search_attributes=dict(previous.search_attributes),
            execution_timeout=previous.execution_timeout,
            execution_deadline=previous.execution_deadline,
            run_timeout=previous.run_timeout,
            parent_workflow_id=previous.parent_workflow_id,
            parent_workflow_run_id=previous.parent_workflow_run_id,
        )

        def open_next(stamped: list[ev.Event]) -> None:
            opened = stamped[-1]
            assert isinstance(opened, ev.WorkflowStarted)
            successor = Run(run.workflow_id, new_run_id_, workflow_type, head=opened.seq, started=opened)
            self._drive(successor)
            self._begin(successor, spawn=True, resumed=True)
            for action in self._after_continue.pop(run.workflow_id, []):
                action(successor)

        self._append(run, [closing, started], then=open_next)

    # -- activities ---------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand queued attempts to idle workers."""
        for worker_id, worker_channel, task in self._pool.assignments():
            # A worker that just died drops the task here; its WorkerDown reports the attempt lost.
            with contextlib.suppress(ChannelClosedError):
                worker_channel.send(task.message())
            self._activities.assigned(self._runs.get(task.workflow_id), worker_id, task)

    def _on_worker_message(self, worker_id: str, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == protocol.RESULT:
            task = self._pool.finished(worker_id)
            if task is not None and task.task_id == message.get("task"):
                self._activities.result(self._runs.get(task.workflow_id), task, message)
            self._pump()
        elif kind == protocol.HEARTBEAT:
            task = self._pool.task_of(worker_id)
            if task is not None and task.task_id == message.get("task"):
                details = decode_payload(message["details"])
                self._activities.heartbeat(self._runs.get(task.workflow_id), task, details)

    # -- timers ---------------------------------------------------------------------------------------------

    def _timer_due(self, key: tuple[Any, ...]) -> None:
        """Called on the timer thread: hand over to the actor."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(Due(key))

    def _on_due(self, key: tuple[Any, ...]) -> None:
        if key[0] == "residency":
            self._residency.recheck()
            return
        kind, workflow_id, run_id = key[0], key[1], key[2]
        run = self._runs.get(workflow_id)
        if run is None or run.run_id != run_id or run.closing:
            return
        if kind in ("run_timeout", "execution_timeout"):
            self._end_run(run, ev.WorkflowTimedOut(workflow_id=workflow_id, kind=kind.removesuffix("_timeout")))
            return
        if kind == "timer":
            timer_id = key[3]
            if run.timers.pop(timer_id, None) is not None:
                self._append(run, [ev.TimerFired(workflow_id=workflow_id, timer_id=timer_id)])
            return
        self._activities.due(run, key)
        self._pump()


def _resolve_query(reply: pykka.Future[Any], message: dict[str, Any]) -> None:
    if message.get("ok"):
        reply.set(decode_payload(message["value"]))
    else:
        error = QueryError(message.get("error", "query failed"))
        reply.set_exception((QueryError, error, None))
