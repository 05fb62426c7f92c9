"""Errors and failures of a workflow run: a raised error as a recordable :class:`~aion.events.Failure`, and a
recorded failure as the error the workflow code awaiting it raises.

It owns these conversions and nothing else: it never records, never resolves a future.
"""

from __future__ import annotations

import traceback
from typing import Any

from aion import events as ev
from aion._codec import check_payload
from aion.errors import (
    ActivityError,
    ChildWorkflowError,
    FailureError,
    PayloadError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)

#: The most characters of a failure's message (and of its traceback) that are recorded; the rest is cut, and the
#: cut noted with the full length, so that a huge message cannot make the failure itself unrecordable.
MAX_FAILURE_TEXT = 32 * 1024


def truncated(text: str, limit: int = MAX_FAILURE_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with the cut and the original length noted at the end.

    >>> truncated("x" * 10, 4)
    'xxxx... [truncated: 10 characters in all]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text)} characters in all]"


#: The largest encoded size of a failure's ``details`` that is recorded; larger details are replaced by a note.
MAX_FAILURE_DETAILS = 256 * 1024


def _recordable_details(details: Any) -> Any:
    """``details`` if they can be recorded within :data:`MAX_FAILURE_DETAILS`, else a note saying why not."""
    if details is None:
        return None
    try:
        check_payload(details, path="failure details", limit=MAX_FAILURE_DETAILS)
    except PayloadError as error:
        return f"[details not recorded: {error}]"
    return details


def failure_from_exception(error: BaseException) -> ev.Failure:
    """A recordable description of ``error``: its type, message and formatted traceback (each cut to
    :data:`MAX_FAILURE_TEXT` characters)."""
    if isinstance(error, FailureError):
        return ev.Failure(
            type=truncated(error.type, 256),
            message=truncated(error.message),
            traceback=truncated(error.traceback or "".join(traceback.format_exception(error))),
            details=_recordable_details(error.details),
            non_retryable=bool(getattr(error, "non_retryable", False)),
        )
    return ev.Failure(
        type=type(error).__name__,
        message=truncated(str(error)),
        traceback=truncated("".join(traceback.format_exception(error))),
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
