"""Every history event of the engine: the one place that lists them all.

A workflow's history is a gapless sequence of events numbered from 1. Events are frozen dataclasses; the event
store is the sequence authority, so callers build events with the default ``seq=0`` and ``recorded_at=UNSET_TIME``
and get back the stamped copies from an append::

    >>> event = TimerStarted(workflow_id="order-1", timer_id=1, fire_at=UNSET_TIME)
    >>> event.type
    'TimerStarted'
    >>> EVENT_TYPES["TimerStarted"] is TimerStarted
    True

A run is the slice of a workflow's history from one ``WorkflowStarted`` up to (not including) the next one.
Payload fields (``input``, ``result``, ``payload``, ``details``) hold user values that the payload codec accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

#: The placeholder ``recorded_at`` of an event not yet appended.
UNSET_TIME = datetime(1970, 1, 1, tzinfo=UTC)

#: Every concrete event class by its ``type`` name, filled in as the classes are defined.
EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True)
class Failure:
    """A recorded error: the exception's type name, message, formatted traceback and optional details."""

    type: str
    message: str
    traceback: str | None = None
    details: Any = None
    non_retryable: bool = False


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every history event: which workflow, its position in the history and when it was recorded."""

    workflow_id: str
    seq: int = 0
    recorded_at: datetime = UNSET_TIME

    #: Format version of the event's encoding; bump it on a subclass when a field is added (with a default).
    version: ClassVar[int] = 1
    #: True for the events that close a run.
    terminal: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.__name__] = cls

    @property
    def type(self) -> str:
        """The event's type name, as stored."""
        return type(self).__name__


# --- workflow run lifecycle -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkflowStarted(Event):
    """A new run begins. Opens the run's slice of the history."""

    version: ClassVar[int] = 2  # 2: request_id
    workflow_type: str
    input: Any
    run_id: str
    #: The run this one continues (continue-as-new), if any.
    parent_run_id: str | None = None
    #: The first run of a continue-as-new chain (this run's own id when it starts a chain).
    first_run_id: str | None = None
    workflow_version: str | None = None
    #: The parent workflow when this run is a child workflow.
    parent_workflow_id: str | None = None
    parent_workflow_run_id: str | None = None
    search_attributes: dict[str, Any] = field(default_factory=dict)
    #: Seconds allowed for the whole chain (across continue-as-new); ``execution_deadline`` is its end.
    execution_timeout: float | None = None
    execution_deadline: datetime | None = None
    #: Seconds allowed for this run alone.
    run_timeout: float | None = None
    #: Attempt number of the run (1 for a fresh start).
    attempt: int = 1
    #: The trace context the run's span continues (W3C ``traceparent``), when the engine traces.
    trace_context: dict[str, str] | None = None
    #: The starter's idempotency key (``start_workflow(request_id=...)``): a retried start finds its run by it.
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowCompleted(Event):
    """The run returned a value."""

    terminal: ClassVar[bool] = True
    result: Any = None


@dataclass(frozen=True, kw_only=True)
class WorkflowFailed(Event):
    """The run raised, or crashed past its restart intensity, or diverged from its history."""

    terminal: ClassVar[bool] = True
    failure: Failure


@dataclass(frozen=True, kw_only=True)
class WorkflowCancelRequested(Event):
    """Cancellation was asked for; the workflow sees ``aion.CancelledError`` at its current await."""

    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowCancelled(Event):
    """The run ended by cancellation."""

    terminal: ClassVar[bool] = True
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowTerminated(Event):
    """The run was terminated: its process was killed and nothing of it runs afterwards."""

    terminal: ClassVar[bool] = True
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowTimedOut(Event):
    """The run passed its run timeout or its chain's execution timeout (``kind`` says which)."""

    terminal: ClassVar[bool] = True
    kind: str = "execution"


@dataclass(frozen=True, kw_only=True)
class WorkflowContinuedAsNew(Event):
    """The run ended by starting a new run of the same workflow id with ``input``."""

    terminal: ClassVar[bool] = True
    input: Any
    new_run_id: str
    workflow_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class SearchAttributesUpserted(Event):
    """The workflow set (or, with a ``None`` value, removed) search attributes."""

    attributes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class MarkerRecorded(Event):
    """A named marker, used for version patches and side-effect results."""

    name: str
    details: Any = None


# --- activities ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ActivityScheduled(Event):
    """The workflow asked for activity ordinal ``activity_id``; durable before the activity is dispatched."""

    activity_id: int
    activity_type: str
    input: Any
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ActivityStarted(Event):
    """A worker took attempt ``attempt`` of the activity."""

    activity_id: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class ActivityCompleted(Event):
    """The activity returned ``result`` on attempt ``attempt``."""

    activity_id: int
    result: Any
    attempt: int


@dataclass(frozen=True, kw_only=True)
class ActivityFailed(Event):
    """An attempt failed. With ``next_attempt_at`` set a retry is due then; without it the activity failed."""

    version: ClassVar[int] = 2
    activity_id: int
    failure: Failure
    attempt: int
    retryable: bool
    next_attempt_at: datetime | None = None
    #: The last heartbeat details of the failed attempt, handed to the next one (added in version 2).
    heartbeat_details: Any = None


@dataclass(frozen=True, kw_only=True)
class ActivityCancelRequested(Event):
    """The workflow asked to cancel the activity; the running attempt is told, then killed after a grace."""

    activity_id: int


@dataclass(frozen=True, kw_only=True)
class ActivityCancelled(Event):
    """The activity was cancelled before it completed."""

    activity_id: int


# --- timers ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TimerStarted(Event):
    """Timer ordinal ``timer_id`` will fire at ``fire_at`` (UTC)."""

    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, kw_only=True)
class TimerFired(Event):
    """The timer fired."""

    timer_id: int


@dataclass(frozen=True, kw_only=True)
class TimerCancelled(Event):
    """The timer was cancelled before it fired."""

    timer_id: int


# --- signals ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SignalReceived(Event):
    """A signal arrived. ``dedup_key`` lets a sender deliver exactly once across its own crashes."""

    name: str
    payload: Any = None
    dedup_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class SignalExternalSent(Event):
    """The workflow sent signal ordinal ``signal_id`` to another workflow (recorded before delivery)."""

    signal_id: int
    target_workflow_id: str
    name: str
    payload: Any = None


@dataclass(frozen=True, kw_only=True)
class SignalExternalDelivered(Event):
    """Signal ``signal_id`` reached its target (``failure`` is None), or could not (the target was closed)."""

    signal_id: int
    failure: Failure | None = None


# --- child workflows -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChildWorkflowStarted(Event):
    """The workflow started child ordinal ``child_id``; recorded before the child's own ``WorkflowStarted``."""

    child_id: int
    child_workflow_id: str
    workflow_type: str
    input: Any
    child_run_id: str
    parent_close_policy: str = "terminate"


@dataclass(frozen=True, kw_only=True)
class ChildWorkflowCancelRequested(Event):
    """The workflow asked its child ``child_id`` to cancel."""

    child_id: int


@dataclass(frozen=True, kw_only=True)
class ChildWorkflowCompleted(Event):
    """The child returned ``result``."""

    child_id: int
    result: Any = None


@dataclass(frozen=True, kw_only=True)
class ChildWorkflowFailed(Event):
    """The child failed (or timed out, or was terminated): ``failure`` says how."""

    child_id: int
    failure: Failure


@dataclass(frozen=True, kw_only=True)
class ChildWorkflowCancelled(Event):
    """The child was cancelled."""

    child_id: int


# --- updates -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UpdateAccepted(Event):
    """Update ``name`` with ``args`` passed the workflow's validator and will be applied: delivered to the code
    like a signal, it runs the update handler (again on replay, until ``UpdateCompleted`` is recorded)."""

    update_id: str
    name: str
    args: Any = None


@dataclass(frozen=True, kw_only=True)
class UpdateCompleted(Event):
    """The update handler of ``update_id`` returned ``result`` (or raised: ``failure``)."""

    update_id: str
    result: Any = None
    failure: Failure | None = None


def terminal_event_types() -> frozenset[str]:
    """The type names of the events that close a run."""
    return frozenset(name for name, cls in EVENT_TYPES.items() if cls.terminal)
