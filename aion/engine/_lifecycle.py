"""The life of a run from outside its code: start, signals, cancel, terminate, timeouts, failure,
continue-as-new, and what a closed run releases.

Every event that opens or closes a run is built here (``WorkflowStarted``, ``WorkflowContinuedAsNew``,
``WorkflowTerminated``, ``WorkflowTimedOut``, ``WorkflowFailed``), and the requests from outside that it records
(``SignalReceived`` from a caller, ``WorkflowCancelRequested``) and a durable timer's ``TimerFired``. Runs inside
the core's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pykka

from aion import events as ev
from aion._codec import check_payload
from aion._definitions import WorkflowDefinition
from aion._ids import new_run_id
from aion.clock import Clock
from aion.engine._activity_manager import ActivityManager
from aion.engine._interfaces import Core, Then
from aion.engine._options import StartOptions
from aion.engine._process_links import ProcessLinks
from aion.engine._registry import Registry
from aion.engine._runs import Run, RunState
from aion.engine._start_policies import StartPolicies
from aion.engine._timer_keys import RUN_DEADLINES, TimerKey, TimerKind
from aion.engine._timer_lead import due_at, record_at
from aion.engine._timers import TimerService
from aion.errors import (
    AionError,
    InternalError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.observability._observer import Observer
from aion.store import AppendRequest, EventStore, read_started
from aion.workflow._commands import ContinueAsNew

#: A caller's request applied to a workflow's open run.
RunAction = Callable[[Run], None]


class RunLifecycle:
    """Opens, drives from outside and closes the runs of the core."""

    def __init__(
        self,
        core: Core,
        store: EventStore,
        *,
        registry: Registry,
        timers: TimerService,
        links: ProcessLinks,
        activities: ActivityManager,
        clock: Clock,
        observer: Observer | None = None,
    ) -> None:
        self._core = core
        self._observer = observer if observer is not None else Observer()
        self._store = store
        self._registry = registry
        self._timers = timers
        self._links = links
        self._activities = activities
        self._clock = clock
        #: Requests that reached a workflow while its run was continuing as new, for the successor run.
        self._after_continue: dict[str, list[RunAction]] = {}
        self._policies = StartPolicies(core, store, clock)

    # -- opening --------------------------------------------------------------------------------------------

    def start(
        self,
        workflow_type: str,
        workflow_id: str,
        args: list[Any],
        options: StartOptions,
        *,
        parent: tuple[str, str] | None = None,
        run_id: str | None = None,
        signal: tuple[str, Any] | None = None,
        reply: pykka.Future[Any] | None = None,
        companion: AppendRequest | None = None,
    ) -> None:
        """Record a new run's ``WorkflowStarted`` (and ``signal`` with it), then give it a process. The start
        policies settle it first (an existing run's ``WorkflowStarted`` may answer it). A ``companion`` (a schedule's
        fire) is committed with it, atomically."""
        definition = self._registry.workflow_version(workflow_type, options.version)
        # The id's run record, read once: the store changes only through the core's appends, and a run with an
        # append on its way is one the core holds (``live``), whose own state is what counts.
        info = self._store.get_run(workflow_id)
        if self._policies.settle(
            workflow_id,
            options,
            reply,
            terminate=self._terminate_then,
            start_again=lambda: self.start(
                workflow_type, workflow_id, args, options, parent=parent, run_id=run_id, signal=signal, reply=reply
            ),
            info=info,
        ):
            return
        existing = self._core.live(workflow_id)
        if existing is not None and not existing.state.closing:
            raise WorkflowAlreadyStartedError(workflow_id, existing.run_id)
        if info is not None and info.is_running:
            raise WorkflowAlreadyStartedError(workflow_id, info.run_id)
        # A run record's head_seq is the workflow's head; a workflow without one has no history.
        head = existing.state.head if existing is not None else (info.head_seq if info is not None else 0)
        run_id = run_id or new_run_id()
        timeout = options.execution_timeout
        started = ev.WorkflowStarted(
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            input=args,
            run_id=run_id,
            first_run_id=run_id,
            search_attributes=dict(options.search_attributes),
            execution_timeout=timeout,
            execution_deadline=None if timeout is None else self._clock.now() + timedelta(seconds=timeout),
            run_timeout=options.run_timeout,
            parent_workflow_id=parent[0] if parent else None,
            parent_workflow_run_id=parent[1] if parent else None,
            trace_context=self._observer.start_context(parent, options.trace_context),
            memo=options.memo,
            workflow_version=_recorded_version(definition),
            request_id=options.request_id,
        )
        run = Run(RunState(workflow_id, run_id, workflow_type, head=head, started=started))
        self._core.drive(run)
        events: list[ev.Event] = [started]
        if signal is not None:
            events.append(ev.SignalReceived(workflow_id=workflow_id, name=signal[0], payload=signal[1]))

        def begin(stamped: list[ev.Event]) -> None:
            first = stamped[0]
            assert isinstance(first, ev.WorkflowStarted)
            run.state.started = first
            self.begin(run, resumed=False)

        self._core.append(run, events, then=begin, reply=reply, companion=companion)

    def begin(self, run: Run, *, resumed: bool, process: bool = True) -> None:
        """A run's ``WorkflowStarted`` is durable: arm its timeouts and give it a process (now, or when a slot
        frees). ``resumed``: the run had started before (engine recovery, continue-as-new), so it goes ahead of
        new runs. ``process=False``: a paused or blocked run, which waits without one."""
        for kind, at in run.state.deadlines():
            self._timers.arm(at, TimerKey(kind, run.workflow_id, run.run_id))
        if process:
            self._links.want(run, started=resumed)

    def continue_as_new(self, run: Run, command: ContinueAsNew) -> None:
        """Close the run with ``WorkflowContinuedAsNew`` and open the next one, in one transaction."""
        workflow_type = command.workflow_type or run.workflow_type
        try:
            # The next run moves to the type's highest version (or the one the code asked for).
            definition = self._registry.workflow_version(workflow_type, command.version)
            check_payload(command.args, path="continue_as_new input")
        except AionError as error:
            self.fail(run, ev.Failure(type(error).__name__, str(error)))
            return
        run.state.closing = True
        run.continuing = True
        previous = self._started_of(run)
        next_run_id = new_run_id()
        closing = ev.WorkflowContinuedAsNew(
            workflow_id=run.workflow_id, input=command.args, new_run_id=next_run_id, workflow_type=workflow_type
        )
        started = ev.WorkflowStarted(
            workflow_id=run.workflow_id,
            workflow_type=workflow_type,
            input=command.args,
            run_id=next_run_id,
            parent_run_id=run.run_id,
            first_run_id=previous.first_run_id or previous.run_id,
            search_attributes=run.state.search_attributes(previous.search_attributes),
            execution_timeout=previous.execution_timeout,
            execution_deadline=previous.execution_deadline,
            run_timeout=previous.run_timeout,
            parent_workflow_id=previous.parent_workflow_id,
            parent_workflow_run_id=previous.parent_workflow_run_id,
            trace_context=previous.trace_context,
            memo=previous.memo,
            workflow_version=_recorded_version(definition),
            request_id=previous.request_id,
        )

        def open_next(stamped: list[ev.Event]) -> None:
            opened = stamped[-1]
            assert isinstance(opened, ev.WorkflowStarted)
            successor = Run(RunState(run.workflow_id, next_run_id, workflow_type, head=opened.seq, started=opened))
            self._core.drive(successor)
            self.begin(successor, resumed=True)
            for action in self._after_continue.pop(run.workflow_id, []):
                action(successor)

        self._core.append(run, [closing, started], then=open_next)

    def _started_of(self, run: Run) -> ev.WorkflowStarted:
        """The run's ``WorkflowStarted``: kept in its state, or (once shed) read from the store, where it is
        durable."""
        started = run.state.started
        if started is None:
            info = self._store.get_run(run.workflow_id)
            started = read_started(self._store, info) if info is not None and info.run_id == run.run_id else None
            if started is None:
                raise InternalError(f"the WorkflowStarted of run {run.run_id!r} of {run.workflow_id!r} is not stored")
        return started

    # -- requests from outside ------------------------------------------------------------------------------

    def signal(self, workflow_id: str, name: str, payload: Any, reply: pykka.Future[Any]) -> None:
        """Record ``SignalReceived`` for the workflow's open run; ``reply`` resolves once it is durable."""

        def deliver(run: Run) -> None:
            signal = ev.SignalReceived(workflow_id=workflow_id, name=name, payload=payload)
            self._core.append(run, [signal], reply=reply)

        if not self.with_open_run(workflow_id, deliver):
            info = self._store.get_run(workflow_id)
            status = info.status.value if info is not None else "closed"
            raise WorkflowNotRunningError(f"workflow {workflow_id!r} is {status}: it takes no signals")

    def signal_with_start(
        self,
        *,
        workflow_type: str,
        workflow_id: str,
        args: list[Any],
        options: StartOptions,
        signal: tuple[str, Any],
        reply: pykka.Future[Any],
    ) -> None:
        """Record the signal for the open run, or start a run with it in the same transaction."""
        run = self._core.live(workflow_id)
        if run is not None and not run.state.closing:
            name, payload = signal
            received = ev.SignalReceived(workflow_id=workflow_id, name=name, payload=payload)
            self._core.append(run, [received], reply=reply)
        else:
            self.start(workflow_type, workflow_id, args, options, signal=signal, reply=reply)

    def cancel(self, workflow_id: str, reason: str | None, reply: pykka.Future[Any]) -> None:
        """Request cancellation; ``reply`` gives True once it is recorded, False if the run was closed."""

        def request(run: Run) -> None:
            if not self.request_cancel(run, reason, reply):
                reply.set(True)

        if not self.with_open_run(workflow_id, request):
            reply.set(False)

    def terminate(self, workflow_id: str, reason: str | None, reply: pykka.Future[Any]) -> None:
        """Terminate now; ``reply`` gives True once ``WorkflowTerminated`` is recorded, False if it was closed."""

        def end(run: Run) -> None:
            if not self.terminate_run(run, reason, reply):
                reply.set(False)

        if not self.with_open_run(workflow_id, end):
            reply.set(False)

    def with_open_run(self, workflow_id: str, action: RunAction) -> bool:
        """Apply ``action`` to the workflow's open run: now, or, while a run is continuing as new, to its
        successor as soon as that opens (a signal or a terminate aimed at the workflow must not fall between
        two runs). False if the workflow has no open run; ``WorkflowNotFoundError`` if it never existed."""
        run = self._core.live(workflow_id)
        if run is not None and not run.state.closing:
            action(run)
            return True
        if run is not None and run.continuing:
            self._after_continue.setdefault(workflow_id, []).append(action)
            return True
        if self._store.get_run(workflow_id) is None:
            raise WorkflowNotFoundError(workflow_id)
        return False

    # -- closing --------------------------------------------------------------------------------------------

    def request_cancel(self, run: Run, reason: str | None, reply: pykka.Future[Any] | None = None) -> bool:
        """Record ``WorkflowCancelRequested`` (delivered to the code as ``aion.CancelledError``); False if it
        was requested already."""
        if run.state.cancel_requested or run.state.closing:
            return False
        run.state.cancel_requested = True

        def answer(_: list[ev.Event]) -> None:
            if reply is not None:
                reply.set(True)

        self._core.append(run, [ev.WorkflowCancelRequested(workflow_id=run.workflow_id, reason=reason)], then=answer)
        return True

    def terminate_run(self, run: Run, reason: str | None, reply: pykka.Future[Any] | None = None) -> bool:
        """Close the run with ``WorkflowTerminated``; False if it is already closing."""
        return self._end(run, ev.WorkflowTerminated(workflow_id=run.workflow_id, reason=reason), reply)

    def deadline_due(self, run: Run, key: TimerKey) -> None:
        """A run timeout passed (close the run with ``WorkflowTimedOut``) or a durable timer is due (record
        ``TimerFired``)."""
        if key.kind is TimerKind.TIMER:
            fire_at = run.state.timers.pop(key.item, None)
            if fire_at is not None:
                due = due_at(fire_at, self._clock)
                self._core.append(
                    run, [ev.TimerFired(workflow_id=run.workflow_id, timer_id=key.item, due_at=due)], deferrable=True
                )
        else:
            self._end(run, ev.WorkflowTimedOut(workflow_id=run.workflow_id, kind=RUN_DEADLINES[key.kind]), None)

    def fail(self, run: Run, failure: ev.Failure) -> None:
        """Close the run with ``WorkflowFailed`` (its code failed, diverged, or its process kept crashing)."""
        if run.state.closing:
            return
        run.state.closing = True
        self._core.append(run, [ev.WorkflowFailed(workflow_id=run.workflow_id, failure=failure)])

    def _end(self, run: Run, terminal: ev.Event, reply: pykka.Future[Any] | None, then: Then | None = None) -> bool:
        """Close a run from outside its code: record ``terminal``, kill its process and stop its work. False if
        the run is already closing."""
        if run.state.closing:
            return False
        run.state.closing = True
        self._core.append(run, [terminal], reply=reply, then=then)
        self._links.terminate(run)
        self._activities.forget(run)
        return True

    def _terminate_then(self, workflow_id: str, reason: str, then: Callable[[], None]) -> bool:
        """Terminate the workflow's running run and call ``then`` once that is durable (a start's
        ``TERMINATE_EXISTING``); False if it has no run that is not closing."""
        run = self._core.live(workflow_id)
        if run is None:
            return False
        terminated = ev.WorkflowTerminated(workflow_id=workflow_id, reason=reason)
        return self._end(run, terminated, None, lambda _: then())

    def release(self, run: Run) -> None:
        """The run's terminal event is durable: drop its deadlines, work, slot and queries."""
        self.disarm_timers(run)
        for kind in RUN_DEADLINES:
            self._timers.disarm(TimerKey(kind, run.workflow_id, run.run_id))
        self._activities.forget(run)
        self._links.release(run)
        self._links.fail_queries(run, "the run closed before answering")
        self._core.drop(run)

    # -- durable timers -------------------------------------------------------------------------------------

    def arm_timers(self, run: Run) -> None:
        """Arm the run's pending durable timers (rebuilt from its history)."""
        for timer_id, fire_at in (run.state.timer_fires or {}).items():
            key = TimerKey(TimerKind.TIMER, run.workflow_id, run.run_id, timer_id)
            self._timers.arm(record_at(fire_at, self._clock), key)

    def disarm_timers(self, run: Run) -> None:
        """Disarm the run's pending durable timers (they stay in its history)."""
        for timer_id in run.state.timers:
            self._timers.disarm(TimerKey(TimerKind.TIMER, run.workflow_id, run.run_id, timer_id))


def _recorded_version(definition: WorkflowDefinition) -> str | None:
    """What ``WorkflowStarted.workflow_version`` records for a run of ``definition`` (None when unversioned)."""
    return None if definition.version is None else str(definition.version)
