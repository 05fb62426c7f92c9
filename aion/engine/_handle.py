"""``WorkflowHandle``: what a caller holds to talk to one workflow run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Protocol, TypeVar

import pykka

from aion import events as ev
from aion._codec import check_payload, decode_event, encode_event
from aion._definitions import version_of_run
from aion._durations import Duration, optional_seconds, to_seconds
from aion._waits import NOT_REPORTED, UNKNOWN_WITHOUT_ENGINE, waiting_on
from aion.clock import SYSTEM_CLOCK
from aion.engine._closures import Closures
from aion.engine._messages import (
    CancelWorkflowRequest,
    GetWaits,
    PauseWorkflow,
    QueryWorkflow,
    Request,
    ResetWorkflow,
    ResumeWorkflow,
    SignalWorkflow,
    TerminateWorkflow,
    UnblockWorkflows,
    UpdateWorkflow,
)
from aion.errors import (
    EngineNotRunningError,
    InvalidArgumentError,
    QueryTimeoutError,
    ResultTimeoutError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTerminatedError,
    WorkflowTimedOutError,
)
from aion.status import WorkflowStatus, status_of_run
from aion.store import EventStore


class HandleOwner(Protocol):
    """What a handle needs of the engine it belongs to."""

    @property
    def store(self) -> EventStore:
        """The engine's event store."""

    @property
    def closures(self) -> Closures:
        """Where ``result()`` waits for a run to close."""

    def request(self, message: Request, *, timeout: float | None = None) -> Any:
        """Tell the engine core ``message`` and wait for its reply."""


@dataclass(frozen=True)
class WorkflowDescription:
    """A run as ``describe()`` sees it: identity, status, times, history length and what it waits on."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    search_attributes: dict[str, Any]
    #: The workflow version the run is pinned to.
    version: int = 1
    #: While the run is blocked: the ``WorkflowBlocked`` event that says why (cause, seq, expected/found).
    blocked: ev.WorkflowBlocked | None = None
    #: What an open run waits on, named (``"signal 'approve', timer #2 until ..."``); ``None`` once closed.
    waiting_on: str | None = None
    #: The signals and conditions its code last reported waiting on beyond its history (``None``: no report).
    waits: tuple[str, ...] | None = None


#: The workflow's result type.
R = TypeVar("R")


class WorkflowHandle(Generic[R]):
    """A handle to one run of a workflow: wait for its result, signal it, query it, read its history.
    ``WorkflowHandle[R]``: ``result()`` returns the workflow's return type ``R``."""

    def __init__(self, engine: HandleOwner, workflow_id: str, run_id: str) -> None:
        self._engine = engine
        self.workflow_id = workflow_id
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"WorkflowHandle(workflow_id={self.workflow_id!r}, run_id={self.run_id!r})"

    def result(self, timeout: Duration | None = None) -> R:
        """Wait for the run to close and return its result.

        A run that continued as new is followed along its chain to the final run's outcome. Raises
        ``WorkflowFailedError`` (with the cause's ``type``, ``message`` and ``traceback``),
        ``WorkflowCancelledError``, ``WorkflowTerminatedError`` or ``WorkflowTimedOutError`` for the other
        endings, and ``ResultTimeoutError`` if ``timeout`` passes first (the run goes on).
        """
        seconds = optional_seconds(timeout, "timeout")
        deadline = None if seconds is None else _REAL.monotonic() + seconds
        closures = self._engine.closures
        run_id = self.run_id
        while True:
            with closures.watch(self.workflow_id, run_id) as waiter:
                terminal: ev.Event | None
                if waiter.terminal is not None:  # the run closed a moment ago
                    terminal = _own_copy(waiter.terminal)
                else:
                    terminal = None if waiter.open else self._terminal_event(run_id)
                if terminal is None:
                    remaining = None if deadline is None else deadline - _REAL.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise ResultTimeoutError(
                            f"workflow {self.workflow_id!r} did not close within {seconds:g} s (it is still running)"
                        )
                    waiter.wait(remaining)
                    if waiter.terminal is not None:
                        terminal = _own_copy(waiter.terminal)
            if isinstance(terminal, ev.WorkflowContinuedAsNew | ev.WorkflowReset):
                run_id = terminal.new_run_id
            elif terminal is not None:
                outcome: R = _outcome(terminal)
                return outcome

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name`` with ``payload``; returns once the signal is durable (it is never lost)."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"signal name must be a non-empty string, got {name!r}")
        check_payload(payload, path=f"signal {name!r} payload")
        self._engine.request(SignalWorkflow(self.workflow_id, name, payload))

    def cancel(self, reason: str | None = None) -> bool:
        """Request cooperative cancellation: ``aion.CancelledError`` is raised in the workflow at its current
        ``await`` (pending activities, timers and children are asked to stop); it may clean up and finish.

        Returns True once the request is recorded; False if the run had already closed (nothing is done).
        """
        _check_reason(reason)
        return bool(self._engine.request(CancelWorkflowRequest(self.workflow_id, reason)))

    def terminate(self, reason: str | None = None) -> bool:
        """End the run now: its process is killed, ``WorkflowTerminated`` recorded, running activities stopped,
        children handled by their parent-close policy. Nothing of it runs afterwards.

        Returns True once recorded; False if the run had already closed.
        """
        _check_reason(reason)
        return bool(self._engine.request(TerminateWorkflow(self.workflow_id, reason)))

    def query(self, name: str, *args: Any, timeout: float = 30.0) -> Any:
        """Ask the workflow's query handler ``name``; answered from the live run, or by replaying a closed one."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"query name must be a non-empty string, got {name!r}")
        seconds = to_seconds(timeout, "query timeout", allow_zero=False)
        check_payload(list(args), path=f"query {name!r} args")
        try:
            return self._engine.request(QueryWorkflow(self.workflow_id, name, list(args)), timeout=seconds)
        except pykka.Timeout:
            raise QueryTimeoutError(
                f"query {name!r} of workflow {self.workflow_id!r} was not answered within {seconds:g} s"
            ) from None

    def execute_update(
        self, name: str, *args: Any, update_id: str | None = None, timeout: Duration | None = None
    ) -> Any:
        """Apply update ``name`` to the running workflow and return its handler's result once that is durable.

        The workflow's validator runs first: ``UpdateRejectedError`` if it refuses (nothing is recorded). An
        accepted update is recorded before its handler runs and completes exactly once, across crashes; a call
        retried with the same ``update_id`` returns the recorded result instead of applying it again. Raises
        ``UpdateFailedError`` if the handler raised, ``WorkflowNotRunningError`` if the run is closed (or closes
        first), ``ResultTimeoutError`` if ``timeout`` passes first (the update goes on).
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"update name must be a non-empty string, got {name!r}")
        check_payload(list(args), path=f"update {name!r} args")
        fresh = update_id is None
        update_id = str(uuid.uuid4()) if update_id is None else update_id
        if not isinstance(update_id, str) or not update_id:
            raise InvalidArgumentError(f"update_id must be a non-empty string, got {update_id!r}")
        message = UpdateWorkflow(self.workflow_id, name, list(args), update_id, fresh)
        try:
            return self._engine.request(message, timeout=optional_seconds(timeout, "timeout"))
        except pykka.Timeout:
            raise ResultTimeoutError(f"update {name!r} of {self.workflow_id!r} did not complete in time") from None

    def describe(self) -> WorkflowDescription:
        """The run's identity, status, times and history length, derived from its history, and what it waits on
        (``waiting_on``): the activities, timers, children and signals its history names, and the signals and
        conditions its code last reported to the running engine (``waits``; see docs/visibility.md)."""
        history = self.history()
        started = history[0]
        assert isinstance(started, ev.WorkflowStarted)
        closed = history[-1] if history[-1].terminal else None
        status = status_of_run(history)
        blocks = [event for event in history if isinstance(event, ev.WorkflowBlocked)]
        reported: list[str] | None = None
        unknown = NOT_REPORTED
        if closed is None:
            try:
                reported = self._engine.request(GetWaits(((self.workflow_id, self.run_id),)))[0]
            except EngineNotRunningError:
                unknown = UNKNOWN_WITHOUT_ENGINE
        return WorkflowDescription(
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            workflow_type=started.workflow_type,
            status=status,
            start_time=started.recorded_at,
            close_time=closed.recorded_at if closed is not None else None,
            history_length=len(history),
            search_attributes=dict(started.search_attributes),
            version=version_of_run(started.workflow_version),
            blocked=blocks[-1] if status is WorkflowStatus.BLOCKED and blocks else None,
            waiting_on=waiting_on(history, reported, unknown=unknown),
            waits=None if reported is None else tuple(reported),
        )

    def unblock(self) -> bool:
        """Try the blocked run again now (it is also tried at every engine start): True if this engine has its
        code and gave it a process, whose replay decides (it runs on if the code fits, else stays blocked)."""
        return bool(self._engine.request(UnblockWorkflows(self.workflow_id)))

    def pause(self, reason: str | None = None) -> bool:
        """Pause the run: nothing new is dispatched for it (activities, children, outgoing signals), and timers
        that come due and signals are recorded but not delivered until :meth:`resume`. True once recorded;
        False if it was paused already. ``WorkflowNotRunningError`` for a closed run."""
        return bool(self._engine.request(PauseWorkflow(self.workflow_id, reason)))

    def resume(self) -> bool:
        """Resume a paused run: what waited is delivered and dispatched. True once recorded; False if it was not
        paused."""
        return bool(self._engine.request(ResumeWorkflow(self.workflow_id)))

    def reset(self, *, to_seq: int | None = None, reason: str) -> str:
        """Start a new run of this workflow from a copy of the current run's history up to ``to_seq`` (default:
        the last event before it closed or became blocked), with the current code; the old run, if open, is
        closed with ``WorkflowReset`` naming the new one. Activities completed before that point are not run
        again; signals received after it are carried over. Returns the new run's id (see docs/versioning.md)."""
        if not isinstance(reason, str) or not reason:
            raise InvalidArgumentError(f"a reset needs a reason (a non-empty string), got {reason!r}")
        if to_seq is not None and (isinstance(to_seq, bool) or not isinstance(to_seq, int) or to_seq < 1):
            raise InvalidArgumentError(f"to_seq must be a positive int, got {to_seq!r}")
        new_run_id: str = self._engine.request(ResetWorkflow(self.workflow_id, to_seq, reason))
        return new_run_id

    def history(self) -> list[ev.Event]:
        """The events of this run, in order."""
        history = self._engine.store.read_run(self.workflow_id, self.run_id)
        if not history:
            raise WorkflowNotFoundError(self.workflow_id, self.run_id)
        return history

    def _terminal_event(self, run_id: str) -> ev.Event | None:
        """Run ``run_id``'s terminal event from the store, or ``None`` while it runs."""
        store = self._engine.store
        info = store.get_run(self.workflow_id)
        if info is None:
            raise WorkflowNotFoundError(self.workflow_id)
        if info.run_id == run_id:
            if info.is_running:
                return None
            # The current run has closed: its terminal event is the workflow's last (only a new run's
            # WorkflowStarted may follow it, which would make that run the current one). Read just that one.
            last_only = store.read_history(self.workflow_id, after_seq=info.head_seq - 1, limit=1)
            if last_only and last_only[0].terminal:
                return last_only[0]
        last = store.read_run(self.workflow_id, run_id)[-1]
        return last if last.terminal else None


#: A caller's timeout counts real seconds, whatever clock the engine runs on (the testing kit's is virtual).
_REAL = SYSTEM_CLOCK

#: Result types handed over as they are: no one can change such a value.
_IMMUTABLE: Final = frozenset({type(None), bool, int, float, str, bytes})


def _own_copy(terminal: ev.Event) -> ev.Event:
    """The terminal event as a store read would give it, with values of its own: the engine still holds the
    values of the event it hands over (a parent's ``ChildWorkflowCompleted`` may be encoded from them)."""
    if type(terminal) is ev.WorkflowCompleted and type(terminal.result) in _IMMUTABLE:
        return terminal
    return decode_event(encode_event(terminal))


def _outcome(terminal: ev.Event) -> Any:
    match terminal:
        case ev.WorkflowCompleted(result=result):
            return result
        case ev.WorkflowFailed(failure=failure):
            raise WorkflowFailedError(
                f"workflow {terminal.workflow_id!r} failed: {failure.type}: {failure.message}",
                type=failure.type,
                traceback=failure.traceback,
                details=failure.details,
            )
        case ev.WorkflowCancelled(reason=reason):
            raise WorkflowCancelledError(f"workflow {terminal.workflow_id!r} was cancelled: {reason}")
        case ev.WorkflowTerminated(reason=reason):
            raise WorkflowTerminatedError(f"workflow {terminal.workflow_id!r} was terminated: {reason}")
        case ev.WorkflowTimedOut(kind=kind):
            raise WorkflowTimedOutError(f"workflow {terminal.workflow_id!r} timed out ({kind} timeout)")
    raise WorkflowFailedError(f"run closed with {terminal.type}", type=terminal.type)


def _check_reason(reason: object) -> None:
    """A cancel's or terminate's reason: ``None`` or a string (it is recorded)."""
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgumentError(f"reason must be a string or None, got {type(reason).__name__}: {reason!r}")
