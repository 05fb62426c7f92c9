"""Activity attempts: dispatch through task queues, durable retries, timeouts, heartbeats, cancellation and lost
workers.

Runs inside the engine core's thread (it is the core's collaborator, not an actor of its own). Each attempt goes
to its activity's task queue (``ActivityScheduled.options["task_queue"]``, ``"default"`` when absent), whose
limits and priorities are applied here (``_task_queues.TaskQueue``) and whose executor runs it: a local pool of
worker processes (``_activities.LocalPool``) or Ray (``_ray_executor.RayExecutor``); every executor reports by
task id, so what follows is the same for both. Every decision is recorded before it takes effect:
``ActivityStarted`` when an executor takes an attempt (an executor whose attempts may outlive the engine's
process, Ray's, is handed the attempt only once that record is durable), ``ActivityFailed`` with
``next_attempt_at`` before a backoff (the store derives a durable timer row from it, so a restarted engine
resumes the retry at the recorded time), and only the final outcome is delivered to the workflow. This module
builds every activity event the core records but ``ActivityScheduled`` and ``ActivityCancelRequested`` (the
workflow's commands: see ``_commands``).

Attempt-level deadlines (start-to-close, heartbeat, the cancellation grace) are in-memory timers: after an
engine restart the attempt they guarded is gone anyway and is recorded as lost. The schedule-to-close deadline
is derived from ``ActivityScheduled.recorded_at``, so it survives restarts.

A first attempt on a local worker is recorded with its outcome: its ``ActivityStarted`` waits in
``PendingActivity.unrecorded_start`` and is appended just before the outcome (docs/architecture.md, "First
attempts").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aion import events as ev
from aion._codec import decode_payload
from aion.clock import Clock
from aion.engine import _protocol as protocol
from aion.engine._activities import ActivityTask, LocalPool
from aion.engine._interfaces import Core, Then
from aion.engine._runs import PendingActivity, Run
from aion.engine._task_queues import TaskQueue
from aion.engine._timer_keys import ATTEMPT_DEADLINES, TimerKey, TimerKind
from aion.engine._timers import TimerService
from aion.observability._observer import Observer

log = logging.getLogger(__name__)

#: Failure types the engine itself records for attempts (they can be named in ``non_retryable_error_types``).
START_TO_CLOSE_TIMEOUT = "StartToCloseTimeout"
SCHEDULE_TO_CLOSE_TIMEOUT = "ScheduleToCloseTimeout"
HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
WORKER_LOST = "WorkerLost"
UNKNOWN_TASK_QUEUE = "UnknownTaskQueue"


class ActivityManager:
    """Drives every pending activity of every run through its attempts, on its task queue's executor."""

    def __init__(
        self,
        core: Core,
        timers: TimerService,
        queues: Mapping[str, TaskQueue],
        clock: Clock,
        *,
        cancel_grace: float,
        observer: Observer | None = None,
    ) -> None:
        self._core = core
        self._observer = observer if observer is not None else Observer()
        self._timers = timers
        self._queues = dict(queues)
        #: The queue of each local worker (from its ``WorkerUp``).
        self._worker_queue: dict[str, str] = {}
        #: The attempts an executor has taken, by task id.
        self._taken: dict[int, tuple[TaskQueue, ActivityTask]] = {}
        #: Attempts taken by an executor that records first, whose ``ActivityStarted`` is not durable yet.
        self._handing: set[int] = set()
        self._clock = clock
        self._cancel_grace = cancel_grace

    # -- from the workflow and the core ---------------------------------------------------------------------

    def scheduled(self, run: Run, activity: PendingActivity, scheduled_at: datetime) -> None:
        """``ActivityScheduled`` is durable: arm the overall deadline and dispatch attempt 1."""
        activity.scheduled_at = scheduled_at.timestamp()
        self._arm_schedule_deadline(run, activity)
        self._dispatch(run, activity)
        self.pump()

    def recover(self, run: Run) -> None:
        """After an engine restart (or a rebuild of the run): resume each pending activity where its history
        left it."""
        for activity in list(run.state.activities.values()):
            self._arm_schedule_deadline(run, activity)
            if activity.lost_attempt is not None:
                if activity.cancel_requested:
                    self._record_cancelled(run, activity)
                else:
                    failure = ev.Failure(WORKER_LOST, f"the engine stopped while attempt {activity.lost_attempt} ran")
                    activity.attempt = activity.lost_attempt
                    self._attempt_failed(run, activity, failure)
            elif activity.cancel_requested:
                self._record_cancelled(run, activity)
            elif activity.next_attempt_at is not None:
                self._arm_retry(run, activity, activity.next_attempt_at)
            else:
                self._dispatch(run, activity)

    def cancel(self, run: Run, activity_id: int) -> None:
        """The workflow asked to cancel ``activity_id`` (``ActivityCancelRequested`` is durable)."""
        self._cancel(run, activity_id)
        self.pump()

    def _cancel(self, run: Run, activity_id: int) -> None:
        activity = run.state.activities.get(activity_id)
        if activity is None or activity.cancel_requested:
            return
        activity.cancel_requested = True
        taken = None if activity.task_id is None else self._taken.get(activity.task_id)
        if activity.task_id is not None and taken is not None:
            taken[0].executor.cancel(activity.task_id)
            deadline = self._clock.time() + self._cancel_grace
            self._timers.arm(deadline, self._attempt_key(TimerKind.CANCEL_GRACE, run, activity, activity.task_id))
            return
        if activity.task_id is not None:
            self._withdraw(activity)
        self._record_cancelled(run, activity)

    def due(self, run: Run | None, key: TimerKey) -> None:
        """An activity deadline or retry time has come."""
        activity = None if run is None else run.state.activities.get(key.item)
        if run is None or activity is None:
            return
        kind = key.kind
        if kind is TimerKind.RETRY:
            activity.next_attempt_at = None
            if not activity.cancel_requested:
                self._dispatch(run, activity)
        elif kind is TimerKind.SCHEDULE_TO_CLOSE:
            self._kill_attempt(run, activity)
            timeout = activity.options.schedule_to_close_timeout or 0.0
            failure = ev.Failure(SCHEDULE_TO_CLOSE_TIMEOUT, f"schedule-to-close timeout of {timeout:g} s passed")
            self._record_final_failure(run, activity, failure, retryable=False)
        elif key.attempt == activity.task_id:  # else: a deadline of an attempt that has ended
            self._kill_attempt(run, activity)
            if kind is TimerKind.CANCEL_GRACE:
                self._record_cancelled(run, activity)
            elif kind is TimerKind.START_TO_CLOSE:
                timeout = activity.options.start_to_close_timeout or 0.0
                failure = ev.Failure(START_TO_CLOSE_TIMEOUT, f"start-to-close timeout of {timeout:g} s passed")
                self._attempt_failed(run, activity, failure)
            elif kind is TimerKind.HEARTBEAT:
                timeout = activity.options.heartbeat_timeout or 0.0
                failure = ev.Failure(HEARTBEAT_TIMEOUT, f"no heartbeat within the heartbeat timeout of {timeout:g} s")
                self._attempt_failed(run, activity, failure)
        self.pump()

    def forget(self, run: Run) -> None:
        """The run closed (or is rebuilt): stop its attempts and drop its deadlines."""
        for activity in list(run.state.activities.values()):
            self._kill_attempt(run, activity)
            self._disarm_schedule_deadline(run, activity)
            self._timers.disarm(self._activity_key(TimerKind.RETRY, run, activity))

    # -- from the executors --------------------------------------------------------------------------------

    def worker_up(self, worker_id: str, channel: Any, queue: str) -> None:
        """A local worker of ``queue`` (re)started: it takes the next queued attempt."""
        pool = self._local(queue)
        if pool is None:
            return
        self._worker_queue[worker_id] = queue
        pool.worker_up(worker_id, channel)
        self.pump()

    def worker_down(self, worker_id: str, reason: str) -> None:
        """A local worker died: the attempt it ran, if any, failed (retryable)."""
        pool = self._local(self._worker_queue.get(worker_id, ""))
        task = None if pool is None else pool.worker_down(worker_id)
        if task is not None:
            log.warning("activity worker %s lost (%s) while running %s", worker_id, reason, task)
            self.attempt_lost(task.task_id, f"the activity worker died: {reason}")
        self.pump()

    def received(self, worker_id: str, message: dict[str, Any]) -> None:
        """A frame from a local worker: an attempt's result, or a heartbeat."""
        pool = self._local(self._worker_queue.get(worker_id, ""))
        if pool is None:
            return
        kind = message.get("t")
        if kind == protocol.RESULT:
            task = pool.finished(worker_id)
            if task is not None and task.task_id == message.get("task"):
                self.attempt_done(task.task_id, message)
            self.pump()
        elif kind == protocol.HEARTBEAT:
            task = pool.task_of(worker_id)
            if task is not None and task.task_id == message.get("task"):
                self.heartbeat(task.task_id, message["details"])

    def attempt_done(self, task_id: int, message: dict[str, Any]) -> None:
        """An executor's attempt ended with its ``result`` frame."""
        taken = self._taken.pop(task_id, None)
        if taken is not None:
            taken[0].ended(task_id)
            if "heartbeat" in message:
                self._heartbeat(taken[1], decode_payload(message["heartbeat"]))
            self._result(taken[1], message)
        self.pump()

    def attempt_lost(self, task_id: int, reason: str) -> None:
        """An executor lost an attempt (its worker, Ray worker or node died): it failed, retryably."""
        taken = self._taken.pop(task_id, None)
        if taken is not None:
            taken[0].ended(task_id)
            task = taken[1]
            run = self._core.run_of(task.workflow_id)
            activity = self._current(run, task)
            if run is not None and activity is not None:
                self._end_attempt(run, activity)
                if activity.cancel_requested:
                    self._record_cancelled(run, activity)
                else:
                    self._attempt_failed(run, activity, ev.Failure(WORKER_LOST, reason))
        self.pump()

    def heartbeat(self, task_id: int, details: bytes | None) -> None:
        """An executor's running attempt heartbeated with ``details`` (encoded), or (``None``) started running:
        the heartbeat timeout of an executor that records first counts from then."""
        taken = self._taken.get(task_id)
        if taken is None:
            return
        if details is not None:
            self._heartbeat(taken[1], decode_payload(details))
            return
        run = self._core.run_of(taken[1].workflow_id)
        activity = self._current(run, taken[1])
        if run is not None and activity is not None:
            activity.last_heartbeat = self._clock.time()
            self._arm_heartbeat(run, activity, task_id, activity.last_heartbeat)

    def busy(self) -> bool:
        """Whether an attempt is queued or running."""
        return any(queue.busy() for queue in self._queues.values())

    def pump(self) -> None:
        """Hand each queue's backlog to its executor as far as its limits allow, recording ``ActivityStarted``."""
        now = self._clock.time()
        for queue in self._queues.values():
            for task in queue.ready(now):
                self._take(queue, task)
            at = queue.throttled_until(now)
            if at is not None:
                self._timers.arm(at, TimerKey(TimerKind.RATE_LIMIT, queue.name))

    def queue_names(self) -> list[str]:
        """The task queues this engine serves."""
        return list(self._queues)

    # -- internals ------------------------------------------------------------------------------------------

    def _local(self, queue: str) -> LocalPool | None:
        task_queue = self._queues.get(queue)
        executor = None if task_queue is None else task_queue.executor
        return executor if isinstance(executor, LocalPool) else None

    def _take(self, queue: TaskQueue, task: ActivityTask) -> None:
        """``queue`` lets ``task`` through: record ``ActivityStarted``, arm the attempt's deadlines, and hand it to
        the executor (once durable, for an executor that records first)."""
        run = self._core.run_of(task.workflow_id)
        activity = self._current(run, task)
        if run is None or activity is None:
            queue.ended(task.task_id)
            return
        if self._observer.tracing is not None:
            task.trace = self._observer.attempt_dispatched(
                run, task.activity_id, task.activity_type, task.attempt, self._clock.time()
            )
        executor = queue.executor
        self._taken[task.task_id] = (queue, task)
        now = self._clock.time()
        activity.last_heartbeat = now
        started = ev.ActivityStarted(workflow_id=run.workflow_id, activity_id=task.activity_id, attempt=task.attempt)
        if executor.record_first:
            activity.worker_id = f"{queue.name}:pending"
            self._handing.add(task.task_id)

            def hand_over(_: list[ev.Event]) -> None:
                if task.task_id in self._handing:
                    self._handing.discard(task.task_id)
                    activity.worker_id = executor.start(task)

            self._core.append(run, [started], then=hand_over, deferrable=True)
        else:
            activity.worker_id = executor.start(task)
            if task.attempt == 1:
                activity.unrecorded_start = started  # recorded with the outcome (see "First attempts")
                self._observer.attempt_taken(run, task.activity_id, now)
            else:
                self._core.append(run, [started], deferrable=True)
        start_to_close = activity.options.start_to_close_timeout
        if start_to_close is not None:
            key = self._attempt_key(TimerKind.START_TO_CLOSE, run, activity, task.task_id)
            self._timers.arm(now + start_to_close, key)
        if not executor.record_first:  # else from the attempt's notice that it runs (it may wait for a worker)
            self._arm_heartbeat(run, activity, task.task_id, now)

    def _result(self, task: ActivityTask, message: dict[str, Any]) -> None:
        """A worker finished ``task`` (success or failure)."""
        run = self._core.run_of(task.workflow_id)
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        self._end_attempt(run, activity)
        if message["ok"]:
            del run.state.activities[activity.activity_id]
            self._disarm_schedule_deadline(run, activity)
            result = decode_payload(message["result"])
            completed = ev.ActivityCompleted(
                workflow_id=run.workflow_id, activity_id=activity.activity_id, result=result, attempt=activity.attempt
            )
            self._record_outcome(run, activity, completed)
            return
        failure = decode_payload(message["failure"])
        assert isinstance(failure, ev.Failure)
        if activity.cancel_requested:
            self._record_cancelled(run, activity)
        else:
            self._attempt_failed(run, activity, failure)

    def _heartbeat(self, task: ActivityTask, details: Any) -> None:
        """The running attempt heartbeated: keep its details and push its heartbeat deadline."""
        run = self._core.run_of(task.workflow_id)
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        activity.heartbeat_details = details
        activity.last_heartbeat = self._clock.time()
        self._arm_heartbeat(run, activity, task.task_id, activity.last_heartbeat)

    def hold(self, run: Run) -> None:
        """The run was paused: withdraw its attempts queued and not started (they are dispatched on resume)."""
        for activity in run.state.activities.values():
            if activity.task_id is not None and activity.worker_id is None:
                self._withdraw(activity)
                activity.task_id = None

    def release_held(self, run: Run) -> None:
        """The run was resumed: dispatch the attempts held while it was paused."""
        for activity in run.state.activities.values():
            if activity.task_id is None and activity.next_attempt_at is None and not activity.cancel_requested:
                self._dispatch(run, activity)
        self.pump()

    def _dispatch(self, run: Run, activity: PendingActivity) -> None:
        if run.state.paused:
            activity.task_id = None  # held: dispatched when the run is resumed (release_held)
            return
        task = ActivityTask(
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            activity_id=activity.activity_id,
            activity_type=activity.activity_type,
            args=activity.args,
            attempt=activity.attempt,
            heartbeat_details=activity.heartbeat_details,
        )
        queue = self._queues.get(activity.options.task_queue)
        if queue is None:
            known = ", ".join(sorted(self._queues))
            failure = ev.Failure(
                UNKNOWN_TASK_QUEUE,
                f"task queue {activity.options.task_queue!r} is not declared by this engine (declared: {known})",
                non_retryable=True,
            )
            self._record_final_failure(run, activity, failure, retryable=False)
            return
        activity.task_id = task.task_id
        activity.worker_id = None
        queue.submit(task, activity.options.priority)

    def _withdraw(self, activity: PendingActivity) -> None:
        """Drop the activity's attempt from its queue's backlog (no executor has taken it)."""
        queue = self._queues.get(activity.options.task_queue)
        if queue is not None and activity.task_id is not None:
            queue.withdraw(activity.task_id)

    @staticmethod
    def _current(run: Run | None, task: ActivityTask) -> PendingActivity | None:
        if run is None or run.run_id != task.run_id or run.state.closing:
            return None
        activity = run.state.activities.get(task.activity_id)
        if activity is None or activity.task_id != task.task_id:
            return None
        return activity

    def _end_attempt(self, run: Run, activity: PendingActivity) -> None:
        task_id = activity.task_id or 0
        for kind in ATTEMPT_DEADLINES:
            self._timers.disarm(self._attempt_key(kind, run, activity, task_id))
        activity.task_id = None
        activity.worker_id = None

    def _kill_attempt(self, run: Run, activity: PendingActivity) -> None:
        """Stop the attempt now: withdraw it from its queue, or have its executor kill it. It still counts against
        the queue's ``max_concurrent`` until the executor reports it ended."""
        task_id = activity.task_id
        if task_id is None:
            return
        taken = self._taken.get(task_id)
        if taken is None:
            self._withdraw(activity)
        self._end_attempt(run, activity)
        if task_id in self._handing:  # never handed over: nothing runs, its slot is free now
            self._handing.discard(task_id)
            del self._taken[task_id]
            if taken is not None:
                taken[0].ended(task_id)
        elif taken is not None:
            taken[0].executor.kill(task_id)

    def _attempt_failed(self, run: Run, activity: PendingActivity, failure: ev.Failure) -> None:
        policy = activity.options.retry_policy
        attempt = activity.attempt
        retryable = policy.retries(failure.type, failure.non_retryable)
        next_at = self._clock.time() + policy.delay_after(attempt)
        deadline = activity.schedule_deadline()
        if not retryable or not policy.allows_another(attempt) or (deadline is not None and next_at >= deadline):
            self._record_final_failure(run, activity, failure, retryable=retryable)
            return
        failed = ev.ActivityFailed(
            workflow_id=run.workflow_id,
            activity_id=activity.activity_id,
            failure=failure,
            attempt=attempt,
            retryable=True,
            next_attempt_at=datetime.fromtimestamp(next_at, UTC),
            heartbeat_details=activity.heartbeat_details,
        )
        activity.attempt = attempt + 1
        activity.next_attempt_at = next_at
        self._record_outcome(run, activity, failed, then=lambda _: self._arm_retry(run, activity, next_at))

    def _record_final_failure(
        self, run: Run, activity: PendingActivity, failure: ev.Failure, *, retryable: bool
    ) -> None:
        run.state.activities.pop(activity.activity_id, None)
        self._disarm_schedule_deadline(run, activity)
        self._timers.disarm(self._activity_key(TimerKind.RETRY, run, activity))
        failed = ev.ActivityFailed(
            workflow_id=run.workflow_id,
            activity_id=activity.activity_id,
            failure=failure,
            attempt=activity.attempt,
            retryable=retryable,
            heartbeat_details=activity.heartbeat_details,
        )
        self._record_outcome(run, activity, failed)

    def _record_cancelled(self, run: Run, activity: PendingActivity) -> None:
        if run.state.activities.pop(activity.activity_id, None) is None:
            return
        self._disarm_schedule_deadline(run, activity)
        self._timers.disarm(self._activity_key(TimerKind.RETRY, run, activity))
        self._record_outcome(
            run, activity, ev.ActivityCancelled(workflow_id=run.workflow_id, activity_id=activity.activity_id)
        )

    def _record_outcome(self, run: Run, activity: PendingActivity, outcome: ev.Event, then: Then | None = None) -> None:
        """Append an attempt's ``outcome``, after its ``ActivityStarted`` if that waits to be recorded with it."""
        started = activity.unrecorded_start
        activity.unrecorded_start = None
        self._core.append(run, [outcome] if started is None else [started, outcome], then=then, deferrable=True)

    def _arm_retry(self, run: Run, activity: PendingActivity, at: float) -> None:
        if activity.activity_id in run.state.activities:
            self._timers.arm(at, self._activity_key(TimerKind.RETRY, run, activity))

    def _arm_heartbeat(self, run: Run, activity: PendingActivity, task_id: int, since: float) -> None:
        timeout = activity.options.heartbeat_timeout
        if timeout is not None:
            self._timers.arm(since + timeout, self._attempt_key(TimerKind.HEARTBEAT, run, activity, task_id))

    def _arm_schedule_deadline(self, run: Run, activity: PendingActivity) -> None:
        deadline = activity.schedule_deadline()
        if deadline is not None:
            self._timers.arm(deadline, self._activity_key(TimerKind.SCHEDULE_TO_CLOSE, run, activity))

    def _disarm_schedule_deadline(self, run: Run, activity: PendingActivity) -> None:
        self._timers.disarm(self._activity_key(TimerKind.SCHEDULE_TO_CLOSE, run, activity))

    @staticmethod
    def _activity_key(kind: TimerKind, run: Run, activity: PendingActivity) -> TimerKey:
        return TimerKey(kind, run.workflow_id, run.run_id, activity.activity_id)

    @staticmethod
    def _attempt_key(kind: TimerKind, run: Run, activity: PendingActivity, task_id: int) -> TimerKey:
        return TimerKey(kind, run.workflow_id, run.run_id, activity.activity_id, task_id)
