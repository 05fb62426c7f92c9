"""Workflow commands into events: what a workflow process asks for, recorded, then made to happen.

Each command is handled by the method named for it. A command's anchor event is recorded first; its effect
(dispatching an activity, arming a timer, starting a child, delivering a signal) comes once that is durable.
Builds ``ActivityScheduled``, ``ActivityCancelRequested``, ``TimerStarted``, ``TimerCancelled``,
``WorkflowCompleted``, ``WorkflowCancelled``, ``ChildWorkflowStarted``, ``ChildWorkflowCancelRequested``,
``SignalExternalSent``, ``SearchAttributesUpserted`` and ``MarkerRecorded`` (``workflow.patched``); failing
and continuing as new are the lifecycle's. Runs inside the core's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from traceback import format_exception
from typing import Any

from aion import events as ev
from aion._codec import check_payload
from aion._ids import new_run_id
from aion.clock import Clock
from aion.engine._activity_manager import ActivityManager
from aion.engine._interfaces import Core
from aion.engine._lifecycle import RunLifecycle
from aion.engine._options import ActivityOptions, StartOptions
from aion.engine._relations import Relations
from aion.engine._runs import ChildRef, PendingActivity, PendingSignal, Run
from aion.engine._timer_keys import TimerKey, TimerKind
from aion.engine._timer_lead import record_at
from aion.engine._timers import TimerService
from aion.engine._updates import Updates
from aion.errors import InvalidArgumentError, PayloadError
from aion.visibility import SearchAttributeSchema
from aion.workflow._commands import (
    CancelTimer,
    CancelWorkflow,
    Command,
    CompleteUpdate,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    RecordMarker,
    RequestCancelActivity,
    RequestCancelChild,
    ScheduleActivity,
    SignalExternal,
    StartChild,
    StartTimer,
    UpsertSearchAttributes,
)
from aion.workflow._failures import truncated

log = logging.getLogger(__name__)


class CommandHandler:
    """Records the commands of the runs' workflow processes and applies them once durable."""

    def __init__(
        self,
        core: Core,
        *,
        lifecycle: RunLifecycle,
        relations: Relations,
        activities: ActivityManager,
        timers: TimerService,
        clock: Clock,
        schema: SearchAttributeSchema | None = None,
        updates: Updates | None = None,
    ) -> None:
        self._core = core
        self._schema = schema or SearchAttributeSchema()
        self._lifecycle = lifecycle
        self._relations = relations
        self._activities = activities
        self._timers = timers
        self._clock = clock
        self._handlers: dict[type[Command], Callable[[Run, Any], None]] = {
            ScheduleActivity: self._on_schedule_activity,
            RequestCancelActivity: self._on_request_cancel_activity,
            StartTimer: self._on_start_timer,
            CancelTimer: self._on_cancel_timer,
            CompleteWorkflow: self._on_complete_workflow,
            FailWorkflow: self._on_fail_workflow,
            CancelWorkflow: self._on_cancel_workflow,
            ContinueAsNew: self._lifecycle.continue_as_new,
            StartChild: self._on_start_child,
            RequestCancelChild: self._on_request_cancel_child,
            SignalExternal: self._on_signal_external,
            UpsertSearchAttributes: self._on_upsert_search_attributes,
            RecordMarker: self._on_record_marker,
        }
        if updates is not None:
            self._handlers[CompleteUpdate] = updates.completed

    def handle(self, run: Run, commands: list[Command]) -> None:
        """Handle a batch of commands from the run's process, in order. A command issued already (by an earlier
        process of the run, before a replay) is never issued twice; nothing is taken from a closing run."""
        state = run.state
        for command in commands:
            if state.closing:
                return
            key = command.key
            if key in state.issued and not isinstance(command, CompleteWorkflow | FailWorkflow):
                continue
            state.issued.add(key)
            try:
                self._handlers[type(command)](run, command)
            except Exception as error:  # a bug or an input that slipped past validation: never drop it silently
                self._refused(run, command, error)

    def _refused(self, run: Run, command: Command, error: Exception) -> None:
        """A command could not be turned into its event: the run fails with the cause, recorded, and the engine
        goes on (before, such a command was dropped and the run hung holding its process)."""
        log.exception("workflow %r: cannot apply %s", run.workflow_id, type(command).__name__)
        message = f"the engine could not apply {type(command).__name__}: {type(error).__name__}: {error}"
        failure = ev.Failure(
            "CommandRefused", truncated(message), traceback=truncated("".join(format_exception(error)))
        )
        if not run.state.closing:
            self._lifecycle.fail(run, failure)

    def _on_schedule_activity(self, run: Run, command: ScheduleActivity) -> None:
        aid = command.activity_id
        activity = PendingActivity(aid, command.activity_type, command.args, ActivityOptions.from_dict(command.options))
        run.state.activities[aid] = activity
        scheduled = ev.ActivityScheduled(
            workflow_id=run.workflow_id,
            activity_id=aid,
            activity_type=command.activity_type,
            input=command.args,
            options=command.options,
        )

        def dispatch(stamped: list[ev.Event]) -> None:
            self._activities.scheduled(run, activity, stamped[0].recorded_at)

        self._core.append(run, [scheduled], then=dispatch, deferrable=True)

    def _on_request_cancel_activity(self, run: Run, command: RequestCancelActivity) -> None:
        aid = command.activity_id
        if aid in run.state.activities:
            requested = ev.ActivityCancelRequested(workflow_id=run.workflow_id, activity_id=aid)
            self._core.append(run, [requested], then=lambda _: self._activities.cancel(run, aid))

    def _on_start_timer(self, run: Run, command: StartTimer) -> None:
        fire_at = self._clock.now() + timedelta(seconds=command.seconds)
        at = fire_at.timestamp()
        run.state.timers[command.timer_id] = at
        started = ev.TimerStarted(
            workflow_id=run.workflow_id, timer_id=command.timer_id, fire_at=fire_at, waiting_for=command.waiting_for
        )
        key = TimerKey(TimerKind.TIMER, run.workflow_id, run.run_id, command.timer_id)
        wake = record_at(at, self._clock)
        self._core.append(run, [started], then=lambda _: self._timers.arm(wake, key), deferrable=True)

    def _on_cancel_timer(self, run: Run, command: CancelTimer) -> None:
        tid = command.timer_id
        if run.state.timers.pop(tid, None) is not None:
            self._timers.disarm(TimerKey(TimerKind.TIMER, run.workflow_id, run.run_id, tid))
            self._core.append(run, [ev.TimerCancelled(workflow_id=run.workflow_id, timer_id=tid)])

    def _on_complete_workflow(self, run: Run, command: CompleteWorkflow) -> None:
        try:
            check_payload(command.result, path="workflow result")
        except PayloadError as error:
            self._lifecycle.fail(run, ev.Failure(type(error).__name__, str(error)))
            return
        run.state.closing = True
        self._core.append(
            run, [ev.WorkflowCompleted(workflow_id=run.workflow_id, result=command.result)], deferrable=True
        )

    def _on_fail_workflow(self, run: Run, command: FailWorkflow) -> None:
        self._lifecycle.fail(run, command.failure)

    def _on_cancel_workflow(self, run: Run, command: CancelWorkflow) -> None:
        run.state.closing = True
        self._core.append(run, [ev.WorkflowCancelled(workflow_id=run.workflow_id, reason=command.reason)])

    def _on_start_child(self, run: Run, command: StartChild) -> None:
        # The child's search attributes are checked like a start's: refused ones fail the child (the parent
        # sees ChildWorkflowError naming the attribute) and are not recorded.
        options, refused = _checked_child_options(command.options, self._schema)
        ref = ChildRef(
            command.child_id,
            command.workflow_id,
            new_run_id(),
            command.workflow_type,
            command.args,
            command.parent_close_policy,
            StartOptions.from_dict(options),
        )
        child_started = ev.ChildWorkflowStarted(
            workflow_id=run.workflow_id,
            child_id=command.child_id,
            child_workflow_id=command.workflow_id,
            workflow_type=command.workflow_type,
            input=command.args,
            child_run_id=ref.run_id,
            parent_close_policy=ref.parent_close_policy,
            options=options,
        )
        if refused is not None:
            failed = ev.ChildWorkflowFailed(workflow_id=run.workflow_id, child_id=command.child_id, failure=refused)
            self._core.append(run, [child_started, failed])
            return
        run.state.children[command.child_id] = ref
        self._core.append(run, [child_started], then=lambda _: self._relations.start_child(run, ref))

    def _on_request_cancel_child(self, run: Run, command: RequestCancelChild) -> None:
        ref = run.state.children.get(command.child_id)
        if ref is not None:
            requested = ev.ChildWorkflowCancelRequested(workflow_id=run.workflow_id, child_id=command.child_id)
            target = ref.workflow_id
            self._core.append(run, [requested], then=lambda _: self._relations.cancel_child(target))

    def _on_signal_external(self, run: Run, command: SignalExternal) -> None:
        pending = PendingSignal(command.signal_id, command.target_workflow_id, command.name, command.payload)
        run.state.signals_out[command.signal_id] = pending
        sent = ev.SignalExternalSent(
            workflow_id=run.workflow_id,
            signal_id=command.signal_id,
            target_workflow_id=command.target_workflow_id,
            name=command.name,
            payload=command.payload,
        )
        self._core.append(run, [sent], then=lambda _: self._relations.deliver_external(run, pending))

    def _on_upsert_search_attributes(self, run: Run, command: UpsertSearchAttributes) -> None:
        """Record the upsert, its values checked against the declared attributes; a bad one fails the run (the
        workflow code cannot see the engine's schema, and a value no query could match must not be recorded)."""
        try:
            attributes = self._schema.check(command.attributes, allow_none=True)
        except InvalidArgumentError as error:
            self._lifecycle.fail(run, ev.Failure(type(error).__name__, str(error), non_retryable=True))
            return
        run.state.upserted.update(attributes)
        upserted = ev.SearchAttributesUpserted(
            workflow_id=run.workflow_id, attributes=attributes, upsert_id=command.upsert_id
        )
        self._core.append(run, [upserted])

    def _on_record_marker(self, run: Run, command: RecordMarker) -> None:
        marker = ev.MarkerRecorded(workflow_id=run.workflow_id, name=command.name, details=command.details)
        self._core.append(run, [marker])


def _checked_child_options(
    options: dict[str, Any], schema: SearchAttributeSchema
) -> tuple[dict[str, Any], ev.Failure | None]:
    """A child's start options with its search attributes checked and normalised against the declared ones;
    if they are refused, the options without them and the failure naming the attribute."""
    if not options.get("search_attributes"):
        return options, None
    try:
        return {**options, "search_attributes": schema.check(options["search_attributes"])}, None
    except InvalidArgumentError as error:
        kept = {key: value for key, value in options.items() if key != "search_attributes"}
        return kept, ev.Failure(type(error).__name__, str(error))
