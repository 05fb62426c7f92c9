"""What the engine core tells about what it records and what happens to its processes: logs, metrics, spans.

The core calls an :class:`Observer` from its own thread: :meth:`Observer.recorded` once per durable append (from
the append pipeline's settling, which sees every event the core records), and the process notices (exits,
restarts, give-ups) as the supervision callbacks deliver them. Nothing here is on a workflow process's or an
activity worker's side: they report through the engine. A healthy workflow logs nothing at INFO.

Loggers: ``aion.engine`` (engine start and stop, runs failing, timing out, terminated, cancelled, reset, paused,
resumed, unblocked; WARNING: blocked; DEBUG: resumptions, evictions), ``aion.engine.commits`` (DEBUG: each
committed batch), ``aion.activities`` (attempts failing), ``aion.supervisors`` (process crashes, restarts,
give-ups); ``aion.schedules`` (fires skipped and missed: see ``_schedules``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aion import events as ev
from aion.observability._metrics import Metrics
from aion.observability._schedules import ScheduleObserver

if TYPE_CHECKING:
    from aion.engine._runs import Run

engine_log = logging.getLogger("aion.engine")
commit_log = logging.getLogger("aion.engine.commits")
activity_log = logging.getLogger("aion.activities")
process_log = logging.getLogger("aion.supervisors")

#: Failure types of attempts the engine fails by a timeout, and the ``kind`` label of each.
_TIMEOUT_KINDS = {
    "StartToCloseTimeout": "start_to_close",
    "ScheduleToCloseTimeout": "schedule_to_close",
    "HeartbeatTimeout": "heartbeat",
}


def reason_kind(reason: str) -> str:
    """The exit kind (``normal``, ``killed``, ``exception``, ``exit_code``, ``shutdown``, ``noproc``) of an exit
    reason as the supervision callbacks give it (``str(ExitReason)``)."""
    word = reason.split(" ", 1)[0]
    return {"exit": "exit_code"}.get(word, word) if word else "unknown"


def _ids(run: Run) -> dict[str, Any]:
    return {"workflow_id": run.workflow_id, "run_id": run.run_id, "workflow_type": run.workflow_type}


def _ts(event: ev.Event) -> float:
    return event.recorded_at.timestamp()


class Observer:
    """Turns the core's notices into log records, metric counts and spans (each part optional)."""

    def __init__(self, metrics: Metrics | None = None, tracing: Any = None) -> None:
        self.metrics = metrics
        self.tracing = tracing
        #: Per workflow: activity id → [activity type, ready time, started time] (metrics and logs).
        self._activities: dict[str, dict[int, list[Any]]] = {}
        self._event_keys: dict[type, tuple[str, ...]] = {}
        #: Workflow processes that crashed and have not come up again: child id → (supervisor, exit kind).
        self._crashed: dict[str, tuple[str, str]] = {}
        #: Activity workers that exited and have not come up again: worker id → the reason last logged (a worker
        #: whose restarts keep failing the same way is logged once, then at DEBUG, until it is up again).
        self._workers_down: dict[str, str] = {}
        #: What the schedule service tells (its own thread, its own series).
        self.schedules = ScheduleObserver(metrics)
        self._handlers: dict[type, Callable[[Run, Any], None]] = {
            ev.WorkflowStarted: self._started,
            ev.WorkflowCompleted: self._closed,
            ev.WorkflowFailed: self._closed,
            ev.WorkflowCancelled: self._closed,
            ev.WorkflowTerminated: self._closed,
            ev.WorkflowTimedOut: self._closed,
            ev.WorkflowContinuedAsNew: self._closed,
            ev.ActivityScheduled: self._activity_scheduled,
            ev.ActivityStarted: self._activity_started,
            ev.ActivityCompleted: self._activity_ended,
            ev.ActivityFailed: self._activity_ended,
            ev.ActivityCancelled: self._activity_ended,
            ev.WorkflowBlocked: self._blocked,
            ev.WorkflowUnblocked: self._held,
            ev.WorkflowPaused: self._held,
            ev.WorkflowResumed: self._held,
        }

    # -- the engine -----------------------------------------------------------------------------------------

    @staticmethod
    def engine_started(data_dir: Path, resumed: int, blocked: int = 0, paused: int = 0, schedules: int = 0) -> None:
        """The engine is up: it resumes ``resumed`` running workflows, tries ``blocked`` blocked ones again with
        its code, keeps ``paused`` ones waiting, and fires ``schedules`` schedules."""
        engine_log.info(
            "engine started on %s; resuming %d running workflows (%d blocked, %d paused); %d schedules",
            data_dir,
            resumed,
            blocked,
            paused,
            schedules,
            extra={
                "data_dir": str(data_dir),
                "resumed": resumed,
                "blocked": blocked,
                "paused": paused,
                "schedules": schedules,
            },
        )

    @staticmethod
    def engine_stopped(data_dir: Path) -> None:
        """The engine stopped."""
        engine_log.info("engine stopped on %s", data_dir, extra={"data_dir": str(data_dir)})

    # -- recording ------------------------------------------------------------------------------------------

    def recorded(self, run: Run, stamped: list[ev.Event]) -> None:
        """``stamped`` (one append of ``run``) is durable."""
        metrics = self.metrics
        handlers = self._handlers
        if metrics is not None:
            metrics.appends.inc()
            keys = self._event_keys
            events = metrics.events
            for event in stamped:
                cls = type(event)
                key = keys.get(cls)
                if key is None:
                    key = keys[cls] = (cls.__name__,)
                events.inc(key)
        for event in stamped:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(run, event)
            if isinstance(event, ev.WorkflowStarted) and event.reset_from_run_id is not None:
                break  # what follows a reset's start is a copy of the old run's history: nothing happens again

    def append_failed(self) -> None:
        """An append was refused or failed (the pipeline logs it)."""
        if self.metrics is not None:
            self.metrics.append_failures.inc()

    @staticmethod
    def committed(outcomes: int) -> None:
        """One batch of the core's appends committed (DEBUG)."""
        if commit_log.isEnabledFor(logging.DEBUG):
            commit_log.debug("committed %d appends", outcomes)

    def _started(self, run: Run, event: ev.WorkflowStarted) -> None:
        if self.metrics is not None:
            self.metrics.workflows_started.inc((event.workflow_type,))
        if event.reset_from_run_id is not None:
            if self.metrics is not None:
                self.metrics.workflows_reset.inc((event.workflow_type,))
            engine_log.info(
                "workflow run reset: run %s goes on from a copy of run %s up to event %s",
                event.run_id,
                event.reset_from_run_id,
                event.reset_to_seq,
                extra={
                    "workflow_id": event.workflow_id,
                    "run_id": event.run_id,
                    "workflow_type": event.workflow_type,
                    "reset_from_run_id": event.reset_from_run_id,
                    "to_seq": event.reset_to_seq,
                },
            )
        if self.tracing is not None:
            self.tracing.run_span(event.workflow_id, event.run_id, event)

    def _closed(self, run: Run, event: ev.Event) -> None:
        self._activities.pop(run.workflow_id, None)
        workflow_type = run.workflow_type
        error: str | None = None
        if isinstance(event, ev.WorkflowFailed):
            error = f"{event.failure.type}: {event.failure.message}"
            engine_log.info("workflow run failed: %s", error, extra={**_ids(run), "error": error})
        elif isinstance(event, ev.WorkflowTimedOut):
            error = f"{event.kind} timeout"
            engine_log.info("workflow run timed out (%s)", event.kind, extra={**_ids(run), "reason": event.kind})
        elif isinstance(event, ev.WorkflowTerminated):
            error = f"terminated: {event.reason}"
            engine_log.info("workflow run terminated: %s", event.reason, extra={**_ids(run), "reason": event.reason})
        elif isinstance(event, ev.WorkflowCancelled):
            engine_log.info("workflow run cancelled", extra=_ids(run))
        metrics = self.metrics
        if metrics is not None:
            counter, outcome = {
                ev.WorkflowCompleted: (metrics.workflows_completed, "completed"),
                ev.WorkflowFailed: (metrics.workflows_failed, "failed"),
                ev.WorkflowCancelled: (metrics.workflows_cancelled, "cancelled"),
                ev.WorkflowTerminated: (metrics.workflows_terminated, "terminated"),
                ev.WorkflowTimedOut: (metrics.workflows_timed_out, "timed_out"),
                ev.WorkflowContinuedAsNew: (metrics.workflows_continued, "continued_as_new"),
            }[type(event)]
            counter.inc((workflow_type,))
            metrics.workflow_duration.observe(_ts(event) - run.state.started_at, (workflow_type, outcome))
        if self.tracing is not None:
            self.tracing.run_span(run.workflow_id, run.run_id, run.state.started)
            self.tracing.run_closed(run.workflow_id, run.run_id, event, error)

    def _blocked(self, run: Run, event: ev.WorkflowBlocked) -> None:
        if self.metrics is not None:
            self.metrics.workflows_blocked.inc((run.workflow_type, event.cause))
        engine_log.warning(
            "workflow run blocked (%s): %s",
            event.cause,
            event.message,
            extra={**_ids(run), "cause": event.cause, "error": event.message},
        )

    def _held(self, run: Run, event: ev.WorkflowUnblocked | ev.WorkflowPaused | ev.WorkflowResumed) -> None:
        """Unblocked, paused, resumed: INFO, and counted."""
        metrics = self.metrics
        fields = _ids(run)
        if isinstance(event, ev.WorkflowUnblocked):
            counter = None if metrics is None else metrics.workflows_unblocked
            engine_log.info("workflow run unblocked: its code fits its history again", extra=fields)
        elif isinstance(event, ev.WorkflowPaused):
            counter = None if metrics is None else metrics.workflows_paused
            engine_log.info(
                "workflow run paused: %s", event.reason or "no reason given", extra={**fields, "reason": event.reason}
            )
        else:
            counter = None if metrics is None else metrics.workflows_resumed
            engine_log.info("workflow run resumed after its pause", extra=fields)
        if counter is not None:
            counter.inc((run.workflow_type,))

    def _activity_scheduled(self, run: Run, event: ev.ActivityScheduled) -> None:
        if self.metrics is not None:
            pending = self._activities.setdefault(run.workflow_id, {})
            pending[event.activity_id] = [event.activity_type, _ts(event), None]

    def _activity(self, run: Run, activity_id: int) -> list[Any]:
        """What is known of a pending activity (rebuilt from the run's state after a resume)."""
        pending = self._activities.setdefault(run.workflow_id, {})
        known = pending.get(activity_id)
        if known is None:
            activity = run.state.activities.get(activity_id)
            activity_type = activity.activity_type if activity is not None else "unknown"
            ready = activity.scheduled_at if activity is not None else None
            known = pending[activity_id] = [activity_type, ready, None]
        return known

    def attempt_taken(self, run: Run, activity_id: int, now: float) -> None:
        """A first attempt whose ``ActivityStarted`` is recorded with its outcome started running at ``now``: the
        schedule-to-start and execution times count from then, not from that record."""
        if self.metrics is not None:
            self._activity(run, activity_id)[2] = now

    def _activity_started(self, run: Run, event: ev.ActivityStarted) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        known = self._activity(run, event.activity_id)
        key = (known[0],)
        metrics.activity_attempts.inc(key)
        started = known[2] if known[2] is not None else _ts(event)
        if known[1] is not None:
            metrics.activity_schedule_to_start.observe(max(0.0, started - known[1]), key)
        known[2] = started

    def _activity_ended(self, run: Run, event: ev.ActivityCompleted | ev.ActivityFailed | ev.ActivityCancelled) -> None:
        activity_id = event.activity_id
        if self.metrics is None and not isinstance(event, ev.ActivityFailed) and self.tracing is None:
            return
        known = self._activity(run, activity_id)
        activity_type = known[0]
        error = None
        final = True
        if isinstance(event, ev.ActivityFailed):
            failure = event.failure
            error = f"{failure.type}: {failure.message}"
            final = event.next_attempt_at is None
            next_at = None if final else event.next_attempt_at
            activity_log.info(
                "activity attempt %d failed%s: %s",
                event.attempt,
                "" if final else f"; next attempt at {next_at.isoformat() if next_at else '?'}",
                error,
                extra={
                    **_ids(run),
                    "activity_id": activity_id,
                    "activity_type": activity_type,
                    "attempt": event.attempt,
                    "error": error,
                    "next_attempt_at": None if next_at is None else next_at.isoformat(),
                },
            )
        metrics = self.metrics
        if metrics is not None:
            key = (activity_type,)
            if known[2] is not None and not isinstance(event, ev.ActivityCancelled):
                metrics.activity_execution.observe(max(0.0, _ts(event) - known[2]), key)
            if isinstance(event, ev.ActivityFailed):
                metrics.activity_failures.inc((activity_type, "true" if final else "false"))
                kind = _TIMEOUT_KINDS.get(event.failure.type)
                if kind is not None:
                    metrics.activity_timeouts.inc((activity_type, kind))
                if not final and event.next_attempt_at is not None:
                    known[1] = event.next_attempt_at.timestamp()
                    known[2] = None
        if final:
            self._activities.get(run.workflow_id, {}).pop(activity_id, None)
        if self.tracing is not None:
            self.tracing.attempt_ended(run.workflow_id, activity_id, event, error)

    # -- timers and activity dispatch -----------------------------------------------------------------------

    def timer_late(self, lag: float) -> None:
        """A durable timer is handled ``lag`` seconds after its time."""
        if self.metrics is not None:
            self.metrics.timer_lag.observe(max(0.0, lag))

    def attempt_dispatched(self, run: Run, activity_id: int, activity_type: str, attempt: int, now: float) -> Any:
        """An attempt goes to a worker: its trace context for the worker (None without tracing)."""
        if self.tracing is None:
            return None
        return self.tracing.attempt_started(
            run.workflow_id, run.run_id, run.state.started, (activity_id, activity_type, attempt), now
        )

    def start_context(self, parent: tuple[str, str] | None, given: Mapping[str, str] | None) -> dict[str, str] | None:
        """The trace context a new run's ``WorkflowStarted`` records: its parent run's span for a child, else
        the context its starter gave."""
        if self.tracing is None:
            return None
        if parent is not None:
            carrier: dict[str, str] | None = self.tracing.child_carrier(*parent)
            return carrier
        return None if given is None else dict(given)

    # -- residency ------------------------------------------------------------------------------------------

    @staticmethod
    def resumed(run: Run) -> None:
        """A running workflow was rebuilt from its history (engine start, or after a failed append)."""
        engine_log.debug("workflow run resumed from history", extra=_ids(run))

    def evicted(self, run: Run) -> None:
        """A parked run gave its process up (its ``WorkflowStarted`` is about to be shed: the run's span is
        opened from it now if this engine has none yet)."""
        engine_log.debug("workflow run evicted from its process", extra=_ids(run))
        if self.tracing is not None:
            self.tracing.run_span(run.workflow_id, run.run_id, run.state.started)

    # -- processes ------------------------------------------------------------------------------------------

    def process_down(self, child_id: str, reason: str, run: Run | None) -> None:
        """A workflow process exited (``run``: the run it hosted, when it is still that run's process)."""
        kind = reason_kind(reason)
        supervisor = f"workflows:{run.workflow_type}" if run is not None else "workflows"
        if self.metrics is not None:
            self.metrics.process_exits.inc((supervisor, kind))
        if run is None or kind in ("normal", "shutdown"):
            return
        # Counted as a restart when its process comes up again: past the intensity, a give-up follows instead.
        self._crashed[child_id] = (supervisor, kind)
        process_log.info(
            "workflow process crashed (%s)",
            reason,
            extra={**_ids(run), "reason": reason, "child_id": child_id, "supervisor": supervisor},
        )

    def process_up(self, child_id: str, run: Run | None) -> None:
        """A workflow process came up (a restart, if its previous one crashed)."""
        crashed = self._crashed.pop(child_id, None)
        if crashed is None:
            return
        if self.metrics is not None:
            self.metrics.process_restarts.inc(crashed)
        if run is not None:
            process_log.info(
                "workflow process restarted; it replays the run's history",
                extra={**_ids(run), "child_id": child_id, "supervisor": crashed[0], "reason": crashed[1]},
            )

    def process_gave_up(self, child_id: str, reason: str, run: Run | None) -> None:
        """A workflow process crashed past its restart intensity (or could not be started): its run fails."""
        self._crashed.pop(child_id, None)
        supervisor = f"workflows:{run.workflow_type}" if run is not None else "workflows"
        if self.metrics is not None:
            self.metrics.process_gave_up.inc((supervisor,))
        fields: dict[str, Any] = {"reason": reason, "child_id": child_id, "supervisor": supervisor}
        if run is not None:
            fields.update(_ids(run))
        process_log.info("workflow process gave up (%s); its run fails", reason, extra=fields)

    def worker_up(self, worker_id: str) -> None:
        """An activity worker came up."""
        self._workers_down.pop(worker_id, None)

    def worker_down(self, worker_id: str, reason: str) -> None:
        """An activity worker exited (its supervisor replaces it)."""
        kind = reason_kind(reason)
        if self.metrics is not None:
            self.metrics.process_exits.inc(("activities", kind))
        if kind not in ("normal", "shutdown"):
            if self.metrics is not None:
                self.metrics.process_restarts.inc(("activities", kind))
            repeated = self._workers_down.get(worker_id) == reason
            self._workers_down[worker_id] = reason
            (process_log.debug if repeated else process_log.info)(
                "activity worker %s exited (%s); restarting it",
                worker_id,
                reason,
                extra={"reason": reason, "child_id": worker_id, "supervisor": "activities"},
            )
