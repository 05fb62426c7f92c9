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
    """An activity that was scheduled and has no final outcome yet."""

    activity_id: int
    activity_type: str
    args: list[Any]
    options: dict[str, Any]
    attempt: int = 1


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
                    run.activities[aid] = PendingActivity(aid, name, list(args), dict(options))
                case ev.ActivityFailed(activity_id=aid, attempt=attempt, next_attempt_at=next_at):
                    if next_at is None:
                        run.activities.pop(aid, None)
                    elif aid in run.activities:
                        run.activities[aid].attempt = attempt + 1
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
