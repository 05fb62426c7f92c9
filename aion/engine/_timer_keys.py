"""What the core arms in its timer service: one typed key per kind of deadline."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TimerKind(StrEnum):
    """Why the core wants to be woken."""

    #: A workflow's durable timer (``workflow.sleep``, a signal wait's timeout).
    TIMER = "timer"
    #: The run's own timeouts (``run_timeout``, ``execution_timeout``).
    RUN_TIMEOUT = "run_timeout"
    EXECUTION_TIMEOUT = "execution_timeout"
    #: An activity's backoff ends, or its schedule-to-close timeout passes.
    RETRY = "retry"
    SCHEDULE_TO_CLOSE = "schedule_to_close"
    #: Deadlines of one attempt of an activity (``attempt`` names the attempt's task).
    START_TO_CLOSE = "start_to_close"
    HEARTBEAT = "heartbeat"
    CANCEL_GRACE = "cancel_grace"
    #: Residency looks again for runs to evict (no workflow).
    RESIDENCY = "residency"
    #: A task queue's rate limit lets its next attempt through (``workflow_id`` holds the queue's name).
    RATE_LIMIT = "rate_limit"


#: The kinds that close the run when they come due, with the ``WorkflowTimedOut.kind`` they record.
RUN_DEADLINES = {TimerKind.RUN_TIMEOUT: "run", TimerKind.EXECUTION_TIMEOUT: "execution"}
#: The kinds that belong to one attempt of an activity.
ATTEMPT_DEADLINES = (TimerKind.START_TO_CLOSE, TimerKind.HEARTBEAT, TimerKind.CANCEL_GRACE)


@dataclass(frozen=True, slots=True)
class TimerKey:
    """One armed deadline: its kind, the run it concerns, and the timer or activity ``item`` it is for."""

    kind: TimerKind
    workflow_id: str = ""
    run_id: str = ""
    #: The workflow timer's id, or the activity's id.
    item: int = 0
    #: The task id of the attempt, for the deadlines of one attempt.
    attempt: int = 0


#: The one key of residency's rechecks.
RESIDENCY_RECHECK = TimerKey(TimerKind.RESIDENCY)
