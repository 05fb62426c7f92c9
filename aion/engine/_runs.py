"""The engine's in-memory view of one run, always rebuilt from the run's history."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka

from aion import events as ev
from aion.workflow._commands import Key, anchor_key


@dataclass
class PendingActivity:
    """An activity that was scheduled and has no final outcome yet, and where its attempts stand."""

    activity_id: int
    activity_type: str
    args: list[Any]
    options: dict[str, Any]
    attempt: int = 1
    #: When ``ActivityScheduled`` was recorded (epoch seconds): the start of the schedule-to-close timeout.
    scheduled_at: float | None = None
    #: The attempt being dispatched or run now, and the worker running it.
    task_id: int | None = None
    worker_id: str | None = None
    heartbeat_details: Any = None
    last_heartbeat: float | None = None
    cancel_requested: bool = False
    #: When a backoff ends (epoch seconds), while the activity waits for its next attempt.
    next_attempt_at: float | None = None
    #: From history after an engine restart: an attempt was started and never finished.
    lost_attempt: int | None = None

    def schedule_deadline(self) -> float | None:
        """When the schedule-to-close timeout ends (epoch seconds), if there is one."""
        timeout = self.options.get("schedule_to_close_timeout")
        if timeout is None or self.scheduled_at is None:
            return None
        return float(self.scheduled_at + timeout)


@dataclass
class Run:
    """A run the engine is working on: what is pending, what was issued, and its process's mailbox.

    ``head`` counts appends already sent to the recorder (the core is the only one appending for a workflow,
    so it can pipeline them). ``delivered`` is the last sequence number the process has seen, so every recorded
    arrival reaches it exactly once.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    head: int
    issued: set[Key] = field(default_factory=set)
    activities: dict[int, PendingActivity] = field(default_factory=dict)
    timers: dict[int, float] = field(default_factory=dict)
    closing: bool = False
    channel: Any = None
    delivered: int = 0
    queries: dict[int, pykka.Future[Any]] = field(default_factory=dict)
    waiting_queries: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def from_history(cls, history: Sequence[ev.Event]) -> Run:
        """The run whose history (``WorkflowStarted`` first) is ``history``."""
        started = history[0]
        assert isinstance(started, ev.WorkflowStarted)
        run = cls(started.workflow_id, started.run_id, started.workflow_type, head=history[-1].seq)
        for event in history:
            key = anchor_key(event)
            if key is not None:
                run.issued.add(key)
            match event:
                case ev.ActivityScheduled(activity_id=aid, activity_type=name, input=args, options=options):
                    run.activities[aid] = PendingActivity(
                        aid, name, list(args), dict(options), scheduled_at=event.recorded_at.timestamp()
                    )
                case ev.ActivityStarted(activity_id=aid, attempt=attempt) if aid in run.activities:
                    run.activities[aid].attempt = attempt
                    run.activities[aid].lost_attempt = attempt
                    run.activities[aid].next_attempt_at = None
                case ev.ActivityFailed(activity_id=aid, attempt=attempt, next_attempt_at=next_at):
                    if next_at is None:
                        run.activities.pop(aid, None)
                    elif aid in run.activities:
                        pending = run.activities[aid]
                        pending.attempt = attempt + 1
                        pending.next_attempt_at = next_at.timestamp()
                        pending.lost_attempt = None
                        pending.heartbeat_details = event.heartbeat_details
                case ev.ActivityCancelRequested(activity_id=aid) if aid in run.activities:
                    run.activities[aid].cancel_requested = True
                case ev.ActivityCompleted(activity_id=aid) | ev.ActivityCancelled(activity_id=aid):
                    run.activities.pop(aid, None)
                case ev.TimerStarted(timer_id=tid, fire_at=fire_at):
                    run.timers[tid] = fire_at.timestamp()
                case ev.TimerFired(timer_id=tid) | ev.TimerCancelled(timer_id=tid):
                    run.timers.pop(tid, None)
            if event.terminal:
                run.closing = True
        return run


_query_ids = itertools.count(1)


def next_query_id() -> int:
    """A process-wide unique query id."""
    return next(_query_ids)
