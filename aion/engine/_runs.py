"""The engine's in-memory view of one run: the state its history rebuilds, and the link to its process.

:class:`RunState` is what :meth:`RunState.from_history` rebuilds from the run's events (what is pending, what was
issued, whether it is closing): after an engine restart or a failed append, it is rebuilt, never patched.
:class:`ProcessLink` is the run's current workflow process as the core sees it (its channel and how far it has
been sent and has answered); every new process of the run starts a new link. :class:`Run` holds the two.

The engine keeps one :class:`Run` for every open run, also for the many that only wait (for a signal, a child, a
timer days away) without a process, so these records are kept small: slotted, and the collections a waiting run
seldom needs (what it issued, its queries) made only when first used.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka

from aion import events as ev
from aion._definitions import version_of_run
from aion.engine._options import ActivityOptions, StartOptions
from aion.engine._timer_keys import TimerKind
from aion.workflow._commands import Key, anchor_key


@dataclass(slots=True)
class PendingActivity:
    """An activity that was scheduled and has no final outcome yet, and where its attempts stand."""

    activity_id: int
    activity_type: str
    args: list[Any]
    options: ActivityOptions
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
    #: The ``ActivityStarted`` of a first attempt running on a local worker, recorded with its outcome (one append
    #: instead of two); ``None`` once recorded, and for every other attempt (see ``_activity_manager``).
    unrecorded_start: ev.ActivityStarted | None = None

    def schedule_deadline(self) -> float | None:
        """When the schedule-to-close timeout ends (epoch seconds), if there is one."""
        timeout = self.options.schedule_to_close_timeout
        if timeout is None or self.scheduled_at is None:
            return None
        return float(self.scheduled_at + timeout)


@dataclass(slots=True)
class ChildRef:
    """A child workflow this run started whose outcome it has not recorded yet."""

    child_id: int
    workflow_id: str
    run_id: str
    workflow_type: str
    args: list[Any]
    parent_close_policy: str
    options: StartOptions = field(default_factory=StartOptions)


@dataclass(slots=True)
class PendingSignal:
    """A signal this run sent to another workflow whose delivery it has not recorded yet."""

    signal_id: int
    target_workflow_id: str
    name: str
    payload: Any


@dataclass(slots=True)
class RunState:
    """What a run's history says of it: its identity, its open work, and whether it is closing.

    ``head`` counts appends already sent to the recorder (the core is the only one appending for a workflow, so
    it can pipeline them): rebuilt from history it is the last recorded sequence number. The core also updates
    this state ahead of the store (a command it is recording, ``closing`` once a terminal event is on its way);
    rebuilding it from history drops what did not become durable.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    head: int
    #: The run's ``WorkflowStarted`` (not stamped yet while it is on its way to the store), until the run is
    #: first evicted (:meth:`shed_started`): then only what the engine keeps needing of it stays, below.
    started: ev.WorkflowStarted | None = None
    cancel_requested: bool = False
    closing: bool = False
    #: Its code cannot make progress (``WorkflowBlocked`` and no ``WorkflowUnblocked`` after it).
    blocked: bool = False
    #: An operator paused it (``WorkflowPaused`` and no ``WorkflowResumed`` after it).
    paused: bool = False
    # What the properties of the same meaning give, None until first used: most runs have few kinds of open
    # work, and an empty dict or set in each of 100,000 waiting runs is memory for nothing.
    issued_keys: set[Key] | None = field(default=None, repr=False)
    child_refs: dict[int, ChildRef] | None = field(default=None, repr=False)
    sent_signals: dict[int, PendingSignal] | None = field(default=None, repr=False)
    pending_activities: dict[int, PendingActivity] | None = field(default=None, repr=False)
    timer_fires: dict[int, float] | None = field(default=None, repr=False)
    upserts: dict[str, Any] | None = field(default=None, repr=False)
    # What is kept of ``started`` once it is shed (see the properties of the same meaning).
    shed_version: int = field(default=0, repr=False)
    shed_parent: tuple[str, str] | None = field(default=None, repr=False)
    shed_started_at: float = field(default=0.0, repr=False)

    @property
    def issued(self) -> set[Key]:
        """The anchor keys of the commands recorded for the run (a replay's repeats are not recorded twice)."""
        if self.issued_keys is None:
            self.issued_keys = set()
        return self.issued_keys

    @property
    def children(self) -> dict[int, ChildRef]:
        """The child workflows it started whose outcome it has not recorded yet, by child id."""
        if self.child_refs is None:
            self.child_refs = {}
        return self.child_refs

    @property
    def signals_out(self) -> dict[int, PendingSignal]:
        """The signals it sent to other workflows whose delivery it has not recorded yet, by signal id."""
        if self.sent_signals is None:
            self.sent_signals = {}
        return self.sent_signals

    @property
    def activities(self) -> dict[int, PendingActivity]:
        """Its activities without a final outcome yet, by activity id."""
        if self.pending_activities is None:
            self.pending_activities = {}
        return self.pending_activities

    @property
    def timers(self) -> dict[int, float]:
        """Its pending durable timers: timer id -> when it fires (epoch seconds)."""
        if self.timer_fires is None:
            self.timer_fires = {}
        return self.timer_fires

    @property
    def upserted(self) -> dict[str, Any]:
        """The search attributes its code upserted (a ``None`` value removed one), in order."""
        if self.upserts is None:
            self.upserts = {}
        return self.upserts

    def waiting_on(self) -> tuple[Iterable[float], Iterable[PendingActivity]]:
        """When its pending timers fire and its pending activities, without making the collections."""
        return (self.timer_fires or {}).values(), (self.pending_activities or {}).values()

    def search_attributes(self, initial: dict[str, Any]) -> dict[str, Any]:
        """The run's search attributes now: ``initial`` (those its ``WorkflowStarted`` records), then its upserts
        (continue-as-new keeps them)."""
        attributes = dict(initial)
        for name, value in (self.upserts or {}).items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        return attributes

    def shed_started(self) -> None:
        """Keep of the ``WorkflowStarted`` only what the engine needs while the run waits (its version, parent and
        start time): a run evicted from its process may wait for days, and the engine holds 100,000 such. The
        rest is in the store (``aion.store.read_started``)."""
        started = self.started
        if started is None:
            return
        self.shed_version = self.version
        self.shed_parent = self.parent
        self.shed_started_at = started.recorded_at.timestamp()
        self.started = None

    @classmethod
    def from_history(cls, history: Sequence[ev.Event]) -> RunState:
        """The state of the run whose history (``WorkflowStarted`` first) is ``history``."""
        started = history[0]
        assert isinstance(started, ev.WorkflowStarted)
        state = cls(started.workflow_id, started.run_id, started.workflow_type, head=history[-1].seq, started=started)
        for event in history:
            key = anchor_key(event)
            if key is not None:
                state.issued.add(key)
            state._apply(event)
            if event.terminal:
                state.closing = True
        return state

    def _apply(self, event: ev.Event) -> None:
        match event:
            case ev.SearchAttributesUpserted(attributes=attributes):
                self.upserted.update(attributes)
            case ev.ActivityScheduled(activity_id=aid, activity_type=name, input=args, options=options):
                options_ = ActivityOptions.from_dict(options)
                scheduled_at = event.recorded_at.timestamp()
                self.activities[aid] = PendingActivity(aid, name, list(args), options_, scheduled_at=scheduled_at)
            case ev.ActivityStarted(activity_id=aid, attempt=attempt) if aid in self.activities:
                self.activities[aid].attempt = attempt
                self.activities[aid].lost_attempt = attempt
                self.activities[aid].next_attempt_at = None
            case ev.ActivityFailed(activity_id=aid, attempt=attempt, next_attempt_at=next_at):
                if next_at is None:
                    self.activities.pop(aid, None)
                elif aid in self.activities:
                    pending = self.activities[aid]
                    pending.attempt = attempt + 1
                    pending.next_attempt_at = next_at.timestamp()
                    pending.lost_attempt = None
                    pending.heartbeat_details = event.heartbeat_details
            case ev.ActivityCancelRequested(activity_id=aid) if aid in self.activities:
                self.activities[aid].cancel_requested = True
            case ev.ActivityCompleted(activity_id=aid) | ev.ActivityCancelled(activity_id=aid):
                self.activities.pop(aid, None)
            case ev.TimerStarted(timer_id=tid, fire_at=fire_at):
                self.timers[tid] = fire_at.timestamp()
            case ev.TimerFired(timer_id=tid) | ev.TimerCancelled(timer_id=tid):
                self.timers.pop(tid, None)
            case ev.ChildWorkflowStarted():
                self.children[event.child_id] = ChildRef(
                    event.child_id,
                    event.child_workflow_id,
                    event.child_run_id,
                    event.workflow_type,
                    list(event.input),
                    event.parent_close_policy,
                    StartOptions.from_dict(event.options),
                )
            case ev.ChildWorkflowCompleted(child_id=cid) | ev.ChildWorkflowFailed(child_id=cid):
                self.children.pop(cid, None)
            case ev.ChildWorkflowCancelled(child_id=cid):
                self.children.pop(cid, None)
            case ev.SignalExternalSent(signal_id=sid, target_workflow_id=target, name=name, payload=payload):
                self.signals_out[sid] = PendingSignal(sid, target, name, payload)
            case ev.SignalExternalDelivered(signal_id=sid):
                self.signals_out.pop(sid, None)
            case ev.WorkflowCancelRequested():
                self.cancel_requested = True
            case ev.WorkflowBlocked() | ev.WorkflowUnblocked():
                self.blocked = isinstance(event, ev.WorkflowBlocked)
            case ev.WorkflowPaused() | ev.WorkflowResumed():
                self.paused = isinstance(event, ev.WorkflowPaused)

    @property
    def version(self) -> int:
        """The workflow version the run is pinned to (recorded in its ``WorkflowStarted``)."""
        started = self.started
        return self.shed_version if started is None else version_of_run(started.workflow_version)

    @property
    def started_at(self) -> float:
        """When its ``WorkflowStarted`` was recorded (epoch seconds)."""
        started = self.started
        return self.shed_started_at if started is None else started.recorded_at.timestamp()

    @property
    def held(self) -> bool:
        """Blocked or paused: the run gets no process until that ends."""
        return self.blocked or self.paused

    @property
    def parent(self) -> tuple[str, str] | None:
        """``(workflow_id, run_id)`` of the parent when this run belongs to a child workflow."""
        started = self.started
        if started is None:
            return self.shed_parent
        if started.parent_workflow_id is None or started.parent_workflow_run_id is None:
            return None
        return started.parent_workflow_id, started.parent_workflow_run_id

    def deadlines(self) -> list[tuple[TimerKind, float]]:
        """The run's own timeouts as ``(kind, epoch seconds)``: the run timeout and the execution timeout (read
        when the run begins, before its ``WorkflowStarted`` can be shed)."""
        started = self.started
        if started is None:
            return []
        found = []
        if started.run_timeout is not None:
            found.append((TimerKind.RUN_TIMEOUT, started.recorded_at.timestamp() + started.run_timeout))
        if started.execution_deadline is not None:
            found.append((TimerKind.EXECUTION_TIMEOUT, started.execution_deadline.timestamp()))
        return found


@dataclass(slots=True)
class ProcessLink:
    """The run's current workflow process as the core sees it.

    ``delivered`` is the last sequence number the process has seen, so that every recorded arrival reaches it
    exactly once; ``sent`` the last one it was sent to apply (the end of its history, then each arrival) and
    ``acked`` the last one it has applied and reported on: when they are equal, its code is blocked.
    """

    #: How many processes the run had before this one (it was evicted, or replaced after a failed append): each
    #: process has its own token (``Run.process_token``), so nothing from an earlier one is taken as this one's.
    incarnation: int = 0
    channel: Any = None
    delivered: int = 0
    sent: int = 0
    acked: int = 0
    #: What ``queries`` and ``waiting_queries`` give, None until first used (most runs are never queried).
    sent_queries: dict[int, pykka.Future[Any]] | None = field(default=None, repr=False)
    queued_queries: list[tuple[int, dict[str, Any]]] | None = field(default=None, repr=False)

    @property
    def queries(self) -> dict[int, pykka.Future[Any]]:
        """Queries sent to the process and not answered yet (query id -> the caller's future)."""
        queries = self.sent_queries
        if queries is None:
            queries = self.sent_queries = {}
        return queries

    @property
    def waiting_queries(self) -> list[tuple[int, dict[str, Any]]]:
        """Queries waiting for the process to come up, in arrival order."""
        queued = self.queued_queries
        if queued is None:
            queued = self.queued_queries = []
        return queued

    def take_waiting_queries(self) -> list[tuple[int, dict[str, Any]]]:
        """The queries waiting for the process to come up, which no longer wait."""
        queued, self.queued_queries = self.queued_queries, None
        return queued or []

    @property
    def querying(self) -> bool:
        """Whether a query waits for an answer from the process, or for the process to come up."""
        return bool(self.sent_queries) or bool(self.queued_queries)

    def connected(self, channel: Any, seen: int) -> None:
        """The process came up and was sent the history up to ``seen``."""
        self.channel = channel
        self.delivered = self.sent = seen
        self.acked = 0


@dataclass(slots=True)
class Run:
    """A run the core works on: its state (from history) and the link to its process."""

    state: RunState
    link: ProcessLink = field(default_factory=ProcessLink)
    #: Closing by continue-as-new: requests for the workflow go to the successor run.
    continuing: bool = False
    #: How many times the run was rebuilt from the store after an append failed: an append sent before a
    #: rebuild fails as a consequence of the failure that caused it, and needs no rebuild of its own.
    generation: int = 0
    #: What the run's code last reported it waits on beyond its history (signal names, conditions: see
    #: ``WorkflowRuntime.waits``); ``None`` until a process of the run has reported. It is kept while the run
    #: is evicted: nothing has reached the code since it reported. Runs that wait on the same share one tuple
    #: (see ``shared_waits``).
    waits: tuple[str, ...] | None = None

    @property
    def workflow_id(self) -> str:
        """The run's workflow id."""
        return self.state.workflow_id

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.state.run_id

    @property
    def workflow_type(self) -> str:
        """The run's workflow type."""
        return self.state.workflow_type

    @property
    def process_token(self) -> str:
        """What names the run's current process among its supervisor's children (see ``run_child_id``): the
        run id, then a suffix per earlier process."""
        incarnation = self.link.incarnation
        return self.run_id if not incarnation else f"{self.run_id}.{incarnation}"


_query_ids = itertools.count(1)

#: The distinct waits reported (most runs of a type wait on the same few), each kept once; cleared when full.
_WAITS: dict[tuple[str, ...], tuple[str, ...]] = {}
_WAITS_SIZE = 4096


def shared_waits(waits: Sequence[str]) -> tuple[str, ...]:
    """``waits`` as a tuple shared by every run that reported the same (the engine may hold 100,000 runs that
    wait on one signal)."""
    key = tuple(waits)
    found = _WAITS.get(key)
    if found is None:
        if len(_WAITS) >= _WAITS_SIZE:
            _WAITS.clear()
        found = _WAITS[key] = key
    return found


def next_query_id() -> int:
    """A process-wide unique query id."""
    return next(_query_ids)
