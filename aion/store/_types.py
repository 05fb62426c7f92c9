"""The value types the event store hands out: run records, timer rows and append requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aion.events import Event
from aion.status import WorkflowStatus

#: ``TimerRow.kind`` of a workflow timer (``key`` is the timer ordinal).
TIMER = "timer"
#: ``TimerRow.kind`` of an activity retry backoff (``key`` is the activity ordinal).
ACTIVITY_RETRY = "activity_retry"
#: ``TimerRow.kind`` of a run's own timeout (``key`` is 0).
RUN_TIMEOUT = "run_timeout"
#: ``TimerRow.kind`` of a continue-as-new chain's execution deadline (``key`` is 0).
EXECUTION_TIMEOUT = "execution_timeout"

#: Every timer kind the store derives from history.
TIMER_KINDS = frozenset({TIMER, ACTIVITY_RETRY, RUN_TIMEOUT, EXECUTION_TIMEOUT})


@dataclass(frozen=True)
class RunInfo:
    """The current run of a workflow, derived from its history in the same transaction as the events.

    ``head_seq`` is the workflow's head (the last sequence number of its whole history, all runs);
    ``run_first_seq`` is the sequence number of this run's ``WorkflowStarted``. ``start_time`` and
    ``close_time`` are the ``recorded_at`` of the run's first and terminal events.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowStatus
    head_seq: int
    run_first_seq: int
    start_time: datetime
    close_time: datetime | None = None
    search_attributes: Mapping[str, Any] = field(default_factory=dict)
    #: The run this one continues (continue-as-new), and the first run of the chain.
    parent_run_id: str | None = None
    first_run_id: str | None = None
    #: The parent workflow when this run is a child workflow.
    parent_workflow_id: str | None = None
    parent_workflow_run_id: str | None = None
    #: How many runs the workflow id has had (1 for the first run).
    run_number: int = 1
    #: The workflow version recorded on the run's ``WorkflowStarted``, if any.
    workflow_version: str | None = None
    #: The run's memo (any payload; shown, not indexed).
    memo: Any = None

    @property
    def is_running(self) -> bool:
        """True while the run has no terminal event (its status is running, blocked or paused)."""
        return self.status.is_open


@dataclass(frozen=True, order=True)
class TimerRow:
    """A durable timer derived from history: due at ``fire_at`` (UTC) for ``workflow_id``.

    ``kind`` is one of ``timer`` (``key`` = timer ordinal), ``activity_retry`` (``key`` = activity ordinal),
    ``run_timeout`` or ``execution_timeout`` (``key`` = 0). Rows sort in fire order.
    """

    fire_at: datetime
    workflow_id: str
    kind: str
    key: int


@dataclass(frozen=True)
class AppendRequest:
    """One workflow's append inside a batch: ``events`` go after ``expected_head``.

    ``bodies`` optionally holds ``aion._codec.encode_event_body(event)`` for each event, computed ahead (the
    recorder does it in the appending thread, outside the writer's critical path); a store uses them instead of
    encoding the events itself. ``None`` (or an entry ``None``) means "encode it in the store"."""

    workflow_id: str
    events: Sequence[Event]
    expected_head: int
    bodies: Sequence[bytes | None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ScheduleAppend(AppendRequest):
    """An append to a *schedule's* history (the ``schedules`` database), not a workflow's: ``workflow_id`` holds
    the schedule id, ``events`` are schedule events (``aion.events.Schedule*``) and go after ``expected_head``.

    It may share an atomic batch with a workflow's ``WorkflowStarted``: that is how a schedule's fire and the start
    it causes are committed in one transaction. The store checks only the head; schedule ids never meet workflow
    ids (the two histories live in different databases)."""
