"""The replay runtime: runs one workflow run's code against its history, then live.

How a run advances (the same way live and on replay, which is what makes replay exact):

1. ``WorkflowStarted`` creates the main task; the loop runs until every task waits.
2. Each *arrival* (an activity result, a timer firing, a signal, ...) is applied alone, in history order, and the
   loop again runs until idle. The engine delivers arrivals to a live process in the order it recorded them, one
   at a time, so a replay passes through exactly the states the live run passed through.
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
from aion.errors import ActivityError, CancelledError, FailureError, NonDeterminismError, QueryError
from aion.workflow._commands import (
    CancelTimer,
    Command,
    CompleteWorkflow,
    FailWorkflow,
    Key,
    RequestCancelActivity,
    ScheduleActivity,
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
        self._position = started.seq
        self._loop = DeterministicLoop(self._clock)  # type: ignore[abstract]
        self.random = random.Random(uuid.UUID(started.run_id).int)
        self._next_activity_id = 1
        self._next_timer_id = 1
        self._activities: dict[int, asyncio.Future[Any]] = {}
        self._cancelling: set[int] = set()
        self._timers: dict[int, asyncio.Future[None]] = {}
        self._signals: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self._signal_waiters: dict[str, collections.deque[asyncio.Future[Any]]] = collections.defaultdict(
            collections.deque
        )
        self.query_handlers: dict[str, Callable[..., Any]] = {}
        self._anchors: dict[Key, ev.Event] = {}
        self._matched: set[Key] = set()
        self._replaying = False
        self._outbox: list[Command] = []
        self._divergence: NonDeterminismError | None = None
        self._main: asyncio.Task[Any] | None = None
        self.closed = False
        #: Set by the host: raises ``UnknownActivityTypeError`` for an activity type the engine does not know.
        self.check_activity: Callable[[str], object] | None = None

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
                self._position = event.seq
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
        self._position = event.seq
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
        activity_id = self._next_activity_id
        self._next_activity_id += 1
        future = self._loop.create_future()
        self._activities[activity_id] = future
        self._issue(ScheduleActivity(activity_id, activity_type, args, options))
        return activity_id, future

    def cancel_activity(self, activity_id: int) -> None:
        """Ask for activity ``activity_id`` to be cancelled, unless it has finished (once per activity)."""
        future = self._activities.get(activity_id)
        if future is None or future.done() or activity_id in self._cancelling:
            return
        self._cancelling.add(activity_id)
        self._issue(RequestCancelActivity(activity_id))

    def start_timer(self, seconds: float) -> asyncio.Future[None]:
        """Issue ``StartTimer`` and return the future its firing resolves."""
        timer_id = self._next_timer_id
        self._next_timer_id += 1
        future: asyncio.Future[None] = self._loop.create_future()
        self._timers[timer_id] = future
        self._issue(StartTimer(timer_id, seconds))
        return future

    def cancel_timer(self, timer: asyncio.Future[None]) -> None:
        """Cancel a timer started by :meth:`start_timer` that has not fired (its firing is then ignored)."""
        for timer_id, pending in self._timers.items():
            if pending is timer:
                del self._timers[timer_id]
                timer.cancel()
                self._issue(CancelTimer(timer_id))
                return

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """A future for the next signal ``name`` (resolved at once from the buffer if one is waiting)."""
        future = self._loop.create_future()
        buffered = self._signals[name]
        if buffered:
            future.set_result(buffered.popleft())
        else:
            self._signal_waiters[name].append(future)
        return future

    # -- internals -------------------------------------------------------------------------------------------

    def _start(self) -> None:
        args = self._started.input if isinstance(self._started.input, list) else [self._started.input]
        coroutine = self._function(*args)
        self._main = self._loop.create_task(coroutine, name=f"workflow:{self.info.workflow_id}")
        self._run()

    def _run(self) -> None:
        global _current
        previous, _current = _current, self
        try:
            self._loop.run_until_idle()
        finally:
            _current = previous
        self._check_main()

    def _check_main(self) -> None:
        main = self._main
        if main is None or not main.done() or self.closed or self._divergence is not None:
            return
        self.closed = True
        error = main.exception()
        if error is None:
            self._issue(CompleteWorkflow(main.result()))
        else:
            self._issue(FailWorkflow(failure_from_exception(error)))

    def _deliver(self, event: ev.Event) -> None:
        if self._divergence is not None:
            return
        self._now = event.recorded_at
        match event:
            case ev.ActivityCompleted(activity_id=activity_id, result=result):
                future = self._activities.pop(activity_id, None)
                if future is not None and not future.done():
                    future.set_result(result)
            case ev.ActivityFailed(activity_id=activity_id, failure=failure, attempt=attempt):
                future = self._activities.pop(activity_id, None)
                if future is not None and not future.done():
                    future.set_exception(_activity_error(failure, activity_id, attempt))
            case ev.ActivityCancelled(activity_id=activity_id):
                future = self._activities.pop(activity_id, None)
                if future is not None and not future.done():
                    future.set_exception(CancelledError(f"activity {activity_id} was cancelled"))
            case ev.TimerFired(timer_id=timer_id):
                timer = self._timers.pop(timer_id, None)
                if timer is not None and not timer.done():
                    timer.set_result(None)
            case ev.SignalReceived(name=name, payload=payload):
                self._deliver_signal(name, payload)
        self._run()

    def _deliver_signal(self, name: str, payload: Any) -> None:
        waiters = self._signal_waiters[name]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(payload)
                return
        self._signals[name].append(payload)

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
