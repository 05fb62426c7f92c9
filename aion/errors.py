"""The one error hierarchy of aion.

Every error aion raises derives from :class:`AionError` and carries a stable string ``code`` that scripts,
the CLI (``error[<code>]: ...``) and the documentation (``docs/errors.md``) use to name it::

    >>> try:
    ...     raise WorkflowNotFoundError("order-1")
    ... except AionError as error:
    ...     print(error.code)
    not_found
"""

from __future__ import annotations

from typing import Any, ClassVar


class AionError(Exception):
    """Base of every error raised by aion; ``code`` names the kind of error in a stable way."""

    code: ClassVar[str] = "aion_error"


class InvalidArgumentError(AionError, ValueError):
    """An argument is malformed: a bad workflow id, a negative timeout, an unknown option."""

    code = "invalid_argument"


class PayloadError(AionError, TypeError):
    """A value cannot be serialised; the message names the path of the bad value (``order.items[3]``)."""

    code = "payload_error"


class PayloadTooLargeError(PayloadError):
    """An encoded payload exceeds the configured size limit."""

    code = "payload_too_large"

    def __init__(self, size: int, limit: int, what: str = "payload") -> None:
        super().__init__(f"{what} is {size} bytes encoded, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class NotFoundError(AionError, LookupError):
    """Something named does not exist."""

    code = "not_found"


class WorkflowNotFoundError(NotFoundError):
    """No workflow (or run) with this id exists."""

    def __init__(self, workflow_id: str, run_id: str | None = None) -> None:
        what = f"workflow {workflow_id!r}" + (f" run {run_id!r}" if run_id else "")
        super().__init__(f"{what} not found")
        self.workflow_id = workflow_id
        self.run_id = run_id


class UnknownWorkflowTypeError(NotFoundError):
    """A workflow type name is not registered with the engine."""

    code = "unknown_workflow_type"


class UnknownActivityTypeError(NotFoundError):
    """An activity type name is not registered with the engine."""

    code = "unknown_activity_type"


class RegistrationError(AionError, ValueError):
    """A workflow or activity cannot be registered (duplicate name, not an ``async def`` workflow, ...)."""

    code = "registration_error"


class WorkflowAlreadyStartedError(AionError):
    """A workflow with this id is running (or its closed run's id may not be reused, by the start's
    ``id_reuse_policy``); its id cannot start another run now. The message says how to attach to the run."""

    code = "already_started"

    def __init__(self, workflow_id: str, run_id: str, *, closed: str | None = None) -> None:
        attach = f"attach to it with engine.get_workflow({workflow_id!r})"
        if closed is None:
            super().__init__(
                f"workflow {workflow_id!r} is already running (run {run_id}): {attach}, or start with "
                "id_conflict_policy=IdConflictPolicy.USE_EXISTING (or TERMINATE_EXISTING)"
            )
        else:  # refused by the start's id_reuse_policy
            super().__init__(f"workflow {workflow_id!r} already ran (run {run_id}, {closed}) and {attach}")
        self.workflow_id = workflow_id
        self.run_id = run_id


class WorkflowNotRunningError(AionError):
    """The operation needs a running workflow, and this one is closed."""

    code = "not_running"


class SequenceConflictError(AionError):
    """An append named an expected head sequence that is not the workflow's current head."""

    code = "sequence_conflict"

    def __init__(self, workflow_id: str, expected_head: int, actual_head: int) -> None:
        super().__init__(
            f"append to workflow {workflow_id!r} expected head {expected_head}, but the head is {actual_head}"
        )
        self.workflow_id = workflow_id
        self.expected_head = expected_head
        self.actual_head = actual_head


class StoreError(AionError):
    """The event store cannot do what was asked (I/O error, disk full, not an aion store)."""

    code = "store_error"


class StoreLockedError(StoreError):
    """Another engine holds the data directory."""

    code = "store_locked"


class StoreFormatError(StoreError):
    """The data directory is not an aion store, or was written by a newer format version."""

    code = "store_format"


class CorruptEventError(StoreError):
    """A stored event cannot be decoded."""

    code = "corrupt_event"


class EngineNotRunningError(AionError):
    """The engine is not started (use it as a context manager), or has stopped."""

    code = "engine_not_running"


class QueryError(AionError):
    """A query could not be answered: unknown name, or the handler raised."""

    code = "query_error"


class NonDeterminismError(AionError):
    """Workflow code and its recorded history disagree at a command anchor."""

    code = "non_determinism"

    def __init__(self, workflow_id: str, seq: int, expected: str, found: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} diverged from its history at seq {seq}: "
            f"history has {expected}, the code now does {found}"
        )
        self.workflow_id = workflow_id
        self.seq = seq
        self.expected = expected
        self.found = found


class NonDeterministicCallError(AionError):
    """Workflow code called a non-deterministic function; the message names the safe replacement."""

    code = "non_deterministic_call"


class ContinueAsNewError(AionError):
    """``workflow.continue_as_new`` cannot be honoured now (for example work is still pending)."""

    code = "continue_as_new_refused"


class FailureError(AionError):
    """An error that carries a recorded failure: the original type, message, traceback and details."""

    code = "failure"

    def __init__(
        self,
        message: str,
        *,
        type: str = "Exception",
        traceback: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.traceback = traceback
        self.details = details


class WorkflowFailedError(FailureError):
    """The workflow run failed; ``type``, ``message`` and ``traceback`` describe the cause."""

    code = "workflow_failed"


class WorkflowCancelledError(AionError):
    """The workflow run was cancelled."""

    code = "workflow_cancelled"


class WorkflowTerminatedError(AionError):
    """The workflow run was terminated."""

    code = "workflow_terminated"


class WorkflowTimedOutError(AionError):
    """The workflow run passed its execution or run timeout."""

    code = "workflow_timed_out"


class ActivityError(FailureError):
    """An activity failed for good (retries exhausted or non-retryable); raised inside the workflow."""

    code = "activity_failed"


class ChildWorkflowError(FailureError):
    """A child workflow failed (or timed out, or was terminated); raised inside its parent with the cause."""

    code = "child_failed"


class ApplicationError(FailureError):
    """Raised by user code to fail with a chosen type, details and retry behaviour.

    ``non_retryable=True`` stops an activity's retries at once.
    """

    code = "application_error"

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        non_retryable: bool = False,
        details: Any = None,
    ) -> None:
        super().__init__(message, type=type or "ApplicationError", details=details)
        self.non_retryable = non_retryable


class CancelledError(AionError):
    """Cancellation delivered to workflow or activity code; it may be caught to run clean-up."""

    code = "cancelled"


class ResultTimeoutError(AionError, TimeoutError):
    """Waiting for a result took longer than the caller's timeout; the workflow itself goes on."""

    code = "result_timeout"


class ControlError(AionError):
    """The control socket refused or could not serve a request."""

    code = "control_error"


class CorruptPayloadError(PayloadError):
    """Bytes given to the payload decoder are not an encoded payload (truncated, damaged or not aion's)."""

    code = "corrupt_payload"


class RecorderStoppedError(EngineNotRunningError):
    """The recorder (the single history writer) has stopped; nothing more can be appended through it."""

    code = "recorder_stopped"


class ScheduleAlreadyExistsError(AionError):
    """A schedule with this id exists (and is not deleted); its id cannot be created again."""

    code = "schedule_already_exists"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} already exists")
        self.schedule_id = schedule_id


class ScheduleNotFoundError(NotFoundError):
    """No schedule with this id exists (or it was deleted)."""

    code = "schedule_not_found"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} not found")
        self.schedule_id = schedule_id


class UnknownWorkflowVersionError(UnknownWorkflowTypeError):
    """A workflow type is registered, but not in the version asked for (or the version a run is pinned to)."""

    code = "unknown_workflow_version"


class QueryTimeoutError(QueryError, TimeoutError):
    """A query was not answered within the caller's timeout; the workflow itself goes on."""

    code = "query_timeout"


class EngineStartError(AionError):
    """The engine could not start its processes (the supervision tree refused a child); nothing was recorded."""

    code = "engine_start_failed"


class OutputError(AionError):
    """A value cannot be written as JSON output (for example a float that is NaN or infinite)."""

    code = "output_error"


class InternalError(AionError):
    """An unexpected exception inside aion (a bug) reached an API call; the message names it. Please report it."""

    code = "internal_error"


class UpdateRejectedError(AionError):
    """An update was refused before anything was recorded: the workflow has no handler of that name, or its
    validator raised (the message says which and why)."""

    code = "update_rejected"


class UpdateFailedError(FailureError):
    """An accepted update's handler raised; ``type``, ``message`` and ``traceback`` describe the cause (the
    failure is recorded in ``UpdateCompleted``)."""

    code = "update_failed"


class ExecutorUnavailableError(AionError):
    """A task queue's executor cannot serve: Ray is not installed, or its cluster cannot be reached."""

    code = "executor_unavailable"


class StoreFullError(StoreError):
    """The store cannot grow: its file system is full, or it reached the engine's ``map_size``. Nothing of the
    failed write was recorded; free space (or raise ``map_size``) and the engine goes on."""

    code = "store_full"


class EngineStoppedError(EngineNotRunningError):
    """The engine stopped by itself after a fault it could not recover from (its zygote could not be restarted
    within the root supervisor's restart intensity); the message gives the reason."""

    code = "engine_stopped"


class UnauthorizedError(AionError):
    """An HTTP request to the aion server lacks the token it needs, or carries a wrong one."""

    code = "unauthorized"


class ForbiddenError(AionError):
    """An HTTP request is refused: it changes state without the CSRF guard or from another origin, or the server
    is read-only (``aion ui``)."""

    code = "forbidden"
