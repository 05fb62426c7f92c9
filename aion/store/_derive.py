"""Validation, stamping and derived state of one append: shared by every store implementation.

Both stores call :func:`plan_batch`, which validates each append against the workflow's current run record
(:func:`apply_request`, or its fast path for the usual append), and apply what it returns (the stamped and encoded
events as history rows, the run records, the timer-row operations, the new runs to index) inside their write
transaction. Keeping the derivation pure and in one place is what makes the two implementations agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, NoReturn

from aion._codec import DEFAULT_PAYLOAD_LIMIT, encode_event_body, encode_time, stamp_event
from aion._ids import validate_run_id, validate_workflow_id
from aion.errors import (
    AionError,
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
    WorkflowStarted,
)
from aion.status import TERMINAL_STATUS, WorkflowStatus
from aion.store._types import (
    ACTIVITY_RETRY,
    EXECUTION_TIMEOUT,
    RUN_TIMEOUT,
    TIMER,
    AppendRequest,
    RunInfo,
)

#: Longest workflow type name and run id, in UTF-8 bytes (they are parts of LMDB keys, at most 511 bytes).
MAX_NAME_BYTES = 200

#: Default largest encoded event: room for one payload at the codec's limit plus the event's other fields.
DEFAULT_MAX_EVENT_BYTES = 2 * DEFAULT_PAYLOAD_LIMIT

_ACTIVITY_EVENTS = (ActivityStarted, ActivityCompleted, ActivityCancelled, ActivityFailed)
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


def _plain(cls: type[Event]) -> bool:
    """True when a copy of the instance's ``__dict__`` is exactly what ``dataclasses.replace`` would build:
    no ``__post_init__``, no ``init=False`` field, no slots."""
    return (
        not hasattr(cls, "__post_init__")
        and "__slots__" not in cls.__dict__
        and dataclasses.is_dataclass(cls)
        and all(field.init for field in dataclasses.fields(cls))
    )


_PLAIN_EVENTS: dict[type[Event], bool] = {}
_new_object = object.__new__
_set_attribute = object.__setattr__


def stamp(event: Event, seq: int, recorded_at: datetime) -> Event:
    """A copy of the frozen ``event`` with ``seq`` and ``recorded_at``: ``dataclasses.replace`` without
    re-running ``__init__`` when that is equivalent (this is on the append hot path)."""
    cls = type(event)
    plain = _PLAIN_EVENTS.get(cls)
    if plain is None:
        plain = _PLAIN_EVENTS[cls] = _plain(cls)
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


def check_name(value: object, what: str) -> str:
    """Check a workflow type name or run id: a non-empty string without NUL, at most ``MAX_NAME_BYTES``."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, not {value!r}")
    if "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidArgumentError(f"{what} {value!r} is too long or contains NUL")
    return value


def check_aware(value: datetime, what: str) -> datetime:
    """Refuse a naive datetime: every time in the store is UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def parse_status(status: object) -> WorkflowStatus | None:
    """A status filter: ``None``, a ``WorkflowStatus`` or its string value (``InvalidArgumentError`` else)."""
    if status is None:
        return None
    try:
        return WorkflowStatus(str(status))
    except ValueError:
        raise InvalidArgumentError(f"unknown workflow status {status!r}") from None


def check_limit(limit: object) -> None:
    """A ``limit`` argument: ``None`` or a non-negative int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgumentError(f"limit must be a non-negative int or None, not {limit!r}")


def _check_key(key: object, what: str) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < 2**63:
        raise InvalidArgumentError(f"{what} must be a non-negative int, not {key!r}")
    return key


#: Workflow ids already found valid (the check is pure; every append checks its id): cleared when full.
_VALID_IDS: set[str] = set()
_VALID_IDS_SIZE: Final = 100_000


def check_workflow_id(workflow_id: object) -> str:
    """Validate a workflow id with the domain rules (``InvalidArgumentError``)."""
    if type(workflow_id) is str and workflow_id in _VALID_IDS:
        return workflow_id
    if not isinstance(workflow_id, str):
        raise InvalidArgumentError(f"workflow id must be a string, not {type(workflow_id).__name__}")
    validate_workflow_id(workflow_id)
    if len(_VALID_IDS) >= _VALID_IDS_SIZE:
        _VALID_IDS.clear()
    _VALID_IDS.add(workflow_id)
    return workflow_id


_SPECIAL_EVENTS: Final = (
    WorkflowStarted,
    TimerStarted,
    TimerFired,
    TimerCancelled,
    SearchAttributesUpserted,
    *_ACTIVITY_EVENTS,
)
#: Event class -> True when appending it derives nothing (no run change, no timer row): see apply_request.
_ORDINARY: dict[type[Event], bool] = {}
#: Event class -> True when it is ordinary and :func:`stamp` may copy its ``__dict__``: the fast path's events.
_FAST: dict[type[Event], bool] = {}


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


def _refuse_size(data: bytes, max_event_bytes: int, event: Event) -> NoReturn:
    raise PayloadTooLargeError(len(data), max_event_bytes, what=f"{event.type} event (seq {event.seq})")


def _apply_ordinary(  # noqa: PLR0917 (the writer's hot path: no keyword arguments)
    workflow_id: str,
    request: AppendRequest,
    current: RunInfo | None,
    head: int,
    now: datetime,
    time_bytes: bytes,
    limit: int,
    history: list[tuple[str, int, bytes]],
) -> list[Event] | None:
    """:func:`apply_request` for the append nearly every one is: one ordinary event of a plain class (see
    ``_FAST``), its body encoded ahead, at the expected head of a running run. It adds the event's history row
    to ``history`` and returns the stamped event; ``None`` when the request is anything else (then
    :func:`apply_request` handles it, refusals included). It does what :func:`apply_request` and :func:`stamp`
    would, with none of their generality: this is the writer's hot path."""
    events = request.events
    bodies = request.bodies
    if (
        current is None
        or current.status is not _RUNNING
        or type(events) is not tuple
        or len(events) != 1
        or bodies is None
        or len(bodies) != 1
    ):
        return None
    given = events[0]
    body = bodies[0]
    if (
        body is None
        or not _FAST.get(type(given))  # only event classes are ever keys of _FAST
        or given.workflow_id != workflow_id
        or type(request.expected_head) is not int
        or request.expected_head != head
    ):
        return None
    seq = head + 1
    fields = given.__dict__.copy()
    fields["seq"] = seq
    fields["recorded_at"] = now
    event = _new_object(type(given))
    _set_attribute(event, "__dict__", fields)
    data = stamp_event(body, seq, time_bytes)
    if len(data) > limit:
        _refuse_size(data, limit, event)
    history.append((workflow_id, seq, data))
    return [event]


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
            _FAST[kind] = ordinary and _plain(kind)
        if ordinary:  # the usual event: it only needs a running run
            if run is None or run.status is not _RUNNING:
                _refuse_without_running_run(workflow_id, run, event)
        elif isinstance(event, WorkflowStarted):
            if run is not None and run.status is _RUNNING:
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
            )
            new_runs.append((event.run_id, seq))
            if event.run_timeout is not None:
                timer_ops.append(TimerPut(RUN_TIMEOUT, 0, now + timedelta(seconds=event.run_timeout)))
            if event.execution_deadline is not None:
                deadline = check_aware(event.execution_deadline, "execution_deadline")
                timer_ops.append(TimerPut(EXECUTION_TIMEOUT, 0, deadline))
            elif event.execution_timeout is not None:
                timer_ops.append(TimerPut(EXECUTION_TIMEOUT, 0, now + timedelta(seconds=event.execution_timeout)))
        elif run is None or run.status is not _RUNNING:
            _refuse_without_running_run(workflow_id, run, event)
        elif event.terminal:
            run = evolve(run, status=TERMINAL_STATUS[event.type], close_time=now)
            timer_ops.append(TimerClear())
        elif isinstance(event, TimerStarted):
            timer_id = _check_key(event.timer_id, "timer_id")
            timer_ops.append(TimerPut(TIMER, timer_id, check_aware(event.fire_at, "fire_at")))
        elif isinstance(event, (TimerFired, TimerCancelled)):
            timer_ops.append(TimerDelete(TIMER, _check_key(event.timer_id, "timer_id")))
        elif isinstance(event, _ACTIVITY_EVENTS):
            activity_id = _check_key(event.activity_id, "activity_id")
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
            _refuse_size(data, max_event_bytes, event)
        encoded.append(data)
        stamped.append(event)
    return Applied(workflow_id, stamped, encoded, run, timer_ops, new_runs, run is not current, seq)


@dataclass
class BatchPlan:
    """A validated batch: per-request results, the writes in order, the run records it touched."""

    results: list[list[Event] | AionError]
    #: Every event the batch writes, in order: ``(workflow_id, seq, encoded event)``.
    history: list[tuple[str, int, bytes]]
    #: The appends that derive more than their history (new runs to index, timer rows), in order.
    derived: list[Applied]
    #: workflow id -> its run record after the batch (every workflow the batch loaded or wrote that has one;
    #: ``head_seq`` not current)
    after: dict[str, RunInfo]
    #: workflow id -> its head after the batch (every workflow in ``after``)
    heads: dict[str, int]
    #: workflow id -> its run record before the batch, for the workflows whose record changed in more than its
    #: head during the batch
    changed: dict[str, RunInfo | None] = field(default_factory=dict)


_UNLOADED: Final = object()
_NOTHING_CACHED: Final[Mapping[str, Any]] = MappingProxyType({})


def plan_batch(
    requests: Sequence[AppendRequest],
    *,
    atomic: bool,
    now: datetime,
    load_run: Callable[[str], tuple[RunInfo | None, int]],
    run_id_taken: Callable[[str], bool],
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    cached_runs: Mapping[str, RunInfo] = _NOTHING_CACHED,
    cached_heads: Mapping[str, int] = _NOTHING_CACHED,
) -> BatchPlan:
    """Validate and stamp every request of a batch against the stored run records, chaining requests of the
    same workflow; load each workflow's run record and head once (``load_run`` gives ``(None, 0)`` for an unknown
    workflow; the record's own ``head_seq`` is not used), from ``cached_runs`` and ``cached_heads`` when they
    hold it. With ``atomic`` the first refusal is raised."""
    results: list[list[Event] | AionError] = []
    history: list[tuple[str, int, bytes]] = []
    derived: list[Applied] = []
    after: dict[str, RunInfo] = {}
    heads: dict[str, int] = {}
    changed: dict[str, RunInfo | None] = {}
    current: dict[str, Any] = {}
    batch_run_ids: set[str] = set()
    time_bytes = encode_time(now)
    valid_ids = _VALID_IDS
    for request in requests:
        try:
            if type(request) is not AppendRequest and not isinstance(request, AppendRequest):
                raise InvalidArgumentError(f"not an AppendRequest: {request!r}")
            workflow_id = request.workflow_id
            if type(workflow_id) is not str or workflow_id not in valid_ids:
                check_workflow_id(workflow_id)
            run = current.get(workflow_id, _UNLOADED)
            if run is not _UNLOADED:
                head = heads.get(workflow_id, 0)
            else:
                run = cached_runs.get(workflow_id)
                if run is not None:
                    head = cached_heads[workflow_id]
                else:
                    run, head = load_run(workflow_id)
                current[workflow_id] = run
                if run is not None:
                    after[workflow_id] = run
                    heads[workflow_id] = head
            stamped = _apply_ordinary(workflow_id, request, run, head, now, time_bytes, max_event_bytes, history)
            if stamped is not None:  # the usual append: the run record stays, the head moves by one
                heads[workflow_id] = head + 1
                results.append(stamped)
                continue
            applied = apply_request(
                workflow_id,
                request.events,
                request.expected_head,
                current=run,
                now=now,
                max_event_bytes=max_event_bytes,
                bodies=request.bodies,
                time_bytes=time_bytes,
                head=head,
            )
            if applied.new_runs:
                for run_id, _ in applied.new_runs:
                    if run_id in batch_run_ids or run_id_taken(run_id):
                        raise InvalidArgumentError(f"run id {run_id!r} is already used")
        except AionError as error:
            if atomic:
                raise
            results.append(error)
            continue
        results.append(applied.events)
        if not applied.events or applied.run is None:
            continue
        if applied.new_runs:
            batch_run_ids.update(run_id for run_id, _ in applied.new_runs)
        history.extend(
            (workflow_id, event.seq, data) for event, data in zip(applied.events, applied.encoded, strict=True)
        )
        if applied.new_runs or applied.timer_ops:
            derived.append(applied)
        if applied.run_changed and workflow_id not in changed:
            changed[workflow_id] = run
        current[workflow_id] = after[workflow_id] = applied.run
        heads[workflow_id] = applied.head
    return BatchPlan(results, history, derived, after, heads, changed)
