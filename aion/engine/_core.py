"""The engine core: a mailbox and the registry of the runs it works on.

Every message (``_messages``) is handled by the one method named for it, which hands the work to the
collaborator whose job it is: :class:`~aion.engine._lifecycle.RunLifecycle` (starting, signalling, cancelling,
terminating, timing out and closing runs), :class:`~aion.engine._commands.CommandHandler` (workflow commands),
:class:`~aion.engine._relations.Relations` (children and external signals),
:class:`~aion.engine._activity_manager.ActivityManager` (activity attempts),
:class:`~aion.engine._process_links.ProcessLinks` (workflow processes and residency),
:class:`~aion.engine._recovery.Recovery` (rebuilding runs from history) and
:class:`~aion.engine._appends.AppendPipeline` (recording). They ask the core for runs and appends through the
:class:`~aion.engine._interfaces.Core` protocol.

The core is the one place that appends for a workflow, so it can pipeline appends, and every effect waits for
its record (record before effect). Threads never block here on I/O: the recorder calls back when a commit is
durable and the callback re-enters this actor as a message; process callbacks and timers arrive the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pykka

from aion import events as ev
from aion.clock import SYSTEM_CLOCK, Clock
from aion.engine import _messages as msg
from aion.engine._activities import LocalPool
from aion.engine._activity_manager import ActivityManager
from aion.engine._appends import AppendPipeline, AppendToken
from aion.engine._closures import Closures
from aion.engine._commands import CommandHandler
from aion.engine._holds import CodeMismatch, Holds
from aion.engine._interfaces import Processes, Then
from aion.engine._lifecycle import RunLifecycle
from aion.engine._process_links import ProcessLinks
from aion.engine._recovery import Recovery
from aion.engine._registry import Registry
from aion.engine._relations import Relations
from aion.engine._reset import Resets
from aion.engine._residency import DEFAULT_MAX_RESIDENT
from aion.engine._runs import Run
from aion.engine._task_queues import Executor, LocalQueue, QueueConfig, TaskQueue
from aion.engine._timer_keys import TimerKind
from aion.engine._timer_lead import record_at
from aion.engine._timers import TimerService
from aion.engine._updates import Updates
from aion.errors import WorkflowNotFoundError, WorkflowNotRunningError
from aion.observability._observer import Observer
from aion.recorder import RecorderHandle
from aion.store import AppendRequest, EventStore
from aion.visibility import SearchAttributeSchema
from aion.workflow._commands import Command
from supervisors import SimpleInbox

log = logging.getLogger(__name__)

#: The kinds of deadline that belong to an activity (the others are the run's own, or residency's).
_ACTIVITY_DEADLINES = frozenset(
    {
        TimerKind.RETRY,
        TimerKind.SCHEDULE_TO_CLOSE,
        TimerKind.START_TO_CLOSE,
        TimerKind.HEARTBEAT,
        TimerKind.CANCEL_GRACE,
    }
)


class EngineCore(SimpleInbox, pykka.ThreadingActor):
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
        evict_idle_after: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        observer: Observer | None = None,
        on_code_mismatch: CodeMismatch = "block",
        task_queues: Mapping[str, QueueConfig] | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        super().__init__()
        self._runs: dict[str, Run] = {}
        self._store = store
        self._closures = closures
        closures.on_wait = recorder.expedite
        self._clock = clock
        self._observer = observer = observer if observer is not None else Observer()
        tell = self.actor_ref.tell
        self._timers = TimerService(self._timer_due, clock)
        self._appends = AppendPipeline(recorder, closures, tell, observer)
        queues = {
            name: TaskQueue(
                name, config, LocalPool(processes) if isinstance(config, LocalQueue) else (executors or {})[name], 0.0
            )
            for name, config in (task_queues or {"default": LocalQueue(1)}).items()
        }
        self._activities = ActivityManager(
            self, self._timers, queues, clock, cancel_grace=cancel_grace, observer=observer
        )
        self._recorder = recorder
        self._links = ProcessLinks(
            self,
            store,
            processes,
            self._timers,
            clock,
            max_resident=max_resident,
            evict_idle_after=evict_idle_after,
            on_commands=self._run_commands,
            on_failure=self._run_failed,
            on_diverged=self._run_diverged,
            observer=observer,
        )
        self._lifecycle = RunLifecycle(
            self,
            store,
            registry=registry,
            timers=self._timers,
            links=self._links,
            activities=self._activities,
            clock=clock,
            observer=observer,
        )
        self._relations = Relations(self, store, self._lifecycle)
        self._holds = Holds(
            self,
            registry=registry,
            links=self._links,
            activities=self._activities,
            fail=self._lifecycle.fail,
            repair=self._relations.repair,
            on_code_mismatch=on_code_mismatch,
        )
        self._updates = Updates(self, store, self._links)
        self._commands = CommandHandler(
            self,
            lifecycle=self._lifecycle,
            relations=self._relations,
            activities=self._activities,
            timers=self._timers,
            clock=clock,
            schema=SearchAttributeSchema(store.search_attribute_schema()),
            updates=self._updates,
        )
        self._recovery = Recovery(
            self,
            store,
            lifecycle=self._lifecycle,
            relations=self._relations,
            activities=self._activities,
            links=self._links,
            tell=tell,
            holds=self._holds,
            registry=registry,
        )
        self._resets = Resets(
            self,
            store,
            lifecycle=self._lifecycle,
            activities=self._activities,
            links=self._links,
            recovery=self._recovery,
        )
        self._handlers: dict[type, Callable[[Any], None]] = {
            msg.AppendsCommitted: self._on_appends_committed,
            msg.ProcessUp: self._on_process_up,
            msg.ProcessMessage: self._on_process_message,
            msg.ProcessDown: self._on_process_down,
            msg.ProcessGaveUp: self._on_process_gave_up,
            msg.WorkerUp: self._on_worker_up,
            msg.WorkerMessage: self._on_worker_message,
            msg.WorkerDown: self._on_worker_down,
            msg.Due: self._on_due,
            msg.RecoverMore: self._on_recover_more,
            msg.Recover: self._on_recover,
            msg.StartWorkflow: self._on_start_workflow,
            msg.SignalWithStart: self._on_signal_with_start,
            msg.SignalWorkflow: self._on_signal_workflow,
            msg.CancelWorkflowRequest: self._on_cancel_workflow_request,
            msg.TerminateWorkflow: self._on_terminate_workflow,
            msg.QueryWorkflow: self._on_query_workflow,
            msg.UpdateWorkflow: self._on_update_workflow,
            msg.GetResidency: self._on_get_residency,
            msg.GetQuiescence: self._on_get_quiescence,
            msg.StartScheduled: self._on_start_scheduled,
            msg.StartScheduledMany: self._on_start_scheduled_many,
            msg.UnblockWorkflows: self._on_unblock_workflows,
            msg.PauseWorkflow: self._on_pause_workflow,
            msg.ResumeWorkflow: self._on_resume_workflow,
            msg.ResetWorkflow: self._on_reset_workflow,
            msg.GetWaits: self._on_get_waits,
            msg.RayAttemptDone: self._on_ray_attempt_done,
            msg.RayHeartbeats: self._on_ray_heartbeats,
        }

    # -- lifecycle of the actor -----------------------------------------------------------------------------

    def on_start(self) -> None:
        self._timers.start()

    def on_stop(self) -> None:
        self._timers.stop()

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            log.error("engine core got an unknown message %r", message)
            return None
        try:
            handler(message)
        except Exception:
            if isinstance(message, msg.Request):
                message.reply.set_exception()
            else:
                # One bad message must not take the sequencer down; the run it concerns is resynced if needed.
                log.exception("engine core failed to handle %r", message)
        return None

    # -- the registry of runs (the Core protocol) -----------------------------------------------------------

    def run_of(self, workflow_id: str) -> Run | None:
        """The run the core works on for ``workflow_id``, if any."""
        return self._runs.get(workflow_id)

    def live(self, workflow_id: str) -> Run | None:
        """The run the core works on for ``workflow_id``, resuming it now if recovery has not reached it yet."""
        run = self._runs.get(workflow_id)
        return run if run is not None else self._recovery.resume_pending(workflow_id)

    def drive(self, run: Run) -> None:
        """Make ``run`` the workflow's run (so that ``Closures.opened`` comes before any ``Closures.closed``)."""
        self._runs[run.workflow_id] = run
        self._closures.opened(run.workflow_id, run.run_id)

    def drop(self, run: Run) -> None:
        """Forget ``run`` if it is still the workflow's run."""
        if self._runs.get(run.workflow_id) is run:
            del self._runs[run.workflow_id]

    def append(
        self,
        run: Run,
        events: Sequence[ev.Event],
        *,
        then: Then | None = None,
        reply: pykka.Future[Any] | None = None,
        companion: AppendRequest | None = None,
        deferrable: bool = False,
    ) -> None:
        """Record ``events`` for ``run`` (see ``Core.append``)."""
        self._appends.append(run, events, then=then, reply=reply, companion=companion, deferrable=deferrable)

    def closed(self, run: Run, terminal: ev.Event) -> None:
        """``terminal`` is durable: release the run, apply its parent-close policy, tell its parent."""
        self._lifecycle.release(run)
        self._relations.closed(run, terminal)
        self._updates.closed(run)

    def _run_commands(self, run: Run, commands: list[Command]) -> None:
        """What the links pass on from a run's process: its commands, to the command handler (a blocked run's
        process that replayed to its commands fits it again: it is unblocked first)."""
        if run.state.blocked:
            self._holds.fitted(run)
        self._commands.handle(run, commands)

    def _run_failed(self, run: Run, failure: ev.Failure) -> None:
        """What the links pass on from a run's process: its process kept crashing."""
        self._lifecycle.fail(run, failure)

    def _run_diverged(self, run: Run, failure: ev.Failure) -> None:
        """What the links pass on from a run's process: its code does not fit it (blocked, or failed)."""
        self._holds.mismatch(run, failure)

    # -- requests -------------------------------------------------------------------------------------------

    def _on_recover(self, request: msg.Recover) -> None:
        request.reply.set(self._recovery.recover())

    def _on_start_workflow(self, request: msg.StartWorkflow) -> None:
        self._lifecycle.start(
            request.workflow_type, request.workflow_id, request.args, request.options, reply=request.reply
        )

    def _on_start_scheduled(self, request: msg.StartScheduled) -> None:
        self._lifecycle.start(
            request.workflow_type,
            request.workflow_id,
            request.args,
            request.options,
            run_id=request.run_id,
            companion=request.fire,
            reply=request.reply,
        )

    def _on_start_scheduled_many(self, notice: msg.StartScheduledMany) -> None:
        with self._recorder.together():  # the burst's starts in one transaction
            for request in notice.fires:
                try:
                    self._on_start_scheduled(request)
                except Exception:
                    request.reply.set_exception()

    def _on_signal_with_start(self, request: msg.SignalWithStart) -> None:
        signal = (request.name, request.payload)
        self._lifecycle.signal_with_start(
            workflow_type=request.workflow_type,
            workflow_id=request.workflow_id,
            args=request.args,
            options=request.options,
            signal=signal,
            reply=request.reply,
        )

    def _on_signal_workflow(self, request: msg.SignalWorkflow) -> None:
        self._lifecycle.signal(request.workflow_id, request.name, request.payload, request.reply)

    def _on_cancel_workflow_request(self, request: msg.CancelWorkflowRequest) -> None:
        self._lifecycle.cancel(request.workflow_id, request.reason, request.reply)

    def _on_terminate_workflow(self, request: msg.TerminateWorkflow) -> None:
        self._lifecycle.terminate(request.workflow_id, request.reason, request.reply)

    def _on_query_workflow(self, request: msg.QueryWorkflow) -> None:
        run = self.live(request.workflow_id)
        self._links.query(request.workflow_id, run, request.name, request.args, request.reply)

    def _on_update_workflow(self, request: msg.UpdateWorkflow) -> None:
        self._updates.update(request)

    def _on_get_residency(self, request: msg.GetResidency) -> None:
        slots = self._links.residency
        request.reply.set(
            {
                "resident": slots.resident,
                "waiting": slots.waiting,
                "evictions": slots.evictions,
                "max_resident": slots.max_resident,
            }
        )

    def _on_get_quiescence(self, request: msg.GetQuiescence) -> None:
        settled = (
            self._appends.in_flight == 0
            and self._timers.settled()
            and not self._recovery.pending
            and self._links.settled()
        )
        request.reply.set(msg.Quiescence(settled, self._activities.busy(), self._timers.next_due()))

    def _on_unblock_workflows(self, request: msg.UnblockWorkflows) -> None:
        request.reply.set(self._recovery.unblock(request.workflow_id))

    def _on_pause_workflow(self, request: msg.PauseWorkflow) -> None:
        self._holds.pause(self._open_run(request.workflow_id), request.reason, request.reply)

    def _on_resume_workflow(self, request: msg.ResumeWorkflow) -> None:
        self._holds.resume(self._open_run(request.workflow_id), request.reply)

    def _on_reset_workflow(self, request: msg.ResetWorkflow) -> None:
        self._resets.reset(request.workflow_id, request.to_seq, request.reason, request.reply)

    def _open_run(self, workflow_id: str) -> Run:
        """The workflow's open run; ``WorkflowNotRunningError`` (or ``WorkflowNotFoundError``) otherwise."""
        run = self.live(workflow_id)
        if run is None or run.state.closing:
            if self._store.get_run(workflow_id) is None:
                raise WorkflowNotFoundError(workflow_id)
            raise WorkflowNotRunningError(f"workflow {workflow_id!r} has no open run")
        return run

    def _on_get_waits(self, request: msg.GetWaits) -> None:
        request.reply.set(self._links.waits(request.runs))

    # -- notices --------------------------------------------------------------------------------------------

    def _on_appends_committed(self, notice: msg.AppendsCommitted) -> None:
        self._observer.committed(len(notice.outcomes))
        for token, stamped, error in notice.outcomes:
            try:
                self._appended(token, stamped, error)
            except Exception:
                log.exception("engine core failed to handle the commit of %r", token)

    def _appended(self, token: AppendToken, stamped: list[ev.Event] | None, error: BaseException | None) -> None:
        run = token.run
        if not self._appends.settle(token, stamped, error) or stamped is None:
            if AppendPipeline.needs_resync(token, self._runs.get(run.workflow_id)):
                self._recovery.resync(run)
            return
        for event in stamped:
            if event.terminal:
                self.closed(run, event)
                break
            self._links.forward(run, event)

    def _on_process_up(self, notice: msg.ProcessUp) -> None:
        self._observer.process_up(notice.child_id, self._links.run_of_child(notice.child_id))
        self._links.up(notice.child_id, notice.channel)

    def _on_process_message(self, notice: msg.ProcessMessage) -> None:
        self._links.received(notice.child_id, notice.message)

    def _on_process_down(self, notice: msg.ProcessDown) -> None:
        self._observer.process_down(notice.child_id, notice.reason, self._links.run_of_child(notice.child_id))
        self._links.down(notice.child_id)

    def _on_process_gave_up(self, notice: msg.ProcessGaveUp) -> None:
        self._observer.process_gave_up(notice.child_id, notice.reason, self._links.run_of_child(notice.child_id))
        self._links.gave_up(notice.child_id, notice.reason)

    def _on_worker_up(self, notice: msg.WorkerUp) -> None:
        self._observer.worker_up(notice.worker_id)
        self._activities.worker_up(notice.worker_id, notice.channel, notice.queue)

    def _on_worker_message(self, notice: msg.WorkerMessage) -> None:
        self._activities.received(notice.worker_id, notice.message)

    def _on_worker_down(self, notice: msg.WorkerDown) -> None:
        self._observer.worker_down(notice.worker_id, notice.reason)
        self._activities.worker_down(notice.worker_id, notice.reason)

    def _on_due(self, notice: msg.Due) -> None:
        self._timers.handled()
        key = notice.key
        if key.kind is TimerKind.RESIDENCY:
            self._links.residency.recheck()
            return
        if key.kind is TimerKind.RATE_LIMIT:
            self._activities.pump()
            return
        run = self._runs.get(key.workflow_id)
        if run is None or run.run_id != key.run_id or run.state.closing:
            return
        if key.kind is TimerKind.TIMER:
            fire_at = run.state.timers.get(key.item)
            if fire_at is not None:
                self._observer.timer_late(self._clock.time() - record_at(fire_at, self._clock))
        if key.kind in _ACTIVITY_DEADLINES:
            self._activities.due(run, key)
        else:
            self._lifecycle.deadline_due(run, key)

    def _on_ray_attempt_done(self, notice: msg.RayAttemptDone) -> None:
        if notice.reply is not None:
            self._activities.attempt_done(notice.task_id, notice.reply)
        else:
            self._activities.attempt_lost(notice.task_id, f"the Ray task was lost: {notice.lost}")

    def _on_ray_heartbeats(self, notice: msg.RayHeartbeats) -> None:
        for task_id, details in notice.beats:
            self._activities.heartbeat(task_id, details)

    def _on_recover_more(self, _: msg.RecoverMore) -> None:
        self._recovery.recover_more()

    def _timer_due(self, key: Any) -> None:
        """Called on the timer thread: hand over to the actor."""
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(msg.Due(key))
