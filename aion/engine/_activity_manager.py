"""Activity attempts: dispatch, durable retries, timeouts, heartbeats, cancellation and lost workers.

Runs inside the engine core's thread (it is the core's helper, not an actor of its own). Every decision is
recorded before it takes effect: ``ActivityStarted`` when a worker takes an attempt, ``ActivityFailed`` with
``next_attempt_at`` before a backoff (the store derives a durable timer row from it, so a restarted engine
resumes the retry at the recorded time), and only the final outcome is delivered to the workflow.

Attempt-level deadlines (start-to-close, heartbeat, the cancellation grace) are in-memory timers: after an
engine restart the attempt they guarded is gone anyway and is recorded as lost. The schedule-to-close deadline
is derived from ``ActivityScheduled.recorded_at``, so it survives restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aion import events as ev
from aion._codec import decode_payload
from aion.engine import _protocol as protocol
from aion.engine._activities import ActivityPool, ActivityTask
from aion.engine._runs import PendingActivity, Run
from aion.engine._timers import TimerService
from aion.retry import RetryPolicy
from supervisors import ChannelClosedError

log = logging.getLogger(__name__)

#: Failure types the engine itself records for attempts (they can be named in ``non_retryable_error_types``).
START_TO_CLOSE_TIMEOUT = "StartToCloseTimeout"
SCHEDULE_TO_CLOSE_TIMEOUT = "ScheduleToCloseTimeout"
HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
WORKER_LOST = "WorkerLost"

Append = Callable[..., None]


class WorkerKiller(Protocol):
    """Kills an activity worker process (its supervisor replaces it)."""

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL the worker ``worker_id``."""


class ActivityManager:
    """Drives every pending activity of every run through its attempts."""

    def __init__(
        self,
        append: Append,
        timers: TimerService,
        pool: ActivityPool,
        workers: WorkerKiller,
        *,
        cancel_grace: float,
    ) -> None:
        self._append = append
        self._timers = timers
        self._pool = pool
        self._workers = workers
        self._cancel_grace = cancel_grace

    # -- entry points -----------------------------------------------------------------------------------------

    def scheduled(self, run: Run, activity: PendingActivity, scheduled_at: datetime) -> None:
        """``ActivityScheduled`` is durable: arm the overall deadline and dispatch attempt 1."""
        activity.scheduled_at = scheduled_at.timestamp()
        self._arm_schedule_deadline(run, activity)
        self._dispatch(run, activity)

    def recover(self, run: Run, history: Sequence[ev.Event]) -> None:
        """After an engine restart: resume each pending activity where its history left it."""
        for activity in list(run.activities.values()):
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

    def assigned(self, run: Run | None, worker_id: str, task: ActivityTask) -> None:
        """A worker took ``task``: record ``ActivityStarted`` and arm the attempt's deadlines."""
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        activity.worker_id = worker_id
        now = datetime.now(UTC).timestamp()
        activity.last_heartbeat = now
        self._append(
            run, [ev.ActivityStarted(workflow_id=run.workflow_id, activity_id=task.activity_id, attempt=task.attempt)]
        )
        start_to_close = activity.options.get("start_to_close_timeout")
        if start_to_close is not None:
            self._timers.arm(
                now + start_to_close, ("start_to_close", run.workflow_id, run.run_id, task.activity_id, task.task_id)
            )
        self._arm_heartbeat(run, activity, task.task_id, now)

    def result(self, run: Run | None, task: ActivityTask, message: dict[str, Any]) -> None:
        """A worker finished ``task`` (success or failure)."""
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        self._end_attempt(run, activity)
        if message["ok"]:
            del run.activities[activity.activity_id]
            self._disarm_schedule_deadline(run, activity)
            result = decode_payload(message["result"])
            completed = ev.ActivityCompleted(
                workflow_id=run.workflow_id, activity_id=activity.activity_id, result=result, attempt=activity.attempt
            )
            self._append(run, [completed])
            return
        failure = decode_payload(message["failure"])
        assert isinstance(failure, ev.Failure)
        if activity.cancel_requested:
            self._record_cancelled(run, activity)
        else:
            self._attempt_failed(run, activity, failure)

    def heartbeat(self, run: Run | None, task: ActivityTask, details: Any) -> None:
        """The running attempt heartbeated: keep its details and push its heartbeat deadline."""
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        activity.heartbeat_details = details
        activity.last_heartbeat = datetime.now(UTC).timestamp()
        self._arm_heartbeat(run, activity, task.task_id, activity.last_heartbeat)

    def worker_lost(self, run: Run | None, task: ActivityTask, reason: str) -> None:
        """The worker running ``task`` died: the attempt failed (retryable)."""
        activity = self._current(run, task)
        if run is None or activity is None:
            return
        self._end_attempt(run, activity)
        if activity.cancel_requested:
            self._record_cancelled(run, activity)
            return
        self._attempt_failed(run, activity, ev.Failure(WORKER_LOST, f"the activity worker died: {reason}"))

    def cancel(self, run: Run, activity_id: int) -> None:
        """The workflow asked to cancel ``activity_id`` (``ActivityCancelRequested`` is being recorded)."""
        activity = run.activities.get(activity_id)
        if activity is None or activity.cancel_requested:
            return
        activity.cancel_requested = True
        if activity.task_id is not None and activity.worker_id is not None:
            channel = self._pool.channel_of(activity.worker_id)
            if channel is not None:
                self._send_cancel(channel, activity.task_id)
            deadline = datetime.now(UTC).timestamp() + self._cancel_grace
            self._timers.arm(deadline, ("cancel_grace", run.workflow_id, run.run_id, activity_id, activity.task_id))
            return
        if activity.task_id is not None:
            self._pool.withdraw(activity.task_id)
        self._record_cancelled(run, activity)

    def due(self, run: Run | None, key: tuple[Any, ...]) -> None:
        """An activity deadline or retry time has come."""
        kind, activity_id = key[0], key[3]
        activity = None if run is None else run.activities.get(activity_id)
        if run is None or activity is None:
            return
        if kind == "retry":
            activity.next_attempt_at = None
            if not activity.cancel_requested:
                self._dispatch(run, activity)
            return
        if kind == "schedule_to_close":
            self._kill_attempt(run, activity)
            timeout = activity.options["schedule_to_close_timeout"]
            failure = ev.Failure(SCHEDULE_TO_CLOSE_TIMEOUT, f"schedule-to-close timeout of {timeout:g} s passed")
            self._record_final_failure(run, activity, failure, retryable=False)
            return
        if key[4] != activity.task_id:
            return  # a deadline of an attempt that has ended
        self._kill_attempt(run, activity)
        if kind == "cancel_grace":
            self._record_cancelled(run, activity)
        elif kind == "start_to_close":
            timeout = activity.options["start_to_close_timeout"]
            failure = ev.Failure(START_TO_CLOSE_TIMEOUT, f"start-to-close timeout of {timeout:g} s passed")
            self._attempt_failed(run, activity, failure)
        elif kind == "heartbeat":
            timeout = activity.options["heartbeat_timeout"]
            failure = ev.Failure(HEARTBEAT_TIMEOUT, f"no heartbeat within the heartbeat timeout of {timeout:g} s")
            self._attempt_failed(run, activity, failure)

    def forget(self, run: Run) -> None:
        """The run closed: stop its attempts and drop its deadlines."""
        for activity in list(run.activities.values()):
            self._kill_attempt(run, activity)
            self._disarm_schedule_deadline(run, activity)
            self._timers.disarm(("retry", run.workflow_id, run.run_id, activity.activity_id))

    # -- internals ------------------------------------------------------------------------------------------

    def _dispatch(self, run: Run, activity: PendingActivity) -> None:
        task = ActivityTask(
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            activity_id=activity.activity_id,
            activity_type=activity.activity_type,
            args=activity.args,
            attempt=activity.attempt,
            heartbeat_details=activity.heartbeat_details,
        )
        activity.task_id = task.task_id
        activity.worker_id = None
        self._pool.submit(task)

    @staticmethod
    def _current(run: Run | None, task: ActivityTask) -> PendingActivity | None:
        if run is None or run.run_id != task.run_id or run.closing:
            return None
        activity = run.activities.get(task.activity_id)
        if activity is None or activity.task_id != task.task_id:
            return None
        return activity

    def _end_attempt(self, run: Run, activity: PendingActivity) -> None:
        task_id = activity.task_id
        for kind in ("start_to_close", "heartbeat", "cancel_grace"):
            self._timers.disarm((kind, run.workflow_id, run.run_id, activity.activity_id, task_id))
        activity.task_id = None
        activity.worker_id = None

    def _kill_attempt(self, run: Run, activity: PendingActivity) -> None:
        """Stop the attempt now: withdraw it from the queue, or kill the worker running it."""
        if activity.task_id is None:
            return
        worker_id = activity.worker_id
        if worker_id is None:
            self._pool.withdraw(activity.task_id)
        self._end_attempt(run, activity)
        if worker_id is not None:
            # The worker stays busy with the abandoned task until its exit is seen; then it is replaced.
            self._workers.kill_worker(worker_id)

    def _attempt_failed(self, run: Run, activity: PendingActivity, failure: ev.Failure) -> None:
        policy = RetryPolicy.from_dict(activity.options.get("retry_policy"))
        attempt = activity.attempt
        retryable = policy.retries(failure.type, failure.non_retryable)
        next_at = datetime.now(UTC) + timedelta(seconds=policy.delay_after(attempt))
        deadline = activity.schedule_deadline()
        if (
            not retryable
            or not policy.allows_another(attempt)
            or (deadline is not None and next_at.timestamp() >= deadline)
        ):
            self._record_final_failure(run, activity, failure, retryable=retryable)
            return
        failed = ev.ActivityFailed(
            workflow_id=run.workflow_id,
            activity_id=activity.activity_id,
            failure=failure,
            attempt=attempt,
            retryable=True,
            next_attempt_at=next_at,
            heartbeat_details=activity.heartbeat_details,
        )
        activity.attempt = attempt + 1
        activity.next_attempt_at = next_at.timestamp()
        self._append(run, [failed], then=lambda _: self._arm_retry(run, activity, next_at.timestamp()))

    def _record_final_failure(
        self, run: Run, activity: PendingActivity, failure: ev.Failure, *, retryable: bool
    ) -> None:
        run.activities.pop(activity.activity_id, None)
        self._disarm_schedule_deadline(run, activity)
        self._timers.disarm(("retry", run.workflow_id, run.run_id, activity.activity_id))
        failed = ev.ActivityFailed(
            workflow_id=run.workflow_id,
            activity_id=activity.activity_id,
            failure=failure,
            attempt=activity.attempt,
            retryable=retryable,
            heartbeat_details=activity.heartbeat_details,
        )
        self._append(run, [failed])

    def _record_cancelled(self, run: Run, activity: PendingActivity) -> None:
        if run.activities.pop(activity.activity_id, None) is None:
            return
        self._disarm_schedule_deadline(run, activity)
        self._timers.disarm(("retry", run.workflow_id, run.run_id, activity.activity_id))
        self._append(run, [ev.ActivityCancelled(workflow_id=run.workflow_id, activity_id=activity.activity_id)])

    def _arm_retry(self, run: Run, activity: PendingActivity, at: float) -> None:
        if activity.activity_id in run.activities:
            self._timers.arm(at, ("retry", run.workflow_id, run.run_id, activity.activity_id))

    def _arm_heartbeat(self, run: Run, activity: PendingActivity, task_id: int, since: float) -> None:
        timeout = activity.options.get("heartbeat_timeout")
        if timeout is not None:
            self._timers.arm(since + timeout, ("heartbeat", run.workflow_id, run.run_id, activity.activity_id, task_id))

    def _arm_schedule_deadline(self, run: Run, activity: PendingActivity) -> None:
        deadline = activity.schedule_deadline()
        if deadline is not None:
            self._timers.arm(deadline, ("schedule_to_close", run.workflow_id, run.run_id, activity.activity_id))

    def _disarm_schedule_deadline(self, run: Run, activity: PendingActivity) -> None:
        self._timers.disarm(("schedule_to_close", run.workflow_id, run.run_id, activity.activity_id))

    @staticmethod
    def _send_cancel(channel: Any, task_id: int) -> None:
        try:
            channel.send({"t": protocol.CANCEL, "task": task_id})
        except ChannelClosedError:
            log.info("worker died before it could be told to cancel task %s", task_id)
