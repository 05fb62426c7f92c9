"""Workflow status, and the one projection of it from history.

Status is derived from history, never stored apart from it (DESIGN.md invariant 5): :func:`status_of_run` is
the single function that decides a run's status, and :data:`TERMINAL_STATUS` is the table it uses, which the
event store reuses to keep its status index consistent::

    >>> from aion.events import WorkflowStarted, WorkflowCompleted
    >>> started = WorkflowStarted(workflow_id="order-1", workflow_type="Order", input=None, run_id="r1")
    >>> status_of_run([started])
    <WorkflowStatus.RUNNING: 'running'>
    >>> status_of_run([started, WorkflowCompleted(workflow_id="order-1", result=3)])
    <WorkflowStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

from aion.events import (
    Event,
    WorkflowBlocked,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowContinuedAsNew,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowReset,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowTerminated,
    WorkflowTimedOut,
    WorkflowUnblocked,
    terminal_event_types,
)

__all__ = [
    "OPEN_STATUSES",
    "OPEN_STATUS_AFTER",
    "TERMINAL_STATUS",
    "WorkflowStatus",
    "split_runs",
    "status_of_run",
    "status_of_workflow",
]


class WorkflowStatus(enum.StrEnum):
    """The status of a workflow run; the values are the lower-case names used in storage, the CLI and JSON."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"
    #: Open, but its code cannot make progress (see ``WorkflowBlocked``); it waits for code that fits.
    BLOCKED = "blocked"
    #: Open, paused by an operator (see ``WorkflowPaused``).
    PAUSED = "paused"
    #: Closed by a reset: a new run of the workflow goes on from a copy of its history.
    RESET = "reset"

    @property
    def is_closed(self) -> bool:
        """True once the run has its terminal event (every status but RUNNING, BLOCKED and PAUSED)."""
        return self not in _OPEN

    @property
    def is_open(self) -> bool:
        """True while the run has no terminal event: RUNNING, BLOCKED or PAUSED."""
        return self in _OPEN


#: The statuses of a run without a terminal event.
OPEN_STATUSES: Final[frozenset[WorkflowStatus]] = frozenset(
    {WorkflowStatus.RUNNING, WorkflowStatus.BLOCKED, WorkflowStatus.PAUSED}
)
_OPEN = OPEN_STATUSES

#: The open status each of these events gives a run (the others leave it as it is).
OPEN_STATUS_AFTER: Final[dict[str, WorkflowStatus]] = {
    WorkflowBlocked.__name__: WorkflowStatus.BLOCKED,
    WorkflowUnblocked.__name__: WorkflowStatus.RUNNING,
    WorkflowPaused.__name__: WorkflowStatus.PAUSED,
    WorkflowResumed.__name__: WorkflowStatus.RUNNING,
}


#: The status each terminal event type (by ``type`` name) closes a run with.
TERMINAL_STATUS: Final[dict[str, WorkflowStatus]] = {
    WorkflowCompleted.__name__: WorkflowStatus.COMPLETED,
    WorkflowFailed.__name__: WorkflowStatus.FAILED,
    WorkflowCancelled.__name__: WorkflowStatus.CANCELLED,
    WorkflowTerminated.__name__: WorkflowStatus.TERMINATED,
    WorkflowTimedOut.__name__: WorkflowStatus.TIMED_OUT,
    WorkflowContinuedAsNew.__name__: WorkflowStatus.CONTINUED_AS_NEW,
    WorkflowReset.__name__: WorkflowStatus.RESET,
}

if frozenset(TERMINAL_STATUS) != terminal_event_types():  # pragma: no cover - guards the contract
    raise RuntimeError(
        f"TERMINAL_STATUS {sorted(TERMINAL_STATUS)} disagrees with the terminal events {sorted(terminal_event_types())}"
    )


def status_of_run(events: Sequence[Event]) -> WorkflowStatus:
    """The status of one run, from its history slice (a ``WorkflowStarted`` and the events after it).

    RUNNING until the run has a terminal event (BLOCKED or PAUSED after a ``WorkflowBlocked`` or
    ``WorkflowPaused`` until the event that ends it); then the terminal event decides. Non-terminal events recorded
    after the terminal one do not change the status. Raises ValueError for a slice that is not one run: empty,
    not starting with ``WorkflowStarted``, holding a second ``WorkflowStarted`` or a second terminal event.
    """
    if not events:
        raise ValueError("a run's history cannot be empty")
    first = events[0]
    if not isinstance(first, WorkflowStarted):
        raise ValueError(f"a run's history must start with WorkflowStarted, not {first.type}")
    status = WorkflowStatus.RUNNING
    for event in events[1:]:
        if isinstance(event, WorkflowStarted):
            raise ValueError(
                f"workflow {event.workflow_id!r}: WorkflowStarted at seq {event.seq} inside a run; "
                "use split_runs or status_of_workflow for a whole history"
            )
        closed = TERMINAL_STATUS.get(event.type)
        if closed is not None:
            if status.is_closed:
                raise ValueError(
                    f"workflow {event.workflow_id!r}: second terminal event {event.type} at seq {event.seq} "
                    f"in a run already {status}"
                )
            status = closed
        elif not status.is_closed:
            status = OPEN_STATUS_AFTER.get(event.type, status)
    return status


def split_runs(events: Sequence[Event]) -> list[list[Event]]:
    """Cut a workflow's history into runs: each from one ``WorkflowStarted`` up to (not including) the next.

    An empty history gives ``[]``; a history whose first event is not ``WorkflowStarted`` raises ValueError.
    """
    runs: list[list[Event]] = []
    for event in events:
        if isinstance(event, WorkflowStarted):
            runs.append([event])
        elif not runs:
            raise ValueError(f"a workflow's history must start with WorkflowStarted, not {event.type}")
        else:
            runs[-1].append(event)
    return runs


def status_of_workflow(events: Sequence[Event]) -> WorkflowStatus:
    """The status of a workflow from its whole (multi-run) history: the status of its last run.

    Raises ValueError for an empty history or one that does not start with ``WorkflowStarted``.
    """
    runs = split_runs(events)
    if not runs:
        raise ValueError("a workflow's history cannot be empty")
    return status_of_run(runs[-1])
