"""The replay runtime: runs one workflow run's code against its history, then live.

How a run advances (the same way live and on replay, which is what makes replay exact):

1. ``WorkflowStarted`` creates the main task; the loop runs until every task waits.
2. Each *arrival* (an activity result, a timer firing, a signal, a child's result, a cancellation request, ...)
   is applied alone, in history order, and the loop again runs until idle. The engine delivers arrivals to a live
   process in the order it recorded them, one at a time, so a replay passes through exactly the states the live
   run passed through, and races (an operation against its timeout) have the same winner every time.
3. Whatever the code asks for is a :mod:`command <aion.workflow._commands>`. A command whose correlation key has
   an anchor in history was done already: it is checked (kind, type) and not issued again. A command with no
   anchor is new and goes to the engine, but only once the whole history has replayed without divergence, so a
   diverged run never touches the world.
4. After the last arrival every recorded anchor must have been matched; one that was not means the code no longer
   does what it did (``NonDeterminismError``).

This module owns :class:`WorkflowRuntime`: the run's state and the order in which arrivals reach the code. It
never talks to the engine or the store (commands go out as return values) and never reads the real clock: the
code's time is the recorded time of the event it is at. It also holds which runtime is running now. What the code
sees of its run is in ``_context``; what it waits on (pending work by ordinal, buffered signals, conditions) in
``_pending``; the matching of commands against history in ``_ledger``; errors and failures are converted in
``_failures``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from aion import events as ev
from aion._codec import check_payload
from aion._gc import collector_paused
from aion.errors import CancelledError, ContinueAsNewError, PayloadError, QueryError
from aion.workflow._commands import (
    ARRIVALS,
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteWorkflow,
    ContinueAsNew,
    EventTypeTable,
    FailWorkflow,
    RequestCancelActivity,
    RequestCancelChild,
    SignalExternal,
    StartChild,
    StartTimer,
    UpsertSearchAttributes,
    is_arrival,
)
from aion.workflow._context import ContinueAsNewSignal, Diverged, WorkflowFunction, WorkflowInfo
from aion.workflow._failures import activity_error, child_error, failure_from_exception, signal_error
from aion.workflow._ledger import CommandLedger
from aion.workflow._loop import DeterministicLoop
from aion.workflow._patches import Patches
from aion.workflow._pending import PendingWork
from aion.workflow._updates import VALIDATE_UPDATE, UpdateHandler, run_update, validate

__all__ = [
    "ContinueAsNewSignal",
    "WorkflowFunction",
    "WorkflowInfo",
    "WorkflowRuntime",
    "current_runtime",
    "failure_from_exception",
    "in_workflow_code",
]

#: The runtime whose code is running on this thread's deterministic loop (``None`` outside workflow code).
_current: WorkflowRuntime | None = None


def current_runtime() -> WorkflowRuntime:
    """The runtime whose code is running now; raises outside workflow code."""
    if _current is None:
        raise RuntimeError("this function can only be called from workflow code, while the workflow runs")
    return _current


def in_workflow_code() -> bool:
    """True while a runtime runs workflow code (the guard of non-deterministic calls asks)."""
    return _current is not None


class WorkflowRuntime:
    """Runs one workflow run: its coroutine on a deterministic loop, fed with history events.

    >>> # runtime = WorkflowRuntime(my_workflow, started_event)
    >>> # new_commands = runtime.replay(history)       # the run's recorded events, WorkflowStarted first
    >>> # more_commands = runtime.apply(next_arrival)  # live, one recorded arrival at a time
    """

    def __init__(self, function: WorkflowFunction, started: ev.WorkflowStarted) -> None:
        self.info = WorkflowInfo(
            workflow_id=started.workflow_id,
            run_id=started.run_id,
            workflow_type=started.workflow_type,
            attempt=started.attempt,
        )
        self._function = function
        self._started = started
        self._now: datetime = started.recorded_at
        #: The latest ``due_at`` of a timer recorded ahead of its time: the clock never reads earlier after it.
        self._due_floor: datetime | None = None
        self._loop = DeterministicLoop(self._clock)  # type: ignore[abstract]
        self._random: random.Random | None = None
        self._ordinals: dict[str, int] = collections.defaultdict(int)
        self._work = PendingWork(self._loop.create_future, self._cancelled)
        self.query_handlers: dict[str, Callable[..., Any]] = {}
        self.update_handlers: dict[str, UpdateHandler] = {}
        #: The reason given when cancellation was requested (``None`` until it is).
        self.cancel_reason: str | None = None
        self.cancel_requested = False
        self._replaying = False
        #: The seq of the event being applied, and the last seq of the replayed history (``patched``).
        self._position = started.seq
        self._history_head = started.seq
        self._commands = CommandLedger(started.workflow_id, self._loop.close)
        self._patches = Patches(self._commands)
        self._main: asyncio.Task[Any] | None = None
        self.closed = False
        #: Set by the host: raises ``UnknownActivityTypeError`` for an activity type the engine does not know.
        self.check_activity: Callable[[str], object] | None = None
        #: Refuses a task queue the engine does not declare (``InvalidArgumentError``); set by the host.
        self.check_task_queue: Callable[[str], object] | None = None
        #: Set by the host: raises ``UnknownWorkflowTypeError`` for a child type the engine does not know.
        self.check_workflow: Callable[[str], object] | None = None

    # -- driving ------------------------------------------------------------------------------------------------

    def _clock(self) -> float:
        return self._now.timestamp()

    @property
    def now(self) -> datetime:
        """The recorded time of the event at the current replay position."""
        return self._now

    @property
    def replaying(self) -> bool:
        """True while history is being replayed (commands are matched, not issued)."""
        return self._replaying

    @property
    def random(self) -> random.Random:
        """The run's deterministic random generator, seeded by its run id on first use (most runs use none)."""
        if self._random is None:
            self._random = random.Random(uuid.UUID(self._started.run_id).int)
        return self._random

    def replay(self, history: Sequence[ev.Event]) -> list[Command]:
        """Re-execute the code through ``history`` (this run's events, ``WorkflowStarted`` first).

        Returns the commands the code issued that history does not hold: the ones to send to the engine now.
        Raises :class:`NonDeterminismError` when code and history disagree; nothing is issued then.
        """
        if not history or (history[0] is not self._started and history[0] != self._started):
            raise ValueError("history must start with this run's WorkflowStarted event")
        with collector_paused():
            self._commands.record_anchors(history)
            self._history_head = history[-1].seq
            self._replaying = True
            try:
                with self._loop.running():
                    self._start()
                    arrivals = ARRIVALS
                    for event in itertools.islice(history, 1, None):
                        arrival = arrivals[type(event)]  # is_arrival, inlined: this runs for every event
                        if arrival or (arrival is None and is_arrival(event)):
                            self._deliver(event)
                self._commands.check_all_matched()
                self._commands.raise_divergence()
            finally:
                self._replaying = False
        return self._commands.take_outbox()

    def apply(self, event: ev.Event) -> list[Command]:
        """Apply one live arrival (already recorded) and return the commands the code issued in response."""
        if is_arrival(event):
            self._deliver(event)
        self._commands.raise_divergence()
        return self._commands.take_outbox()

    def query(self, name: str, args: Sequence[Any]) -> Any:
        """Answer query ``name`` from the code's current state; nothing is recorded."""
        if name == VALIDATE_UPDATE:
            return validate(self.update_handlers, self.info.workflow_id, args)
        handler = self.query_handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.query_handlers)) or "none"
            raise QueryError(f"workflow {self.info.workflow_id!r} has no query {name!r} (known: {known})")
        try:
            return handler(*args)
        except Exception as error:
            raise QueryError(f"query {name!r} raised {type(error).__name__}: {error}") from error

    def waits(self) -> list[str]:
        """What the code waits on that history does not say: each signal name a ``wait_signal`` is blocked on
        (``"signal 'approve'"``, timed or not) and the pending ``wait_condition`` calls (``"the condition"``,
        ``"2 conditions"``). Activities, timers and children are in history; the host reports this list with
        each ``commands`` frame, so that ``describe`` can name every wait."""
        return self._work.waits()

    # -- what the SDK calls ------------------------------------------------------------------------------------

    def schedule_activity(
        self, activity_type: str, args: list[Any], options: dict[str, Any]
    ) -> tuple[int, asyncio.Future[Any]]:
        """Issue ``ScheduleActivity``; returns the activity ordinal and the future its outcome resolves."""
        queue = options.get("task_queue")
        if self.check_activity is not None:
            definition = self.check_activity(activity_type)
            queue = queue if queue is not None else getattr(definition, "task_queue", "default")
        activity_id = self._next("activity")
        if queue is not None and queue != "default":
            # A call history holds was accepted when it was made; the engine fails its activity if it has since
            # stopped declaring the queue, and the code does not diverge.
            if self.check_task_queue is not None and not self._commands.recorded(("activity", activity_id)):
                self.check_task_queue(queue)
            options = {**options, "task_queue": queue}
        elif "task_queue" in options:
            options = {key: value for key, value in options.items() if key != "task_queue"}
        future = self._work.pending(self._work.activities, activity_id, lambda: self.cancel_activity(activity_id))
        self._commands.issue_activity(activity_id, activity_type, args, options)
        return activity_id, future

    def cancel_activity(self, activity_id: int) -> None:
        """Ask for activity ``activity_id`` to be cancelled, unless its outcome is known (once per activity)."""
        if activity_id in self._work.activities:
            self._commands.issue_once(RequestCancelActivity(activity_id))

    def start_timer(self, seconds: float, waiting_for: str | None = None) -> tuple[int, asyncio.Future[None]]:
        """Issue ``StartTimer``; returns the timer ordinal and the future its firing resolves. ``waiting_for``
        names the wait the timer is the timeout of (recorded, for ``describe``)."""
        timer_id = self._next("timer")
        future = self._work.pending(self._work.timers, timer_id, lambda: self.cancel_timer(timer_id))
        self._commands.issue(StartTimer(timer_id, seconds, waiting_for))
        return timer_id, future

    def cancel_timer(self, timer_id: int) -> None:
        """Cancel a timer that has not fired; its firing, if it races in, is then ignored."""
        future = self._work.timers.pop(timer_id, None)
        if future is None:
            return
        if not future.done():
            # The same error as a cancelled activity or child: one ``except aion.CancelledError`` for all.
            future.set_exception(CancelledError(f"timer {timer_id} was cancelled"))
            future.exception()  # nobody may await it (a lost race): that is not an unretrieved error
        self._commands.issue_once(CancelTimer(timer_id))

    def start_child(
        self, workflow_type: str, workflow_id: str | None, args: list[Any], policy: str, options: dict[str, Any]
    ) -> tuple[int, str, asyncio.Future[Any]]:
        """Issue ``StartChild``; returns the child ordinal, its workflow id and the future of its result."""
        if self.check_workflow is not None:
            self.check_workflow(workflow_type)
        child_id = self._next("child")
        child_workflow_id = workflow_id or f"{self.info.workflow_id}/{self.info.run_id[:8]}/child-{child_id}"
        future = self._work.pending(self._work.children, child_id, lambda: self.cancel_child(child_id))
        self._commands.issue(StartChild(child_id, child_workflow_id, workflow_type, args, policy, options))
        return child_id, child_workflow_id, future

    def cancel_child(self, child_id: int) -> None:
        """Ask child ``child_id`` to cancel (cooperatively), unless it has closed."""
        if child_id in self._work.children:
            self._commands.issue_once(RequestCancelChild(child_id))

    def signal_external(self, workflow_id: str, name: str, payload: Any) -> asyncio.Future[None]:
        """Issue ``SignalExternal``; the future resolves once the signal is delivered (or raises why not)."""
        signal_id = self._next("signal_external")
        future: asyncio.Future[None] = self._loop.create_future()
        self._work.external_signals[signal_id] = future
        self._work.external_targets[signal_id] = workflow_id
        self._commands.issue(SignalExternal(signal_id, workflow_id, name, payload))
        return future

    def upsert_search_attributes(self, attributes: dict[str, Any]) -> None:
        """Issue ``UpsertSearchAttributes`` (recorded as ``SearchAttributesUpserted``; ``None`` removes)."""
        self._commands.issue(UpsertSearchAttributes(self._next("upsert"), dict(attributes)))

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """A future for the next signal ``name`` (resolved at once from the buffer if one is waiting)."""
        return self._work.signal_future(name)

    def condition_future(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        """A future resolved once ``predicate()`` is true (it is re-checked after every delivered event)."""
        return self._work.condition_future(predicate)

    def continue_as_new(
        self, args: list[Any], workflow_type: str | None, version: int | None = None
    ) -> ContinueAsNewSignal:
        """Check that nothing is pending and return the signal that unwinds the workflow into continue-as-new."""
        pending = self._work.unfinished_work()
        if pending:
            raise ContinueAsNewError(
                f"workflow {self.info.workflow_id!r} cannot continue as new while work is pending: "
                f"{', '.join(pending)}; await or cancel it first"
            )
        return ContinueAsNewSignal(args, workflow_type, version)

    # -- internals -------------------------------------------------------------------------------------------

    def patched(self, patch_id: str) -> bool:
        """Whether the run takes the code guarded by patch ``patch_id`` (see ``workflow.patched``): True with
        the patch's marker in history or live (the marker is recorded then); False while replaying a point that
        the run passed without the marker."""
        return self._patches.patched(patch_id, passed=self._replaying and self._position < self._history_head)

    def deprecate_patch(self, patch_id: str) -> None:
        """The patch's new code is the only code now (see ``workflow.deprecate_patch``)."""
        self._patches.deprecate(patch_id)

    def _next(self, kind: str) -> int:
        self._ordinals[kind] += 1
        return self._ordinals[kind]

    def _cancelled(self, on_cancel: Callable[[], None]) -> None:
        """A pending future was cancelled by ``asyncio`` (a timeout won): ``on_cancel``, in the workflow."""
        if self._commands.divergence is None and not self.closed:
            self._in_workflow(on_cancel)

    def _in_workflow(self, action: Callable[[], None]) -> None:
        global _current
        previous, _current = _current, self
        try:
            action()
        except Diverged:
            pass
        finally:
            _current = previous

    def _start(self) -> None:
        args = self._started.input if isinstance(self._started.input, list) else [self._started.input]
        coroutine = self._function(*args)
        self._main = self._loop.create_task(coroutine, name=f"workflow:{self.info.workflow_id}")
        self._run()

    def _run(self) -> None:
        global _current
        previous, _current = _current, self
        try:
            while True:
                self._loop.run_until_idle()
                if not self._work.check_conditions():
                    break
        finally:
            _current = previous
        self._check_main()

    def _check_main(self) -> None:
        main = self._main
        if main is None or not main.done() or self.closed or self._commands.divergence is not None:
            return
        self.closed = True
        if main.cancelled():
            error: BaseException | None = CancelledError("the workflow's main task was cancelled")
        else:
            error = main.exception()
        if error is None:
            result = main.result()
            try:  # an unserialisable result fails the run here, the same way on every replay
                check_payload(result, path="workflow result")
            except PayloadError as bad:
                self._commands.issue(FailWorkflow(failure_from_exception(bad)))
                return
            self._commands.issue(CompleteWorkflow(result))
        elif isinstance(error, ContinueAsNewSignal):
            self._commands.issue(ContinueAsNew(error.arguments, error.workflow_type, error.version))
        elif isinstance(error, CancelledError | asyncio.CancelledError) and self.cancel_requested:
            self._commands.issue(CancelWorkflow(self.cancel_reason))
        elif not isinstance(error, Exception | asyncio.CancelledError):
            # The process itself is ending (terminated while the code ran, at an engine's shutdown say): no fault
            # of the workflow's, nothing to record; the run replays in its next process.
            raise error
        else:
            self._commands.issue(FailWorkflow(failure_from_exception(error)))

    def _deliver(self, event: ev.Event) -> None:
        if self._commands.divergence is not None:
            return
        floor = self._due_floor
        self._now = event.recorded_at if floor is None or event.recorded_at > floor else floor
        self._position = event.seq
        apply = self._ARRIVAL_HANDLERS[type(event)]
        if apply is not None:
            apply(self, event)
        self._run()

    # What each arrival does, one method per event type (``_ARRIVAL_HANDLERS`` maps the types).

    def _on_activity_completed(self, event: ev.ActivityCompleted) -> None:
        self._work.settle(self._work.activities, event.activity_id, event.result)

    def _on_activity_failed(self, event: ev.ActivityFailed) -> None:
        error = activity_error(event.failure, event.activity_id, event.attempt)
        self._work.resolve(self._work.activities, event.activity_id, error=error)

    def _on_activity_cancelled(self, event: ev.ActivityCancelled) -> None:
        error = CancelledError(f"activity {event.activity_id} was cancelled")
        self._work.resolve(self._work.activities, event.activity_id, error=error)

    def _on_timer_fired(self, event: ev.TimerFired) -> None:
        due = event.due_at
        if due is not None and due > self._now:  # recorded ahead of its time: the workflow resumes at due_at
            self._now = self._due_floor = due
        self._work.resolve(self._work.timers, event.timer_id, result=None)

    def _on_signal_received(self, event: ev.SignalReceived) -> None:
        self._work.deliver_signal(event.name, event.payload)

    def _on_child_completed(self, event: ev.ChildWorkflowCompleted) -> None:
        self._work.resolve(self._work.children, event.child_id, result=event.result)

    def _on_child_failed(self, event: ev.ChildWorkflowFailed) -> None:
        self._work.resolve(self._work.children, event.child_id, error=child_error(event.failure, event.child_id))

    def _on_child_cancelled(self, event: ev.ChildWorkflowCancelled) -> None:
        error = CancelledError(f"child {event.child_id} was cancelled")
        self._work.resolve(self._work.children, event.child_id, error=error)

    def _on_signal_delivered(self, event: ev.SignalExternalDelivered) -> None:
        work = self._work
        failure = event.failure
        error = None if failure is None else signal_error(work.external_targets.get(event.signal_id, "?"), failure)
        work.resolve(work.external_signals, event.signal_id, result=None, error=error)

    def _on_cancel_requested(self, event: ev.WorkflowCancelRequested) -> None:
        self._cancel_everything(event.reason)

    def _on_update_accepted(self, event: ev.UpdateAccepted) -> None:
        update_id = event.update_id
        update = run_update(self.update_handlers, self._commands.issue, update_id, event.name, list(event.args or []))
        self._loop.create_task(update, name=f"update:{update_id}")

    #: The method that applies each type of arrival (one dict lookup per event).
    _ARRIVAL_HANDLERS: ClassVar[dict[type, Callable[[WorkflowRuntime, Any], None] | None]] = EventTypeTable(
        {
            ev.ActivityCompleted: _on_activity_completed,
            ev.ActivityFailed: _on_activity_failed,
            ev.ActivityCancelled: _on_activity_cancelled,
            ev.TimerFired: _on_timer_fired,
            ev.SignalReceived: _on_signal_received,
            ev.ChildWorkflowCompleted: _on_child_completed,
            ev.ChildWorkflowFailed: _on_child_failed,
            ev.ChildWorkflowCancelled: _on_child_cancelled,
            ev.SignalExternalDelivered: _on_signal_delivered,
            ev.WorkflowCancelRequested: _on_cancel_requested,
            ev.UpdateAccepted: _on_update_accepted,
        },
        None,
    )

    def _cancel_everything(self, reason: str | None) -> None:
        """Cancellation was requested: every pending wait raises ``aion.CancelledError`` now, and the work
        behind it (activities, timers, children) is asked to stop."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.cancel_reason = reason
        error = CancelledError(f"workflow {self.info.workflow_id!r} was cancelled: {reason or 'no reason given'}")

        def fail(future: asyncio.Future[Any]) -> None:
            if not future.done():
                future.set_exception(error)

        def cancel_all() -> None:
            for activity_id, future in list(self._work.activities.items()):
                fail(future)
                self.cancel_activity(activity_id)
            for timer_id, timer in list(self._work.timers.items()):
                fail(timer)
                self.cancel_timer(timer_id)
            for child_id, child in list(self._work.children.items()):
                fail(child)
                self.cancel_child(child_id)
            self._work.fail_waits(fail)

        self._in_workflow(cancel_all)
