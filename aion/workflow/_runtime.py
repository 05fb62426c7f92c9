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
"""

from __future__ import annotations

import asyncio
import collections
import random
import traceback
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aion import events as ev
from aion.errors import (
    ActivityError,
    CancelledError,
    ChildWorkflowError,
    ContinueAsNewError,
    FailureError,
    NonDeterminismError,
    QueryError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.workflow._commands import (
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    Key,
    RequestCancelActivity,
    RequestCancelChild,
    ScheduleActivity,
    SignalExternal,
    StartChild,
    StartTimer,
    anchor_key,
    describe_event,
    is_arrival,
)
from aion.workflow._loop import DeterministicLoop

WorkflowFunction = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class WorkflowInfo:
    """What a workflow knows about its own run (``workflow.info()``)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int


class _Diverged(BaseException):
    """Stops workflow code at the command where it diverged (a BaseException so ``except Exception`` won't
    swallow it; the runtime fails the run whatever the code does with it)."""


class ContinueAsNewSignal(BaseException):
    """Raised by ``workflow.continue_as_new`` to unwind the workflow; the runtime turns it into the command."""

    def __init__(self, args: list[Any], workflow_type: str | None) -> None:
        super().__init__("continue-as-new")
        self.arguments = args
        self.workflow_type = workflow_type


_current: WorkflowRuntime | None = None


def current_runtime() -> WorkflowRuntime:
    """The runtime whose code is running now; raises outside workflow code."""
    if _current is None:
        raise RuntimeError("this function can only be called from workflow code, while the workflow runs")
    return _current


def failure_from_exception(error: BaseException) -> ev.Failure:
    """A recordable description of ``error``: its type, message and formatted traceback."""
    if isinstance(error, FailureError):
        return ev.Failure(
            type=error.type,
            message=error.message,
            traceback=error.traceback or "".join(traceback.format_exception(error)),
            details=error.details,
            non_retryable=bool(getattr(error, "non_retryable", False)),
        )
    return ev.Failure(
        type=type(error).__name__,
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
    )


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
        self._loop = DeterministicLoop(self._clock)  # type: ignore[abstract]
        self.random = random.Random(uuid.UUID(started.run_id).int)
        self._ordinals: dict[str, int] = collections.defaultdict(int)
        #: Pending work by ordinal; an entry stays until its outcome event arrives.
        self._activities: dict[int, asyncio.Future[Any]] = {}
        self._timers: dict[int, asyncio.Future[None]] = {}
        self._children: dict[int, asyncio.Future[Any]] = {}
        self._external_signals: dict[int, asyncio.Future[None]] = {}
        self._external_targets: dict[int, str] = {}
        self._cancels_issued: set[Key] = set()
        self._signals: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self._signal_waiters: dict[str, collections.deque[asyncio.Future[Any]]] = collections.defaultdict(
            collections.deque
        )
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.query_handlers: dict[str, Callable[..., Any]] = {}
        #: The reason given when cancellation was requested (``None`` until it is).
        self.cancel_reason: str | None = None
        self.cancel_requested = False
        self._anchors: dict[Key, ev.Event] = {}
        self._matched: set[Key] = set()
        self._replaying = False
        self._outbox: list[Command] = []
        self._divergence: NonDeterminismError | None = None
        self._main: asyncio.Task[Any] | None = None
        self.closed = False
        #: Set by the host: raises ``UnknownActivityTypeError`` for an activity type the engine does not know.
        self.check_activity: Callable[[str], object] | None = None
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

    def replay(self, history: Sequence[ev.Event]) -> list[Command]:
        """Re-execute the code through ``history`` (this run's events, ``WorkflowStarted`` first).

        Returns the commands the code issued that history does not hold: the ones to send to the engine now.
        Raises :class:`NonDeterminismError` when code and history disagree; nothing is issued then.
        """
        if not history or history[0] != self._started:
            raise ValueError("history must start with this run's WorkflowStarted event")
        for event in history:
            key = anchor_key(event)
            if key is not None:
                self._anchors[key] = event
        self._replaying = True
        try:
            self._start()
            for event in history[1:]:
                if is_arrival(event):
                    self._deliver(event)
            unmatched = [event for key, event in self._anchors.items() if key not in self._matched]
            if unmatched:
                first = min(unmatched, key=lambda event: event.seq)
                self._diverge(first.seq, describe_event(first), "nothing (the code no longer does it)")
            self._raise_divergence()
        finally:
            self._replaying = False
        return self._take_outbox()

    def apply(self, event: ev.Event) -> list[Command]:
        """Apply one live arrival (already recorded) and return the commands the code issued in response."""
        if is_arrival(event):
            self._deliver(event)
        self._raise_divergence()
        return self._take_outbox()

    def query(self, name: str, args: Sequence[Any]) -> Any:
        """Answer query ``name`` from the code's current state; nothing is recorded."""
        handler = self.query_handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.query_handlers)) or "none"
            raise QueryError(f"workflow {self.info.workflow_id!r} has no query {name!r} (known: {known})")
        try:
            return handler(*args)
        except Exception as error:
            raise QueryError(f"query {name!r} raised {type(error).__name__}: {error}") from error

    # -- what the SDK calls ------------------------------------------------------------------------------------

    def schedule_activity(
        self, activity_type: str, args: list[Any], options: dict[str, Any]
    ) -> tuple[int, asyncio.Future[Any]]:
        """Issue ``ScheduleActivity``; returns the activity ordinal and the future its outcome resolves."""
        if self.check_activity is not None:
            self.check_activity(activity_type)
        activity_id = self._next("activity")
        future = self._pending(self._activities, activity_id, lambda: self.cancel_activity(activity_id))
        self._issue(ScheduleActivity(activity_id, activity_type, args, options))
        return activity_id, future

    def cancel_activity(self, activity_id: int) -> None:
        """Ask for activity ``activity_id`` to be cancelled, unless its outcome is known (once per activity)."""
        if activity_id in self._activities:
            self._issue_once(RequestCancelActivity(activity_id))

    def start_timer(self, seconds: float) -> tuple[int, asyncio.Future[None]]:
        """Issue ``StartTimer``; returns the timer ordinal and the future its firing resolves."""
        timer_id = self._next("timer")
        future = self._pending(self._timers, timer_id, lambda: self.cancel_timer(timer_id))
        self._issue(StartTimer(timer_id, seconds))
        return timer_id, future

    def cancel_timer(self, timer_id: int) -> None:
        """Cancel a timer that has not fired; its firing, if it races in, is then ignored."""
        future = self._timers.pop(timer_id, None)
        if future is None:
            return
        if not future.done():
            future.cancel()
        self._issue_once(CancelTimer(timer_id))

    def start_child(
        self, workflow_type: str, workflow_id: str | None, args: list[Any], policy: str, options: dict[str, Any]
    ) -> tuple[int, str, asyncio.Future[Any]]:
        """Issue ``StartChild``; returns the child ordinal, its workflow id and the future of its result."""
        if self.check_workflow is not None:
            self.check_workflow(workflow_type)
        child_id = self._next("child")
        child_workflow_id = workflow_id or f"{self.info.workflow_id}/{self.info.run_id[:8]}/child-{child_id}"
        future = self._pending(self._children, child_id, lambda: self.cancel_child(child_id))
        self._issue(StartChild(child_id, child_workflow_id, workflow_type, args, policy, options))
        return child_id, child_workflow_id, future

    def cancel_child(self, child_id: int) -> None:
        """Ask child ``child_id`` to cancel (cooperatively), unless it has closed."""
        if child_id in self._children:
            self._issue_once(RequestCancelChild(child_id))

    def signal_external(self, workflow_id: str, name: str, payload: Any) -> asyncio.Future[None]:
        """Issue ``SignalExternal``; the future resolves once the signal is delivered (or raises why not)."""
        signal_id = self._next("signal_external")
        future: asyncio.Future[None] = self._loop.create_future()
        self._external_signals[signal_id] = future
        self._external_targets[signal_id] = workflow_id
        self._issue(SignalExternal(signal_id, workflow_id, name, payload))
        return future

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """A future for the next signal ``name`` (resolved at once from the buffer if one is waiting)."""
        future = self._loop.create_future()
        buffered = self._signals[name]
        if buffered:
            future.set_result(buffered.popleft())
        else:
            self._signal_waiters[name].append(future)
        return future

    def condition_future(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        """A future resolved once ``predicate()`` is true (it is re-checked after every delivered event)."""
        future: asyncio.Future[None] = self._loop.create_future()
        if predicate():
            future.set_result(None)
        else:
            self._conditions.append((predicate, future))
        return future

    def continue_as_new(self, args: list[Any], workflow_type: str | None) -> ContinueAsNewSignal:
        """Check that nothing is pending and return the signal that unwinds the workflow into continue-as-new."""
        pending = [f"activity {i}" for i, f in self._activities.items() if not f.done()]
        pending += [f"child {i}" for i, f in self._children.items() if not f.done()]
        if pending:
            raise ContinueAsNewError(
                f"workflow {self.info.workflow_id!r} cannot continue as new while work is pending: "
                f"{', '.join(pending)}; await or cancel it first"
            )
        return ContinueAsNewSignal(args, workflow_type)

    # -- internals -------------------------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._ordinals[kind] += 1
        return self._ordinals[kind]

    def _pending(self, table: dict[int, Any], ordinal: int, on_cancel: Callable[[], None]) -> asyncio.Future[Any]:
        """A future registered under ``ordinal``; ``asyncio`` cancelling it (a timeout won) calls ``on_cancel``."""
        future: asyncio.Future[Any] = self._loop.create_future()
        table[ordinal] = future

        def cancelled(done: asyncio.Future[Any]) -> None:
            if done.cancelled() and self._divergence is None and not self.closed:
                self._in_workflow(on_cancel)

        future.add_done_callback(cancelled)
        return future

    def _in_workflow(self, action: Callable[[], None]) -> None:
        global _current
        previous, _current = _current, self
        try:
            action()
        except _Diverged:
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
                if not self._check_conditions():
                    break
        finally:
            _current = previous
        self._check_main()

    def _check_conditions(self) -> bool:
        """Resolve the waits whose condition now holds; True if any was."""
        resolved = False
        still: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for predicate, future in self._conditions:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
                resolved = True
            else:
                still.append((predicate, future))
        self._conditions = still
        return resolved

    def _check_main(self) -> None:
        main = self._main
        if main is None or not main.done() or self.closed or self._divergence is not None:
            return
        self.closed = True
        if main.cancelled():
            error: BaseException | None = CancelledError("the workflow's main task was cancelled")
        else:
            error = main.exception()
        if error is None:
            self._issue(CompleteWorkflow(main.result()))
        elif isinstance(error, ContinueAsNewSignal):
            self._issue(ContinueAsNew(error.arguments, error.workflow_type))
        elif isinstance(error, CancelledError | asyncio.CancelledError) and self.cancel_requested:
            self._issue(CancelWorkflow(self.cancel_reason))
        else:
            self._issue(FailWorkflow(failure_from_exception(error)))

    def _deliver(self, event: ev.Event) -> None:
        if self._divergence is not None:
            return
        self._now = event.recorded_at
        match event:
            case ev.ActivityCompleted(activity_id=activity_id, result=result):
                self._resolve(self._activities, activity_id, result=result)
            case ev.ActivityFailed(activity_id=activity_id, failure=failure, attempt=attempt):
                self._resolve(self._activities, activity_id, error=_activity_error(failure, activity_id, attempt))
            case ev.ActivityCancelled(activity_id=activity_id):
                self._resolve(
                    self._activities, activity_id, error=CancelledError(f"activity {activity_id} was cancelled")
                )
            case ev.TimerFired(timer_id=timer_id):
                self._resolve(self._timers, timer_id, result=None)
            case ev.SignalReceived(name=name, payload=payload):
                self._deliver_signal(name, payload)
            case ev.ChildWorkflowCompleted(child_id=child_id, result=result):
                self._resolve(self._children, child_id, result=result)
            case ev.ChildWorkflowFailed(child_id=child_id, failure=failure):
                self._resolve(self._children, child_id, error=_child_error(failure, child_id))
            case ev.ChildWorkflowCancelled(child_id=child_id):
                self._resolve(self._children, child_id, error=CancelledError(f"child {child_id} was cancelled"))
            case ev.SignalExternalDelivered(signal_id=signal_id, failure=failure):
                error = None if failure is None else self._signal_error(signal_id, failure)
                self._resolve(self._external_signals, signal_id, result=None, error=error)
            case ev.WorkflowCancelRequested(reason=reason):
                self._cancel_everything(reason)
        self._run()

    def _signal_error(self, signal_id: int, failure: ev.Failure) -> Exception:
        target = self._external_targets.get(signal_id, "?")
        if failure.type == WorkflowNotFoundError.__name__:
            return WorkflowNotFoundError(target)
        return WorkflowNotRunningError(f"signal to workflow {target!r} not delivered: {failure.message}")

    @staticmethod
    def _resolve(
        table: dict[int, Any], ordinal: int, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        future = table.pop(ordinal, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

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
            for activity_id, future in list(self._activities.items()):
                fail(future)
                self.cancel_activity(activity_id)
            for timer_id, timer in list(self._timers.items()):
                fail(timer)
                self.cancel_timer(timer_id)
            for child_id, child in list(self._children.items()):
                fail(child)
                self.cancel_child(child_id)
            for waiters in self._signal_waiters.values():
                for waiter in waiters:
                    fail(waiter)
                waiters.clear()
            for _, condition in self._conditions:
                fail(condition)
            self._conditions.clear()

        self._in_workflow(cancel_all)

    def _deliver_signal(self, name: str, payload: Any) -> None:
        waiters = self._signal_waiters[name]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(payload)
                return
        self._signals[name].append(payload)

    def _issue_once(self, command: Command) -> None:
        if command.key not in self._cancels_issued:
            self._cancels_issued.add(command.key)
            self._issue(command)

    def _issue(self, command: Command) -> None:
        if self._divergence is not None:
            raise _Diverged()
        anchor = self._anchors.get(command.key)
        if anchor is None:
            self._outbox.append(command)
            return
        if command.key in self._matched or not command.matches(anchor):
            self._diverge(anchor.seq, describe_event(anchor), command.describe())
            raise _Diverged()
        self._matched.add(command.key)

    def _diverge(self, seq: int, expected: str, found: str) -> None:
        if self._divergence is None:
            self._divergence = NonDeterminismError(self.info.workflow_id, seq, expected, found)
            self._outbox.clear()
            self._loop.close()

    def _raise_divergence(self) -> None:
        if self._divergence is not None:
            raise self._divergence

    def _take_outbox(self) -> list[Command]:
        commands, self._outbox = self._outbox, []
        return commands


def _activity_error(failure: ev.Failure, activity_id: int, attempt: int) -> ActivityError:
    error = ActivityError(
        f"activity {activity_id} failed after {attempt} attempt(s): {failure.type}: {failure.message}",
        type=failure.type,
        traceback=failure.traceback,
        details=failure.details,
    )
    error.attempt = attempt  # type: ignore[attr-defined]
    return error


def _child_error(failure: ev.Failure, child_id: int) -> ChildWorkflowError:
    return ChildWorkflowError(
        f"child {child_id} failed: {failure.type}: {failure.message}",
        type=failure.type,
        traceback=failure.traceback,
        details=failure.details,
    )
