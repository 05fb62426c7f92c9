"""Commands: what workflow code asks the engine to do, each with the correlation key that replay matches on.

A command is issued by the SDK inside the workflow process and becomes, once the engine records it, a
*command anchor* event in history. On replay the same code issues the same commands again; each is matched with
its recorded anchor by key (``("activity", 3)``) and kind, never by position, and a mismatch is a
:class:`~aion.errors.NonDeterminismError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from aion import events as ev

#: A correlation key: the kind of work and its ordinal (or name).
Key = tuple[str, int | str]


@dataclass(frozen=True)
class Command:
    """Base of every command a workflow issues."""

    @property
    def key(self) -> Key:
        """The correlation key that matches this command with its recorded anchor."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human description, used in non-determinism messages."""
        return type(self).__name__

    def matches(self, event: ev.Event) -> bool:
        """Whether ``event`` is the anchor this command recorded (same kind and same identity)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ScheduleActivity(Command):
    """Run activity ``activity_type`` with positional ``args``; ``activity_id`` is the ordinal."""

    activity_id: int
    activity_type: str
    args: list[Any]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return ("activity", self.activity_id)

    def describe(self) -> str:
        return f"activity {self.activity_id} of type {self.activity_type!r}"

    def matches(self, event: ev.Event) -> bool:
        return self.anchored_by(event, self.activity_type)

    @staticmethod
    def anchored_by(event: ev.Event, activity_type: str) -> bool:
        """Whether ``event`` is the anchor of a ``ScheduleActivity`` of ``activity_type`` (``matches``, without
        the command: a replay checks thousands of these and builds none)."""
        return isinstance(event, ev.ActivityScheduled) and event.activity_type == activity_type


@dataclass(frozen=True)
class RequestCancelActivity(Command):
    """Cancel activity ``activity_id``: the running attempt is told, then killed after a grace period."""

    activity_id: int

    @property
    def key(self) -> Key:
        return ("cancel_activity", self.activity_id)

    def describe(self) -> str:
        return f"cancellation of activity {self.activity_id}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.ActivityCancelRequested)


@dataclass(frozen=True)
class StartTimer(Command):
    """Start timer ``timer_id`` firing ``seconds`` after it is recorded; ``waiting_for`` names the wait it is the
    timeout of (``"signal 'approve'"``), if any."""

    timer_id: int
    seconds: float
    waiting_for: str | None = None

    @property
    def key(self) -> Key:
        return ("timer", self.timer_id)

    def describe(self) -> str:
        return f"timer {self.timer_id}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.TimerStarted)


@dataclass(frozen=True)
class CancelTimer(Command):
    """Cancel timer ``timer_id``; a no-op if it has fired already."""

    timer_id: int

    @property
    def key(self) -> Key:
        return ("cancel_timer", self.timer_id)

    def describe(self) -> str:
        return f"cancellation of timer {self.timer_id}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.TimerCancelled)


@dataclass(frozen=True)
class StartChild(Command):
    """Start child workflow ordinal ``child_id``."""

    child_id: int
    workflow_id: str
    workflow_type: str
    args: list[Any]
    parent_close_policy: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return ("child", self.child_id)

    def describe(self) -> str:
        return f"child {self.child_id} of type {self.workflow_type!r}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.ChildWorkflowStarted) and event.workflow_type == self.workflow_type


@dataclass(frozen=True)
class RequestCancelChild(Command):
    """Ask child ``child_id`` to cancel."""

    child_id: int

    @property
    def key(self) -> Key:
        return ("cancel_child", self.child_id)

    def describe(self) -> str:
        return f"cancellation of child {self.child_id}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.ChildWorkflowCancelRequested)


@dataclass(frozen=True)
class SignalExternal(Command):
    """Send signal ordinal ``signal_id`` to workflow ``target_workflow_id``, exactly once."""

    signal_id: int
    target_workflow_id: str
    name: str
    payload: Any

    @property
    def key(self) -> Key:
        return ("signal_external", self.signal_id)

    def describe(self) -> str:
        return f"signal {self.signal_id} {self.name!r} to {self.target_workflow_id!r}"

    def matches(self, event: ev.Event) -> bool:
        return (
            isinstance(event, ev.SignalExternalSent)
            and event.name == self.name
            and event.target_workflow_id == self.target_workflow_id
        )


@dataclass(frozen=True)
class CompleteWorkflow(Command):
    """The workflow function returned ``result``."""

    result: Any

    @property
    def key(self) -> Key:
        return ("close", 0)

    def describe(self) -> str:
        return "completion of the workflow"

    def matches(self, event: ev.Event) -> bool:
        return False


@dataclass(frozen=True)
class FailWorkflow(Command):
    """The workflow function raised; ``failure`` describes the exception."""

    failure: ev.Failure

    @property
    def key(self) -> Key:
        return ("close", 0)

    def describe(self) -> str:
        return f"failure of the workflow ({self.failure.type})"

    def matches(self, event: ev.Event) -> bool:
        return False


@dataclass(frozen=True)
class CancelWorkflow(Command):
    """The workflow let ``aion.CancelledError`` escape after a cancellation request: it ends cancelled."""

    reason: str | None = None

    @property
    def key(self) -> Key:
        return ("close", 0)

    def describe(self) -> str:
        return "cancellation of the workflow"

    def matches(self, event: ev.Event) -> bool:
        return False


@dataclass(frozen=True)
class ContinueAsNew(Command):
    """End this run and start a new run of the same workflow id with ``args``."""

    args: list[Any]
    workflow_type: str | None = None
    #: The version the next run starts on (``None``: the type's highest registered version).
    version: int | None = None

    @property
    def key(self) -> Key:
        return ("close", 0)

    def describe(self) -> str:
        return "continue-as-new"

    def matches(self, event: ev.Event) -> bool:
        return False


@dataclass(frozen=True)
class UpsertSearchAttributes(Command):
    """Set (or, with ``None``, remove) search attributes of the run; ``upsert_id`` is the ordinal."""

    upsert_id: int
    attributes: dict[str, Any]

    @property
    def key(self) -> Key:
        return ("upsert", self.upsert_id)

    def describe(self) -> str:
        return f"upsert {self.upsert_id} of search attributes {sorted(self.attributes)}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.SearchAttributesUpserted) and sorted(event.attributes) == sorted(self.attributes)


@dataclass(frozen=True)
class RecordMarker(Command):
    """Record marker ``name`` (``workflow.patched`` records ``patch:<id>``) with ``details``."""

    name: str
    details: Any = None

    @property
    def key(self) -> Key:
        return ("marker", self.name)

    def describe(self) -> str:
        return f"marker {self.name!r}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.MarkerRecorded) and event.name == self.name


#: The prefix of the markers ``workflow.patched`` records.
PATCH_MARKER = "patch:"


@dataclass(frozen=True)
class CompleteUpdate(Command):
    """The handler of update ``update_id`` returned ``result`` (or raised: ``failure``)."""

    update_id: str
    result: Any = None
    failure: ev.Failure | None = None

    @property
    def key(self) -> Key:
        return ("update", self.update_id)

    def describe(self) -> str:
        return f"completion of update {self.update_id!r}"

    def matches(self, event: ev.Event) -> bool:
        return isinstance(event, ev.UpdateCompleted) and event.update_id == self.update_id


class EventTypeTable(dict[type, Any]):
    """A table by exact event type, for one dict lookup per event instead of a chain of ``isinstance`` checks.
    A type it does not hold (a subclass) takes the entry of its nearest listed base, or ``default``; the answer
    is then kept for the next lookup."""

    def __init__(self, entries: dict[type, Any], default: Any) -> None:
        super().__init__(entries)
        self._default = default

    def __missing__(self, kind: type) -> Any:
        found = next((self[base] for base in kind.__mro__[1:] if base in self), self._default)
        self[kind] = found
        return found


#: The correlation key of each command-anchor event type, from the event (``None``: not an anchor after all).
ANCHOR_KEYS: Final[dict[type, Callable[[Any], Key | None] | None]] = EventTypeTable(
    {
        ev.ActivityScheduled: lambda event: ("activity", event.activity_id),
        ev.ActivityCancelRequested: lambda event: ("cancel_activity", event.activity_id),
        ev.TimerStarted: lambda event: ("timer", event.timer_id),
        ev.TimerCancelled: lambda event: ("cancel_timer", event.timer_id),
        ev.ChildWorkflowStarted: lambda event: ("child", event.child_id),
        ev.ChildWorkflowCancelRequested: lambda event: ("cancel_child", event.child_id),
        ev.SignalExternalSent: lambda event: ("signal_external", event.signal_id),
        ev.SearchAttributesUpserted: lambda event: ("upsert", event.upsert_id) if event.upsert_id > 0 else None,
        ev.MarkerRecorded: lambda event: ("marker", event.name),
        ev.UpdateCompleted: lambda event: ("update", event.update_id),
    },
    None,
)


def anchor_key(event: ev.Event) -> Key | None:
    """The correlation key of a command-anchor event, or ``None`` if the event is not a command anchor."""
    make = ANCHOR_KEYS[type(event)]
    return None if make is None else make(event)


def describe_event(event: ev.Event) -> str:
    """A short human description of a recorded event, used in non-determinism messages."""
    match event:
        case ev.ActivityScheduled(activity_id=activity_id, activity_type=activity_type):
            return f"activity {activity_id} of type {activity_type!r}"
        case ev.TimerStarted(timer_id=timer_id):
            return f"timer {timer_id}"
        case ev.ChildWorkflowStarted(child_id=child_id, workflow_type=workflow_type):
            return f"child {child_id} of type {workflow_type!r}"
        case ev.SignalExternalSent(signal_id=signal_id, name=name, target_workflow_id=target):
            return f"signal {signal_id} {name!r} to {target!r}"
        case ev.SearchAttributesUpserted(upsert_id=upsert_id, attributes=attributes):
            return f"upsert {upsert_id} of search attributes {sorted(attributes)}"
        case ev.MarkerRecorded(name=name):
            return f"marker {name!r}"
    return event.type


#: Whether each event type is an arrival: ``None`` for ``ActivityFailed``, which is one only without a retry due.
ARRIVALS: Final[dict[type, bool | None]] = EventTypeTable(
    {
        ev.ActivityFailed: None,
        ev.ActivityCompleted: True,
        ev.ActivityCancelled: True,
        ev.TimerFired: True,
        ev.SignalReceived: True,
        ev.ChildWorkflowCompleted: True,
        ev.ChildWorkflowFailed: True,
        ev.ChildWorkflowCancelled: True,
        ev.SignalExternalDelivered: True,
        ev.WorkflowCancelRequested: True,
        ev.UpdateAccepted: True,
    },
    False,
)


def is_arrival(event: ev.Event) -> bool:
    """Whether ``event`` is an arrival: something recorded that the workflow code waits for and is delivered.

    A failed activity attempt with a retry due (``next_attempt_at`` set) is not: only its final outcome is.
    """
    arrival = ARRIVALS[type(event)]
    if arrival is None:
        return cast(ev.ActivityFailed, event).next_attempt_at is None
    return arrival
