"""Errors and failures of a workflow run: a raised error as a recordable :class:`~aion.events.Failure`, and a
recorded failure as the error the workflow code awaiting it raises.

It owns these conversions and nothing else: it never records, never resolves a future.
"""

from __future__ import annotations

import traceback

from aion import events as ev
from aion.errors import ActivityError, ChildWorkflowError, FailureError, WorkflowNotFoundError, WorkflowNotRunningError


def failure_from_exception(error: BaseException) -> ev.Failure:
    """A recordable description of ``error``: its type, message and formatted traceback."""
    if isinstance(error, FailureError):
        return ev.Failure(
            type=error.type,
            message=error.message,
            traceback=error.traceback or "".join(traceback.format_exception(error)),
            details=error.details,
            non_retryable=bool(getattr(error, "non_retryable", False)),
        )
    return ev.Failure(
        type=type(error).__name__,
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
    )


def activity_error(failure: ev.Failure, activity_id: int, attempt: int) -> ActivityError:
    error = ActivityError(
        f"activity {activity_id} failed after {attempt} attempt(s): {failure.type}: {failure.message}",
        type=failure.type,
        traceback=failure.traceback,
        details=failure.details,
    )
    error.attempt = attempt  # type: ignore[attr-defined]
    return error


def child_error(failure: ev.Failure, child_id: int) -> ChildWorkflowError:
    return ChildWorkflowError(
        f"child {child_id} failed: {failure.type}: {failure.message}",
        type=failure.type,
        traceback=failure.traceback,
        details=failure.details,
    )


def signal_error(target: str, failure: ev.Failure) -> Exception:
    """The error of a signal to workflow ``target`` that was not delivered."""
    if failure.type == WorkflowNotFoundError.__name__:
        return WorkflowNotFoundError(target)
    return WorkflowNotRunningError(f"signal to workflow {target!r} not delivered: {failure.message}")
