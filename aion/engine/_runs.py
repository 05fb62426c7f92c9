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
class ChildRef:
    """A child workflow this run started whose outcome it has not recorded yet."""

    child_id: int
    workflow_id: str
    run_id: str
    workflow_type: str
    args: list[Any]
    parent_close_policy: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PendingSignal:
    """A signal this run sent to another workflow whose delivery it has not recorded yet."""

    signal_id: int
    target_workflow_id: str
    name: str
    payload: Any


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
    started: ev.WorkflowStarted | None = None
    issued: set[Key] = field(default_factory=set)
    children: dict[int, ChildRef] = field(default_factory=dict)
    signals_out: dict[int, PendingSignal] = field(default_factory=dict)
    cancel_requested: bool = False
    #: Closing by continue-as-new: requests for the workflow go to the successor run.
    continuing: bool = False
    activities: dict[int, PendingActivity] = field(default_factory=dict)
    timers: dict[int, float] = field(default_factory=dict)
    closing: bool = False
    channel: Any = None
    delivered: int = 0
    queries: dict[int, pykka.Future[Any]] = field(default_factory=dict)
    waiting_queries: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: The last sequence number sent to its process to apply (the end of its history, then each arrival), and
    #: the last one it has applied and reported on: when they are equal, its code is blocked.
    sent: int = 0
    acked: int = 0
    #: How many processes the run had before its current one (it was evicted, or resynced after an append
    #: failed): each process it gets has its own token (`process_token`).
    residency: int = 0
    #: How many times the run was rebuilt from the store after an append failed (see ``EngineCore._resync``).
    generation: int = 0

    @classmethod
    def from_history(cls, history: Sequence[ev.Event]) -> Run:
        """The run whose history (``WorkflowStarted`` first) is ``history``."""
        started = history[0]
        assert isinstance(started, ev.WorkflowStarted)
        run = cls(started.workflow_id, started.run_id, started.workflow_type, head=history[-1].seq, started=started)
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
                case ev.ChildWorkflowStarted():
                    run.children[event.child_id] = ChildRef(
                        event.child_id,
                        event.child_workflow_id,
                        event.child_run_id,
                        event.workflow_type,
                        list(event.input),
                        event.parent_close_policy,
                    )
                case ev.ChildWorkflowCompleted(child_id=cid) | ev.ChildWorkflowFailed(child_id=cid):
                    run.children.pop(cid, None)
                case ev.ChildWorkflowCancelled(child_id=cid):
                    run.children.pop(cid, None)
                case ev.SignalExternalSent(signal_id=sid, target_workflow_id=target, name=name, payload=payload):
                    run.signals_out[sid] = PendingSignal(sid, target, name, payload)
                case ev.SignalExternalDelivered(signal_id=sid):
                    run.signals_out.pop(sid, None)
                case ev.WorkflowCancelRequested():
                    run.cancel_requested = True
            if event.terminal:
                run.closing = True
        return run

    @property
    def process_token(self) -> str:
        """What names the run's current process among its supervisor's children (see ``run_child_id``): the
        run id, then a suffix per earlier process, so nothing from a process it was evicted from is taken as its own."""
        return self.run_id if not self.residency else f"{self.run_id}.{self.residency}"

    @property
    def parent(self) -> tuple[str, str] | None:
        """``(workflow_id, run_id)`` of the parent when this run belongs to a child workflow."""
        started = self.started
        if started is None or started.parent_workflow_id is None or started.parent_workflow_run_id is None:
            return None
        return started.parent_workflow_id, started.parent_workflow_run_id

    def deadlines(self) -> list[tuple[str, float]]:
        """The run's own timeouts as ``(kind, epoch seconds)``: ``run_timeout`` and ``execution_timeout``."""
        started = self.started
        if started is None:
            return []
        found = []
        if started.run_timeout is not None:
            found.append(("run_timeout", started.recorded_at.timestamp() + started.run_timeout))
        if started.execution_deadline is not None:
            found.append(("execution_timeout", started.execution_deadline.timestamp()))
        return found


_query_ids = itertools.count(1)


def next_query_id() -> int:
    """A process-wide unique query id."""
    return next(_query_ids)
