"""The events of what a run does step by step: activities, timers, signals (received and sent), child workflows
and updates. Each step is keyed by its ordinal in the run (``activity_id``, ``timer_id``, ...), the anchor a
replay matches its command against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from aion.events._base import Event, Failure

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
    """The timer fired.

    ``due_at`` is the timer's due time when the event was recorded ahead of it (format version 2): the engine
    records ``TimerFired`` a moment early so that it is durable by then, and the workflow resumes, its clock
    reading ``due_at``, no earlier than that."""

    timer_id: int
    due_at: datetime | None = None

    version: ClassVar[int] = 2


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
