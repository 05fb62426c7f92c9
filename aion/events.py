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

    version: ClassVar[int] = 2  # 2: memo, reset, request_id

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
    #: Any payload shown with the run (``describe``, ``list``) and never indexed (format version 2).
    memo: Any = None
    #: The run this one was reset from (``handle.reset``): its history up to the reset point is copied after this.
    reset_from_run_id: str | None = None
    #: The last sequence number of the old run that was copied (its events follow this one, renumbered).
    reset_to_seq: int | None = None
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
    """The workflow set (or, with a ``None`` value, removed) search attributes.

    ``upsert_id`` is the ordinal of the upsert in its run: the anchor of ``workflow.upsert_search_attributes``,
    matched by key on replay (format version 2)."""

    attributes: dict[str, Any]
    upsert_id: int = 0

    version: ClassVar[int] = 2


@dataclass(frozen=True, kw_only=True)
class MarkerRecorded(Event):
    """A named marker, used for version patches and side-effect results."""

    name: str
    details: Any = None


# --- code changes under live runs (docs/versioning.md) ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkflowBlocked(Event):
    """The run's code cannot make progress (its type or version is not registered, it diverged from its history,
    or replaying it failed inside aion): the run waits, holding no process, until code that fits is deployed.

    ``cause`` is one of ``unknown_type``, ``unknown_version``, ``non_determinism``, ``internal``; ``at_seq``,
    ``expected`` and ``found`` describe a divergence. Recorded once per blocking, not on each retry."""

    cause: str
    message: str
    at_seq: int | None = None
    expected: str | None = None
    found: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowUnblocked(Event):
    """The run's code fits its history again (a retry replayed it without divergence): it runs on."""


@dataclass(frozen=True, kw_only=True)
class WorkflowPaused(Event):
    """An operator paused the run: nothing new is dispatched, and arrivals wait until it is resumed."""

    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowResumed(Event):
    """An operator resumed a paused run: what arrived while it was paused is delivered."""


@dataclass(frozen=True, kw_only=True)
class WorkflowReset(Event):
    """The run was closed by a reset: run ``new_run_id`` goes on from a copy of its history up to ``to_seq``."""

    terminal: ClassVar[bool] = True
    new_run_id: str
    to_seq: int
    reason: str | None = None


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
    """Timer ordinal ``timer_id`` will fire at ``fire_at`` (UTC).

    ``waiting_for`` names what the timer is the timeout of (``"signal 'approve'"``, ``"the condition"``), so that
    ``describe`` and the tree can say what the run waits on (format version 2)."""

    timer_id: int
    fire_at: datetime
    waiting_for: str | None = None

    version: ClassVar[int] = 2


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
    """The workflow started child ordinal ``child_id``; recorded before the child's own ``WorkflowStarted``.

    ``options`` are the child's start options (``execution_timeout``, checked ``search_attributes``, ``memo``),
    so that a child started again after a crash (its parent's record durable, its own not) starts with them
    (format version 2)."""

    child_id: int
    child_workflow_id: str
    workflow_type: str
    input: Any
    child_run_id: str
    parent_close_policy: str = "terminate"
    options: dict[str, Any] = field(default_factory=dict)

    version: ClassVar[int] = 2


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


# --- schedules ------------------------------------------------------------------------------------------------
#
# A schedule's history (the store's ``schedules`` database, see ``aion.store.ScheduleAppend``) holds only these
# events; in them ``workflow_id`` is the *schedule* id. Times are aware UTC datetimes; ``spec`` and ``policy`` are
# the plain dicts of ``aion.schedules.ScheduleSpec.to_dict`` / ``SchedulePolicy.to_dict``.


@dataclass(frozen=True, kw_only=True)
class ScheduleEvent(Event):
    """Base of the events of a schedule's history."""


@dataclass(frozen=True, kw_only=True)
class ScheduleCreated(ScheduleEvent):
    """A schedule is created (or created again after its deletion): what it starts and when."""

    workflow_type: str
    args: Any
    spec: dict[str, Any]
    policy: dict[str, Any]
    search_attributes: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleUpdated(ScheduleEvent):
    """The schedule's spec and/or policy changed (``None``: unchanged). Fires are counted from the update on."""

    spec: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class SchedulePaused(ScheduleEvent):
    """No fire starts anything until the schedule is unpaused (``note`` says why)."""

    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleUnpaused(ScheduleEvent):
    """The schedule fires again, from now on (fires due while it was paused are not taken up)."""

    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleFired(ScheduleEvent):
    """A fire started workflow ``started_workflow_id`` (run ``run_id``): recorded in the same transaction as that
    run's ``WorkflowStarted``. ``fire_at`` is the nominal fire time; ``manual`` is "trigger" or "backfill" for a
    fire asked for by hand (it does not move the schedule's position in its spec)."""

    fire_at: datetime
    started_workflow_id: str
    run_id: str
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleBuffered(ScheduleEvent):
    """A fire waits (overlap policy ``BUFFER_ONE``/``BUFFER_ALL``/``CANCEL_OTHER``) for the running workflow to
    close; it is started then, by a ``ScheduleFired`` with the same ``fire_at``."""

    fire_at: datetime
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleSkipped(ScheduleEvent):
    """A fire started nothing: ``reason`` is ``overlap`` (the overlap policy), ``paused``, ``buffer_full``,
    ``exists`` (its workflow id has a run already) or ``start_failed`` (``detail`` says why)."""

    fire_at: datetime
    reason: str
    detail: str | None = None
    manual: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleMissed(ScheduleEvent):
    """``count`` fires up to ``up_to`` came due while the engine was down and are older than the catch-up window:
    skipped, and counted."""

    count: int
    up_to: datetime


@dataclass(frozen=True, kw_only=True)
class ScheduleDeleted(ScheduleEvent):
    """The schedule is deleted: it fires no more (its history stays; its id may be created again)."""
