"""The rules of one append: validation against the run record, stamping, and the state it derives.

:func:`apply_request` validates one append against the workflow's current run record and returns what it
derives (the stamped and encoded events as history rows, the new run record, the timer-row operations, the new
runs to index); :mod:`aion.store._plan` chains the appends of a batch and has the fast path of the usual one.
Both stores apply the plan inside their write transaction. Keeping the derivation pure and in one place is what
makes the two implementations agree. This module never touches a store, and never reads the clock: the time
of an append is the caller's ``now``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn

from aion._codec import DEFAULT_PAYLOAD_LIMIT, encode_event_body, encode_time, is_plain_event_type, stamp_event
from aion._ids import validate_run_id
from aion.errors import (
    InvalidArgumentError,
    PayloadTooLargeError,
    SequenceConflictError,
    WorkflowAlreadyStartedError,
    WorkflowNotRunningError,
)
from aion.events import (
    ActivityCancelled,
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    Event,
    SearchAttributesUpserted,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    WorkflowBlocked,
    WorkflowPaused,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowUnblocked,
)
from aion.status import OPEN_STATUS_AFTER, OPEN_STATUSES, TERMINAL_STATUS, WorkflowStatus
from aion.store._checks import check_aware, check_key, check_name
from aion.store._types import (
    ACTIVITY_RETRY,
    EXECUTION_TIMEOUT,
    RUN_TIMEOUT,
    TIMER,
    RunInfo,
)

#: Longest workflow type name and run id, in UTF-8 bytes (they are parts of LMDB keys, at most 511 bytes).
MAX_NAME_BYTES = 200

#: Default largest encoded event: room for one payload at the codec's limit plus the event's other fields.
DEFAULT_MAX_EVENT_BYTES = 2 * DEFAULT_PAYLOAD_LIMIT

_ACTIVITY_EVENTS = (ActivityStarted, ActivityCompleted, ActivityCancelled, ActivityFailed)
#: Activity events that may end a wait for a retry whatever their attempt (a cancellation, a deadline's failure).
_MAY_FOLLOW_A_RETRY_ROW = (ActivityCancelled, ActivityFailed)
#: ``WorkflowStatus.RUNNING``: a module constant is a much cheaper load than an enum member on the hot path.
_RUNNING: Final = WorkflowStatus.RUNNING


@dataclass(frozen=True)
class TimerPut:
    """Add (or move) the timer row ``(kind, key)`` of the workflow to ``fire_at``."""

    kind: str
    key: int
    fire_at: datetime


@dataclass(frozen=True)
class TimerDelete:
    """Remove the timer row ``(kind, key)`` of the workflow, if present."""

    kind: str
    key: int


@dataclass(frozen=True)
class TimerClear:
    """Remove every timer row of the workflow (its run closed)."""


TimerOp = TimerPut | TimerDelete | TimerClear


@dataclass(slots=True)
class Applied:
    """The outcome of one validated append, ready to be written."""

    workflow_id: str
    events: list[Event]
    encoded: Sequence[bytes]
    #: The run record after the append (``None`` only for an empty append to an unknown workflow). Its
    #: ``head_seq`` is not kept current: ``head`` is the workflow's head.
    run: RunInfo | None
    timer_ops: Sequence[TimerOp] = ()
    #: ``(run_id, first_seq)`` of every run the append starts.
    new_runs: Sequence[tuple[str, int]] = ()
    #: True when the run record changed in more than its head (a start, a close, search attributes).
    run_changed: bool = True
    #: The workflow's head after the append.
    head: int = 0


def evolve(run: RunInfo, **changes: Any) -> RunInfo:
    """A copy of the frozen ``run`` with ``changes``: ``dataclasses.replace`` without re-running ``__init__``
    (this is on the append hot path; RunInfo has no ``__post_init__`` and no slots)."""
    new = object.__new__(RunInfo)
    new.__dict__.update(run.__dict__)
    new.__dict__.update(changes)
    return new


_PLAIN_EVENTS: dict[type[Event], bool] = {}
_new_object = object.__new__
_set_attribute = object.__setattr__


def stamp(event: Event, seq: int, recorded_at: datetime) -> Event:
    """A copy of the frozen ``event`` with ``seq`` and ``recorded_at``: ``dataclasses.replace`` without
    re-running ``__init__`` when that is equivalent (this is on the append hot path)."""
    cls = type(event)
    plain = _PLAIN_EVENTS.get(cls)
    if plain is None:
        plain = _PLAIN_EVENTS[cls] = is_plain_event_type(cls)
    if not plain:
        return dataclasses.replace(event, seq=seq, recorded_at=recorded_at)
    fields = event.__dict__.copy()
    fields["seq"] = seq
    fields["recorded_at"] = recorded_at
    new = _new_object(cls)
    _set_attribute(new, "__dict__", fields)
    return new


def with_head(run: RunInfo, head: int) -> RunInfo:
    """``run`` with ``head_seq`` set to ``head`` (the same object when it already is): for the run records whose
    stored or planned ``head_seq`` is not kept current."""
    return run if run.head_seq == head else evolve(run, head_seq=head)


_SPECIAL_EVENTS: Final = (
    WorkflowStarted,
    WorkflowBlocked,
    WorkflowUnblocked,
    WorkflowPaused,
    WorkflowResumed,
    TimerStarted,
    TimerFired,
    TimerCancelled,
    SearchAttributesUpserted,
    *_ACTIVITY_EVENTS,
)
#: Event class -> True when appending it derives nothing (no run change, no timer row): see apply_request.
_ORDINARY: dict[type[Event], bool] = {}
#: Event class -> True when it is ordinary and :func:`stamp` may copy its ``__dict__``: the fast path's events.
FAST_EVENTS: dict[type[Event], bool] = {}


def _is_ordinary(cls: type[Event]) -> bool:
    return not issubclass(cls, _SPECIAL_EVENTS) and not cls.terminal


def _refuse_without_running_run(workflow_id: str, run: RunInfo | None, event: Event) -> NoReturn:
    if run is None:
        raise InvalidArgumentError(
            f"the history of workflow {workflow_id!r} must start with WorkflowStarted, not {event.type}"
        )
    raise WorkflowNotRunningError(
        f"workflow {workflow_id!r} run {run.run_id} is {run.status}; cannot append {event.type}"
    )


def refuse_size(data: bytes, max_event_bytes: int, event: Event) -> NoReturn:
    raise PayloadTooLargeError(len(data), max_event_bytes, what=f"{event.type} event (seq {event.seq})")


def apply_request(
    workflow_id: str,
    events: Sequence[Event],
    expected_head: int,
    *,
    current: RunInfo | None,
    now: datetime,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    bodies: Sequence[bytes | None] | None = None,
    time_bytes: bytes | None = None,
    head: int | None = None,
) -> Applied:
    """Validate one append against the workflow's ``current`` run record, stamp and encode its events.

    Raises the typed error that refuses the append; writes nothing itself. ``workflow_id`` must have been
    validated with :func:`check_workflow_id`. ``bodies`` (see ``AppendRequest.bodies``) are the events' bodies
    encoded ahead; an event without one is encoded here. ``time_bytes`` is ``encode_time(now)`` if the caller
    has it. ``head`` is the workflow's head when ``current.head_seq`` is not current (see ``Applied.run``).
    """
    if type(expected_head) is not int and (isinstance(expected_head, bool) or not isinstance(expected_head, int)):
        raise InvalidArgumentError(f"expected_head must be a non-negative int, not {expected_head!r}")
    if expected_head < 0:
        raise InvalidArgumentError(f"expected_head must be a non-negative int, not {expected_head!r}")
    if head is None:
        head = current.head_seq if current is not None else 0
    if expected_head != head:
        raise SequenceConflictError(workflow_id, expected_head, head)
    if type(events) is not tuple and (isinstance(events, (str, bytes)) or not isinstance(events, Sequence)):
        raise InvalidArgumentError("events must be a sequence of events")
    run = current
    stamped: list[Event] = []
    encoded: list[bytes] = []
    timer_ops: list[TimerOp] = []
    new_runs: list[tuple[str, int]] = []
    attributes: dict[str, Any] | None = None
    seq = head
    if bodies is not None and len(bodies) != len(events):
        bodies = None
    if time_bytes is None:
        time_bytes = encode_time(now)
    for index, given in enumerate(events):
        if not isinstance(given, Event):
            raise InvalidArgumentError(f"not an event: {given!r}")
        if given.workflow_id != workflow_id:
            raise InvalidArgumentError(f"event {given.type} is for workflow {given.workflow_id!r}, not {workflow_id!r}")
        seq += 1
        event = stamp(given, seq, now)
        kind = type(event)
        ordinary = _ORDINARY.get(kind)
        if ordinary is None:
            ordinary = _ORDINARY[kind] = _is_ordinary(kind)
            FAST_EVENTS[kind] = ordinary and is_plain_event_type(kind)
        if ordinary:  # the usual event: it only needs an open run
            if run is None or (run.status is not _RUNNING and run.status not in OPEN_STATUSES):
                _refuse_without_running_run(workflow_id, run, event)
        elif isinstance(event, WorkflowStarted):
            if run is not None and run.status in OPEN_STATUSES:
                raise WorkflowAlreadyStartedError(workflow_id, run.run_id)
            check_name(event.workflow_type, "workflow type")
            validate_run_id(event.run_id)
            if any(run_id == event.run_id for run_id, _ in new_runs):
                raise InvalidArgumentError(f"run id {event.run_id!r} is used twice")
            attributes = dict(event.search_attributes or {})
            run = RunInfo(
                workflow_id=workflow_id,
                run_id=event.run_id,
                workflow_type=event.workflow_type,
                status=WorkflowStatus.RUNNING,
                head_seq=seq,
                run_first_seq=seq,
                start_time=now,
                search_attributes=attributes,
                parent_run_id=event.parent_run_id,
                first_run_id=event.first_run_id or event.run_id,
                parent_workflow_id=event.parent_workflow_id,
                parent_workflow_run_id=event.parent_workflow_run_id,
                run_number=run.run_number + 1 if run is not None else 1,
                workflow_version=event.workflow_version,
                memo=event.memo,
            )
            new_runs.append((event.run_id, seq))
            if event.run_timeout is not None:
                timer_ops.append(TimerPut(RUN_TIMEOUT, 0, now + timedelta(seconds=event.run_timeout)))
            if event.execution_deadline is not None:
                deadline = check_aware(event.execution_deadline, "execution_deadline")
                timer_ops.append(TimerPut(EXECUTION_TIMEOUT, 0, deadline))
            elif event.execution_timeout is not None:
                timer_ops.append(TimerPut(EXECUTION_TIMEOUT, 0, now + timedelta(seconds=event.execution_timeout)))
        elif run is None or run.status not in OPEN_STATUSES:
            _refuse_without_running_run(workflow_id, run, event)
        elif kind.__name__ in OPEN_STATUS_AFTER:
            run = evolve(run, status=OPEN_STATUS_AFTER[kind.__name__])
        elif event.terminal:
            run = evolve(run, status=TERMINAL_STATUS[event.type], close_time=now)
            timer_ops.append(TimerClear())
        elif isinstance(event, TimerStarted):
            timer_id = check_key(event.timer_id, "timer_id")
            timer_ops.append(TimerPut(TIMER, timer_id, check_aware(event.fire_at, "fire_at")))
        elif isinstance(event, (TimerFired, TimerCancelled)):
            timer_ops.append(TimerDelete(TIMER, check_key(event.timer_id, "timer_id")))
        elif isinstance(event, _ACTIVITY_EVENTS):
            activity_id = check_key(event.activity_id, "activity_id")
            # A retry row is put only by a failure that schedules the next attempt, so a first attempt's start or
            # completion has none to delete (most activities: a lookup fewer each, and one GIL hand-over).
            if isinstance(event, _MAY_FOLLOW_A_RETRY_ROW) or event.attempt != 1:
                timer_ops.append(TimerDelete(ACTIVITY_RETRY, activity_id))
            if isinstance(event, ActivityFailed) and event.next_attempt_at is not None:
                fire_at = check_aware(event.next_attempt_at, "next_attempt_at")
                timer_ops.append(TimerPut(ACTIVITY_RETRY, activity_id, fire_at))
        elif isinstance(event, SearchAttributesUpserted):
            if attributes is None:
                attributes = dict(run.search_attributes)
            for name, value in event.attributes.items():
                if value is None:
                    attributes.pop(name, None)
                else:
                    attributes[name] = value
            run = evolve(run, search_attributes=attributes)
        body = bodies[index] if bodies is not None else None
        data = stamp_event(encode_event_body(event) if body is None else body, seq, time_bytes)
        if len(data) > max_event_bytes:
            refuse_size(data, max_event_bytes, event)
        encoded.append(data)
        stamped.append(event)
    return Applied(workflow_id, stamped, encoded, run, timer_ops, new_runs, run is not current, seq)
