"""What the schedule service tells about its fires: log records and metric counts.

Called from the schedule service's thread only (its series are counted there, see ``_metrics``). A fire that
starts its workflow is DEBUG (it is the schedule doing its job); a fire skipped because of the overlap policy or a
full buffer, and fires missed (they came due while no engine ran, outside the catch-up window) are INFO: the
workflow did not run when the spec said. A fire skipped because its workflow id has a run already (a backfill
over fired times, a fire retaken after a crash) and a buffered fire are DEBUG. The failed start of a fire is
logged by the service itself (WARNING).

Logger: ``aion.schedules``. Fields: ``schedule_id``, ``workflow_type``, ``workflow_id`` (of the fire),
``fire_at``, ``reason``, ``count``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aion import events as ev
from aion.observability._metrics import Metrics

schedule_log = logging.getLogger("aion.schedules")

#: Skip reasons that are logged at DEBUG: nothing the spec promised was lost.
_QUIET_SKIPS = frozenset({"exists"})


class ScheduleObserver:
    """Turns the schedule service's records into log records and metric counts."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    def late(self, workflow_type: str, lateness: float) -> None:
        """A fire of the spec is handled ``lateness`` seconds after it came due (its jitter included)."""
        if self.metrics is not None:
            self.metrics.schedule_lateness.observe(max(0.0, lateness), (workflow_type,))

    def fired(self, schedule_id: str, workflow_type: str, fired: ev.ScheduleFired) -> None:
        """A fire started its workflow (recorded with the run's ``WorkflowStarted``)."""
        trigger = fired.manual or "spec"
        if self.metrics is not None:
            self.metrics.schedule_fires.inc((workflow_type, trigger))
        if schedule_log.isEnabledFor(logging.DEBUG):
            schedule_log.debug(
                "schedule %s fired (%s) for %s",
                schedule_id,
                trigger,
                _iso(fired.fire_at),
                extra={
                    "schedule_id": schedule_id,
                    "workflow_type": workflow_type,
                    "workflow_id": fired.started_workflow_id,
                    "run_id": fired.run_id,
                    "fire_at": _iso(fired.fire_at),
                    "reason": trigger,
                },
            )

    def recorded(self, schedule_id: str, workflow_type: str, stamped: list[ev.Event]) -> None:
        """Events the service appended to the schedule's history are durable."""
        for event in stamped:
            if isinstance(event, ev.ScheduleSkipped):
                self._skipped(schedule_id, workflow_type, event)
            elif isinstance(event, ev.ScheduleMissed):
                self._missed(schedule_id, workflow_type, event)
            elif isinstance(event, ev.ScheduleBuffered):
                if self.metrics is not None:
                    self.metrics.schedule_buffered.inc((workflow_type,))
                schedule_log.debug(
                    "schedule %s: the fire for %s is buffered until the running one closes",
                    schedule_id,
                    _iso(event.fire_at),
                    extra={"schedule_id": schedule_id, "workflow_type": workflow_type, "fire_at": _iso(event.fire_at)},
                )

    def _skipped(self, schedule_id: str, workflow_type: str, event: ev.ScheduleSkipped) -> None:
        if self.metrics is not None:
            self.metrics.schedule_skips.inc((workflow_type, event.reason))
        level = logging.DEBUG if event.reason in _QUIET_SKIPS else logging.INFO
        schedule_log.log(
            level,
            "schedule %s: the fire for %s is skipped (%s)",
            schedule_id,
            _iso(event.fire_at),
            event.reason,
            extra={
                "schedule_id": schedule_id,
                "workflow_type": workflow_type,
                "fire_at": _iso(event.fire_at),
                "reason": event.reason,
            },
        )

    def _missed(self, schedule_id: str, workflow_type: str, event: ev.ScheduleMissed) -> None:
        if self.metrics is not None:
            self.metrics.schedule_missed.inc((workflow_type,), event.count)
        schedule_log.info(
            "schedule %s missed %d fire(s) up to %s (outside its catch-up window)",
            schedule_id,
            event.count,
            _iso(event.up_to),
            extra={
                "schedule_id": schedule_id,
                "workflow_type": workflow_type,
                "count": event.count,
                "fire_at": _iso(event.up_to),
            },
        )


def _iso(when: datetime) -> str:
    return when.isoformat()
