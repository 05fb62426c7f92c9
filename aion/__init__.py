"""aion: a durable workflow engine for Python.

Workflows are ``async def`` functions whose every step is recorded in a history; after any crash they are
replayed from it and continue at the same ``await``. See ``README.md`` and ``docs/`` for the guide.
"""

from aion import activity, workflow
from aion.engine import Engine, WorkflowDescription, WorkflowHandle
from aion.errors import (
    ActivityError,
    AionError,
    ApplicationError,
    CancelledError,
    InvalidArgumentError,
    NonDeterminismError,
    NonDeterministicCallError,
    PayloadError,
    PayloadTooLargeError,
    QueryError,
    SequenceConflictError,
    StoreError,
    WorkflowAlreadyStartedError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.retry import RetryPolicy
from aion.status import WorkflowStatus
from aion.store import RunInfo

__version__ = "0.1.0"

__all__ = [
    "ActivityError",
    "AionError",
    "ApplicationError",
    "CancelledError",
    "Engine",
    "InvalidArgumentError",
    "NonDeterminismError",
    "NonDeterministicCallError",
    "PayloadError",
    "PayloadTooLargeError",
    "QueryError",
    "RetryPolicy",
    "RunInfo",
    "SequenceConflictError",
    "StoreError",
    "WorkflowAlreadyStartedError",
    "WorkflowDescription",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WorkflowNotRunningError",
    "WorkflowStatus",
    "__version__",
    "activity",
    "workflow",
]
