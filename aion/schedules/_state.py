"""A schedule's state, rebuilt from its history by one function (:meth:`ScheduleState.from_history`) and moved
by each new event (:meth:`ScheduleState.apply`), so the service's view is always a projection of what is recorded.
Pure: no clock, no store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from aion import events as ev
from aion.schedules._spec import SchedulePolicy, ScheduleSpec

#: How many recent actions a schedule's state keeps (``describe()`` shows them).
RECENT_ACTIONS: Final = 20


@dataclass
class Action:
    """One started workflow of a schedule."""

    fire_at: datetime
    workflow_id: str
    run_id: str
    started_at: datetime
    manual: str | None = None


@dataclass
class ScheduleState:
    """What a schedule's history says: its definition, pause, position in its spec, buffer, actions, counts."""

    schedule_id: str
    workflow_type: str
    args: list[Any]
    spec: ScheduleSpec
    policy: SchedulePolicy
    search_attributes: dict[str, Any]
    memo: dict[str, Any]
    created_at: datetime
    paused: bool = False
    note: str | None = None
    deleted: bool = False
    #: The latest regular fire time accounted for (fired, buffered, skipped or missed), or the time from which
    #: fires count (creation, update, unpause): the next regular fire comes strictly after it.
    cursor: datetime | None = None
    #: Fires waiting for the running workflow to close: ``(fire_at, manual)``, oldest first.
    buffer: list[tuple[datetime, str | None]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    fired: int = 0
    skipped: int = 0
    missed: int = 0
    #: The history's head (its last seq).
    head: int = 0

    @classmethod
    def from_history(cls, events: list[ev.Event]) -> ScheduleState | None:
        """The state after ``events`` (a schedule's whole history); ``None`` for an empty history."""
        state: ScheduleState | None = None
        for event in events:
            if isinstance(event, ev.ScheduleCreated):
                state = cls.created(event)
            elif state is not None:
                state.apply(event)
        return state

    @classmethod
    def created(cls, event: ev.ScheduleCreated) -> ScheduleState:
        """The state a (re)creation starts."""
        return cls(
            schedule_id=event.workflow_id,
            workflow_type=event.workflow_type,
            args=list(event.args),
            spec=ScheduleSpec.from_dict(event.spec),
            policy=SchedulePolicy.from_dict(event.policy),
            search_attributes=dict(event.search_attributes),
            memo=dict(event.memo),
            created_at=event.recorded_at,
            paused=event.paused,
            note=event.note,
            cursor=event.recorded_at,
            head=event.seq,
        )

    def apply(self, event: ev.Event) -> None:
        """Move the state by one stamped event of its history."""
        self.head = event.seq
        if isinstance(event, ev.ScheduleUpdated):
            if event.spec is not None:
                self.spec = ScheduleSpec.from_dict(event.spec)
            if event.policy is not None:
                self.policy = SchedulePolicy.from_dict(event.policy)
            self.cursor = event.recorded_at
        elif isinstance(event, ev.SchedulePaused):
            self.paused, self.note = True, event.note
        elif isinstance(event, ev.ScheduleUnpaused):
            self.paused, self.note = False, event.note
            self.cursor = event.recorded_at
        elif isinstance(event, ev.ScheduleFired):
            self._advance(event.fire_at, event.manual)
            self._unbuffer(event.fire_at, event.manual)
            self.fired += 1
            self.actions.append(
                Action(event.fire_at, event.started_workflow_id, event.run_id, event.recorded_at, event.manual)
            )
            del self.actions[:-RECENT_ACTIONS]
        elif isinstance(event, ev.ScheduleBuffered):
            self._advance(event.fire_at, event.manual)
            self.buffer.append((event.fire_at, event.manual))
        elif isinstance(event, ev.ScheduleSkipped):
            self._advance(event.fire_at, event.manual)
            self._unbuffer(event.fire_at, event.manual)
            self.skipped += 1
        elif isinstance(event, ev.ScheduleMissed):
            self._advance(event.up_to, None)
            self.missed += event.count
        elif isinstance(event, ev.ScheduleDeleted):
            self.deleted = True
            self.buffer.clear()

    def _advance(self, fire_at: datetime, manual: str | None) -> None:
        if manual is None and (self.cursor is None or fire_at > self.cursor):
            self.cursor = fire_at

    def _unbuffer(self, fire_at: datetime, manual: str | None) -> None:
        if (fire_at, manual) in self.buffer:
            self.buffer.remove((fire_at, manual))
