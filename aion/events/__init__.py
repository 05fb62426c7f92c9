"""Every history event of the engine: the one place that lists them all.

A workflow's history is a gapless sequence of events numbered from 1. Events are frozen dataclasses; the event
store is the sequence authority, so callers build events with the default ``seq=0`` and ``recorded_at=UNSET_TIME``
and get back the stamped copies from an append::

    >>> event = TimerStarted(workflow_id="order-1", timer_id=1, fire_at=UNSET_TIME)
    >>> event.type
    'TimerStarted'
    >>> EVENT_TYPES["TimerStarted"] is TimerStarted
    True

A run is the slice of a workflow's history from one ``WorkflowStarted`` up to (not including) the next one.
Payload fields (``input``, ``result``, ``payload``, ``details``) hold user values that the payload codec accepts.

The classes are defined by job, in ``_base`` (:class:`Event`, :class:`Failure`, the registry), ``_runs`` (a run's
lifecycle and holds), ``_steps`` (activities, timers, signals, children, updates) and ``_schedules``; this module
is where they are imported from, and the module each class names as its own (``__module__``): that name is
stored with a payload that holds an event or a ``Failure`` (the codec's dataclass extension), and pickled.
"""

from __future__ import annotations

# The names the events' (string) annotations use: ``typing.get_type_hints`` resolves them in the namespace of
# the module a class names as its own, which is this one (below).
from datetime import datetime  # noqa: F401
from typing import Any, ClassVar  # noqa: F401

from aion.events._base import (
    EVENT_TYPES,
    UNSET_TIME,
    Event,
    Failure,
    terminal_event_types,
)
from aion.events._runs import (
    MarkerRecorded,
    SearchAttributesUpserted,
    WorkflowBlocked,
    WorkflowCancelled,
    WorkflowCancelRequested,
    WorkflowCompleted,
    WorkflowContinuedAsNew,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowReset,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowTerminated,
    WorkflowTimedOut,
    WorkflowUnblocked,
)
from aion.events._steps import (
    ActivityCancelled,
    ActivityCancelRequested,
    ActivityCompleted,
    ActivityFailed,
    ActivityScheduled,
    ActivityStarted,
    ChildWorkflowCancelled,
    ChildWorkflowCancelRequested,
    ChildWorkflowCompleted,
    ChildWorkflowFailed,
    ChildWorkflowStarted,
    SignalExternalDelivered,
    SignalExternalSent,
    SignalReceived,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    UpdateAccepted,
    UpdateCompleted,
)

# isort: split
# After the steps: EVENT_TYPES keeps the order the events were defined in (runs, steps, schedules).
from aion.events._schedules import (
    ScheduleBuffered,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEvent,
    ScheduleFired,
    ScheduleMissed,
    SchedulePaused,
    ScheduleSkipped,
    ScheduleUnpaused,
    ScheduleUpdated,
)

__all__ = [
    "EVENT_TYPES",
    "UNSET_TIME",
    "ActivityCancelRequested",
    "ActivityCancelled",
    "ActivityCompleted",
    "ActivityFailed",
    "ActivityScheduled",
    "ActivityStarted",
    "ChildWorkflowCancelRequested",
    "ChildWorkflowCancelled",
    "ChildWorkflowCompleted",
    "ChildWorkflowFailed",
    "ChildWorkflowStarted",
    "Event",
    "Failure",
    "MarkerRecorded",
    "ScheduleBuffered",
    "ScheduleCreated",
    "ScheduleDeleted",
    "ScheduleEvent",
    "ScheduleFired",
    "ScheduleMissed",
    "SchedulePaused",
    "ScheduleSkipped",
    "ScheduleUnpaused",
    "ScheduleUpdated",
    "SearchAttributesUpserted",
    "SignalExternalDelivered",
    "SignalExternalSent",
    "SignalReceived",
    "TimerCancelled",
    "TimerFired",
    "TimerStarted",
    "UpdateAccepted",
    "UpdateCompleted",
    "WorkflowBlocked",
    "WorkflowCancelRequested",
    "WorkflowCancelled",
    "WorkflowCompleted",
    "WorkflowContinuedAsNew",
    "WorkflowFailed",
    "WorkflowPaused",
    "WorkflowReset",
    "WorkflowResumed",
    "WorkflowStarted",
    "WorkflowTerminated",
    "WorkflowTimedOut",
    "WorkflowUnblocked",
    "terminal_event_types",
]

for _cls in (Failure, Event, *EVENT_TYPES.values()):
    _cls.__module__ = __name__
del _cls
