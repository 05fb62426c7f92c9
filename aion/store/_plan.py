"""Planning of one batch of appends: chaining the requests of a batch, loading each run record once, and the
fast path of the usual append (one ordinary event at the expected head of a running run).

It owns what a batch writes (:class:`BatchPlan`), in order, and nothing else: it never touches a store (the
store passes ``load_run`` and ``run_id_taken``) and never decides a rule of its own (every refusal comes from
:func:`aion.store._derive.apply_request`, which the fast path must agree with exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from aion._codec import encode_time, stamp_event
from aion.errors import AionError, InvalidArgumentError
from aion.events import Event
from aion.status import WorkflowStatus
from aion.store._checks import VALID_IDS, check_workflow_id
from aion.store._derive import DEFAULT_MAX_EVENT_BYTES, FAST_EVENTS, Applied, apply_request, refuse_size
from aion.store._schedule_rows import plan_schedule_append
from aion.store._types import AppendRequest, RunInfo, ScheduleAppend

#: ``WorkflowStatus.RUNNING``: a module constant is a much cheaper load than an enum member on the hot path.
_RUNNING: Final = WorkflowStatus.RUNNING
_new_object = object.__new__
#: ``FAST_EVENTS.get``, bound here (CPython 3.11 builds a bound method per ``FAST_EVENTS.get(...)`` on an imported
#: name): the dict is filled in place by ``apply_request``.
_is_fast: Final = FAST_EVENTS.get
_set_attribute = object.__setattr__


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
    ``FAST_EVENTS``), its body encoded ahead, at the expected head of a running run. It adds the event's history row
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
        or not _is_fast(type(given))  # only event classes are ever keys of FAST_EVENTS
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
        refuse_size(data, limit, event)
    history.append((workflow_id, seq, data))
    return [event]


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
    #: The rows of schedule histories the batch writes (``ScheduleAppend``): ``(schedule_id, seq, bytes)``.
    schedules: list[tuple[str, int, bytes]] = field(default_factory=list)


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
    load_schedule_head: Callable[[str], int] | None = None,
    groups: Sequence[tuple[int, int]] = (),
) -> BatchPlan:
    """Validate and stamp every request of a batch against the stored run records, chaining requests of the
    same workflow; load each workflow's run record and head once (``load_run`` gives ``(None, 0)`` for an unknown
    workflow; the record's own ``head_seq`` is not used), from ``cached_runs`` and ``cached_heads`` when they
    hold it. With ``atomic`` the first refusal is raised.

    ``groups`` are atomic groups inside a non-atomic batch: ``(start, end)`` spans of ``requests`` (in order, not
    overlapping) planned as one unit. When a request of a group is refused, nothing of the group is written and
    every slot of the group holds that error; the other requests of the batch are planned as if the group were
    not there (see :class:`_GroupUndo`)."""
    results: list[list[Event] | AionError] = []
    history: list[tuple[str, int, bytes]] = []
    derived: list[Applied] = []
    after: dict[str, RunInfo] = {}
    heads: dict[str, int] = {}
    changed: dict[str, RunInfo | None] = {}
    current: dict[str, Any] = {}
    batch_run_ids: set[str] = set()
    time_bytes = encode_time(now)
    valid_ids = VALID_IDS
    schedule_rows: list[tuple[str, int, bytes]] = []
    schedule_heads: dict[str, int] = {}
    group_ends = dict(groups)
    undo: _GroupUndo | None = None
    group_end = -1
    for index, request in enumerate(requests):
        if undo is not None and index == group_end:
            undo.close(results)
            undo = None
        if index in group_ends:
            group_end = group_ends[index]
            undo = _GroupUndo(
                requests[index:group_end], current, after, heads, changed, schedule_heads, history, derived,
                schedule_rows, batch_run_ids,
            )  # fmt: skip
        try:
            if type(request) is ScheduleAppend:
                if load_schedule_head is None:
                    raise InvalidArgumentError("this store keeps no schedule histories")
                mark = len(schedule_rows)
                try:
                    results.append(
                        plan_schedule_append(request, now, load_schedule_head, schedule_heads, schedule_rows)
                    )
                except AionError:
                    del schedule_rows[mark:]
                    raise
                continue
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
            if undo is not None:
                undo.run_ids.extend(run_id for run_id, _ in applied.new_runs)
        history.extend(
            (workflow_id, event.seq, data) for event, data in zip(applied.events, applied.encoded, strict=True)
        )
        if applied.new_runs or applied.timer_ops:
            derived.append(applied)
        if applied.run_changed and workflow_id not in changed:
            changed[workflow_id] = run
        current[workflow_id] = after[workflow_id] = applied.run
        heads[workflow_id] = applied.head
    if undo is not None:
        undo.close(results)
    return BatchPlan(results, history, derived, after, heads, changed, schedule_rows)


_MISSING: Final = object()


class _GroupUndo:
    """What planning an atomic group changed, to take back when one of its requests is refused.

    Only the entries of the workflows and schedules the group names can change while it is planned, so those
    entries are remembered (not copies of the whole batch's state: a batch of a hundred schedule fires has a
    hundred groups), with the lengths of the lists the group appends to and the run ids it reserved."""

    def __init__(  # noqa: PLR0917
        self,
        requests: Sequence[AppendRequest],
        current: dict[str, Any],
        after: dict[str, RunInfo],
        heads: dict[str, int],
        changed: dict[str, RunInfo | None],
        schedule_heads: dict[str, int],
        history: list[tuple[str, int, bytes]],
        derived: list[Applied],
        schedule_rows: list[tuple[str, int, bytes]],
        batch_run_ids: set[str],
    ) -> None:
        self.dicts: tuple[dict[str, Any], ...] = (current, after, heads, changed, schedule_heads)
        ids = {request.workflow_id for request in requests if type(getattr(request, "workflow_id", None)) is str}
        self.saved = [(key, [table.get(key, _MISSING) for table in self.dicts]) for key in ids]
        self.lists: tuple[list[Any], ...] = (history, derived, schedule_rows)
        self.lengths = [len(rows) for rows in self.lists]
        self.batch_run_ids = batch_run_ids
        self.run_ids: list[str] = []
        self.count = len(requests)

    def close(self, results: list[list[Event] | AionError]) -> None:
        """End the group, whose slots are the last ones of ``results``: when one holds an error,
        undo the group and give each of its slots that error."""
        count = self.count
        slots = results[len(results) - count :]
        refusal = next((slot for slot in slots if isinstance(slot, AionError)), None)
        if refusal is None:
            return
        for key, values in self.saved:
            for table, value in zip(self.dicts, values, strict=True):
                if value is _MISSING:
                    table.pop(key, None)
                else:
                    table[key] = value
        for rows, length in zip(self.lists, self.lengths, strict=True):
            del rows[length:]
        self.batch_run_ids.difference_update(self.run_ids)
        results[len(results) - count :] = [refusal] * count
