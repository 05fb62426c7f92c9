"""The Python API of schedules: creating one, a :class:`ScheduleHandle` to it, and what ``describe()`` returns.

Every operation is a :class:`~aion.schedules._service.Call` run in the schedule service's thread once the
schedule has nothing on its way, and returns once what it records is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import pykka

from aion import events as ev
from aion._codec import check_payload
from aion._ids import validate_workflow_id
from aion.errors import (
    InvalidArgumentError,
    ScheduleAlreadyExistsError,
    ScheduleNotFoundError,
)
from aion.schedules._spec import Overlap, SchedulePolicy, ScheduleSpec, parse_overlap
from aion.schedules._state import ScheduleState
from aion.status import WorkflowStatus
from aion.store import EventStore

if TYPE_CHECKING:
    from aion.schedules._service import ScheduleService, _Slot

#: How many next fire times ``describe()`` lists.
NEXT_FIRES = 10
_TICK = timedelta(microseconds=1)


class ScheduleHost(Protocol):
    """What a handle needs of the engine: its store, and a way to run an action in the schedule service."""

    @property
    def store(self) -> EventStore:
        """The engine's store."""

    def schedule_call(self, schedule_id: str | None, action: Callable[[ScheduleService], Any]) -> Any:
        """Run ``action`` in the service once ``schedule_id`` has nothing on its way; its return value."""


@dataclass(frozen=True)
class ScheduleAction:
    """One workflow a schedule started, and how it is doing."""

    fire_at: datetime
    workflow_id: str
    run_id: str
    started_at: datetime
    #: ``"trigger"`` or ``"backfill"`` for a fire asked for by hand.
    manual: str | None
    #: The run's status now (``running``, ``completed``, ``failed``, ...).
    status: str


@dataclass(frozen=True)
class ScheduleDescription:
    """What ``ScheduleHandle.describe()`` returns."""

    schedule_id: str
    workflow_type: str
    args: list[Any]
    spec: ScheduleSpec
    policy: SchedulePolicy
    paused: bool
    note: str | None
    next_fires: list[datetime]
    recent_actions: list[ScheduleAction]
    buffered: int
    fired: int
    skipped: int
    missed: int
    search_attributes: dict[str, Any]
    memo: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (times in ISO 8601)."""
        return {
            "schedule_id": self.schedule_id,
            "workflow_type": self.workflow_type,
            "args": self.args,
            "spec": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.spec.to_dict().items()},
            "policy": self.policy.to_dict(),
            "paused": self.paused,
            "note": self.note,
            "next_fires": [at.isoformat() for at in self.next_fires],
            "recent_actions": [
                {
                    "fire_at": action.fire_at.isoformat(),
                    "workflow_id": action.workflow_id,
                    "run_id": action.run_id,
                    "started_at": action.started_at.isoformat(),
                    "manual": action.manual,
                    "status": action.status,
                }
                for action in self.recent_actions
            ],
            "buffered": self.buffered,
            "fired": self.fired,
            "skipped": self.skipped,
            "missed": self.missed,
            "search_attributes": self.search_attributes,
            "memo": self.memo,
            "created_at": self.created_at.isoformat(),
        }


def describe_state(state: ScheduleState, store: EventStore, now: datetime) -> ScheduleDescription:
    """The description of a schedule's state (run statuses read from ``store``)."""
    after = state.cursor if state.cursor is not None and state.cursor > now else now
    next_fires = [] if state.paused else list(state.spec.fire_times(after, limit=NEXT_FIRES))
    actions = []
    for action in state.actions:
        info = store.get_run(action.workflow_id)
        status = WorkflowStatus.RUNNING.value if info is None else info.status.value
        if info is not None and info.run_id != action.run_id:
            status = "unknown"
        actions.append(
            ScheduleAction(action.fire_at, action.workflow_id, action.run_id, action.started_at, action.manual, status)
        )
    return ScheduleDescription(
        schedule_id=state.schedule_id,
        workflow_type=state.workflow_type,
        args=list(state.args),
        spec=state.spec,
        policy=state.policy,
        paused=state.paused,
        note=state.note,
        next_fires=next_fires,
        recent_actions=actions,
        buffered=len(state.buffer),
        fired=state.fired,
        skipped=state.skipped,
        missed=state.missed,
        search_attributes=dict(state.search_attributes),
        memo=dict(state.memo),
        created_at=state.created_at,
    )


def load_state(store: EventStore, schedule_id: str) -> ScheduleState:
    """A schedule's state read from the store (no engine needed); ``ScheduleNotFoundError`` if none."""
    state = ScheduleState.from_history(store.read_schedule(validate_workflow_id(schedule_id)))
    if state is None or state.deleted:
        raise ScheduleNotFoundError(schedule_id)
    return state


def _live(service: ScheduleService, schedule_id: str) -> _Slot:
    slot = service.slot(schedule_id)
    if slot is None:
        raise ScheduleNotFoundError(schedule_id)
    return slot


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def create(
    host: ScheduleHost,
    schedule_id: str,
    workflow_type: str,
    args: list[Any],
    *,
    spec: ScheduleSpec,
    policy: SchedulePolicy,
    search_attributes: dict[str, Any] | None,
    memo: dict[str, Any] | None,
    paused: bool,
    note: str | None,
) -> ScheduleHandle:
    """Record a new schedule's ``ScheduleCreated`` (see ``Engine.create_schedule``)."""
    validate_workflow_id(schedule_id)
    if not isinstance(spec, ScheduleSpec):
        raise InvalidArgumentError(f"spec must be a ScheduleSpec, got {spec!r}")
    if not isinstance(policy, SchedulePolicy):
        raise InvalidArgumentError(f"policy must be a SchedulePolicy, got {policy!r}")
    check_payload(args, path=f"{workflow_type} input")
    for name, value in (("search_attributes", search_attributes), ("memo", memo)):
        if value is not None and not isinstance(value, dict):
            raise InvalidArgumentError(f"{name} must be a dict, got {value!r}")
        if value is not None:
            check_payload(value, path=name)
    created = ev.ScheduleCreated(
        workflow_id=schedule_id,
        workflow_type=workflow_type,
        args=args,
        spec=spec.to_dict(),
        policy=policy.to_dict(),
        search_attributes=dict(search_attributes or {}),
        memo=dict(memo or {}),
        paused=paused,
        note=note,
    )

    def action(service: ScheduleService) -> None:
        if service.slot(schedule_id) is not None:
            raise ScheduleAlreadyExistsError(schedule_id)
        head = len(host.store.read_schedule(schedule_id))
        service.record(schedule_id, [created], head)

    host.schedule_call(schedule_id, action)
    return ScheduleHandle(host, schedule_id)


class ScheduleHandle:
    """A handle to one schedule: ``describe``, ``pause``/``unpause``, ``trigger``, ``backfill``, ``update``,
    ``delete``. Each call returns once what it records is durable."""

    def __init__(self, host: ScheduleHost, schedule_id: str) -> None:
        self._host = host
        self.schedule_id = schedule_id

    def __repr__(self) -> str:
        return f"ScheduleHandle({self.schedule_id!r})"

    def _record(self, make: Callable[[ScheduleState], list[ev.ScheduleEvent]]) -> list[ev.Event]:
        sid = self.schedule_id

        def action(service: ScheduleService) -> list[ev.Event]:
            state = _live(service, sid).state
            events = make(state)
            return service.record(sid, events, state.head) if events else []

        result: list[ev.Event] = self._host.schedule_call(sid, action)
        return result

    def describe(self) -> ScheduleDescription:
        """The schedule's spec, policy, pause, next fires, recent actions (with their runs' status) and counts."""
        sid = self.schedule_id
        host = self._host

        def action(service: ScheduleService) -> ScheduleDescription:
            return describe_state(_live(service, sid).state, host.store, service.now())

        result: ScheduleDescription = host.schedule_call(sid, action)
        return result

    def pause(self, note: str | None = None) -> None:
        """Stop firing (``note`` says why) until :meth:`unpause`; a no-op when paused already."""
        self._record(lambda s: [] if s.paused else [ev.SchedulePaused(workflow_id=s.schedule_id, note=note)])

    def unpause(self, note: str | None = None) -> None:
        """Fire again, from now on (fires that came due while paused are not taken up)."""
        self._record(lambda s: [ev.ScheduleUnpaused(workflow_id=s.schedule_id, note=note)] if s.paused else [])

    def update(self, *, spec: ScheduleSpec | None = None, policy: SchedulePolicy | None = None) -> None:
        """Replace the spec and/or the policy; fires are counted from now on."""
        if spec is not None and not isinstance(spec, ScheduleSpec):
            raise InvalidArgumentError(f"spec must be a ScheduleSpec, got {spec!r}")
        if policy is not None and not isinstance(policy, SchedulePolicy):
            raise InvalidArgumentError(f"policy must be a SchedulePolicy, got {policy!r}")
        self._record(
            lambda s: [
                ev.ScheduleUpdated(
                    workflow_id=s.schedule_id,
                    spec=None if spec is None else spec.to_dict(),
                    policy=None if policy is None else policy.to_dict(),
                )
            ]
        )

    def delete(self) -> None:
        """Delete the schedule: it fires no more (the workflows it started go on; its history stays)."""
        self._record(lambda s: [ev.ScheduleDeleted(workflow_id=s.schedule_id)])

    def trigger(self, overlap: Overlap | str | None = None) -> ev.Event:
        """Fire now, whatever the spec and pause say, with ``overlap`` (default: the policy's); returns the
        recorded outcome (``ScheduleFired``, ``ScheduleBuffered`` or ``ScheduleSkipped``)."""
        wanted = None if overlap is None else parse_overlap(overlap)
        return self._manual(lambda service, state: [service.now()], "trigger", wanted)[0]

    def backfill(self, start: datetime, end: datetime, overlap: Overlap | str | None = None) -> list[ev.Event]:
        """Fire every time of the spec in ``[start, end]`` (paused or not), in order, with ``overlap`` (default:
        the policy's); a time whose workflow id has a run already is skipped (``exists``). Returns the outcomes."""
        start, end = _aware(start, "start"), _aware(end, "end")
        if end < start:
            raise InvalidArgumentError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
        wanted = None if overlap is None else parse_overlap(overlap)
        return self._manual(
            lambda service, state: list(state.spec.fire_times(start - _TICK, until=end)), "backfill", wanted
        )

    def _manual(
        self,
        times: Callable[[ScheduleService, ScheduleState], list[datetime]],
        manual: str,
        overlap: Overlap | None,
    ) -> list[ev.Event]:
        sid = self.schedule_id

        def action(service: ScheduleService) -> list[pykka.Future[Any]]:
            slot = _live(service, sid)
            futures: list[pykka.Future[Any]] = []
            for fire_at in times(service, slot.state):
                future: pykka.Future[Any] = pykka.ThreadingFuture()
                service.enqueue_manual(slot, fire_at, manual, overlap or slot.state.policy.overlap, future)
                futures.append(future)
            return futures

        futures: list[pykka.Future[Any]] = self._host.schedule_call(sid, action)
        return [future.get() for future in futures]
