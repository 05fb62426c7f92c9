"""aion: a durable workflow engine for Python.

Workflows are ``async def`` functions whose every step is recorded in a history; after any crash they are
replayed from it and continue at the same ``await``. See ``README.md`` and ``docs/`` for the guide.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aion.codec import PayloadCodec
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
    ScheduleAlreadyExistsError,
    ScheduleNotFoundError,
    SequenceConflictError,
    StoreError,
    UpdateFailedError,
    UpdateRejectedError,
    WorkflowAlreadyStartedError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from aion.retry import RetryPolicy
from aion.status import WorkflowStatus

if TYPE_CHECKING:
    from aion import activity, codec, workflow
    from aion.engine import (
        Engine,
        IdConflictPolicy,
        IdReusePolicy,
        LocalQueue,
        RayQueue,
        WorkflowDescription,
        WorkflowHandle,
    )
    from aion.http import Client
    from aion.store import RunInfo

__version__ = "0.1.0"

# The engine (and with it pykka, LMDB and the supervision library) loads on first use, so that tools that only
# need the errors or the CLI's client start fast.
_LAZY = {
    "Client": "aion.http",
    "Engine": "aion.engine",
    "WorkflowDescription": "aion.engine",
    "WorkflowHandle": "aion.engine",
    "RunInfo": "aion.store",
    "activity": "aion.activity",
    "workflow": "aion.workflow",
    "codec": "aion.codec",
    "IdConflictPolicy": "aion.engine",
    "IdReusePolicy": "aion.engine",
    "LocalQueue": "aion.engine",
    "RayQueue": "aion.engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aion' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module.endswith("." + name) else getattr(loaded, name)
    globals()[name] = value
    return value


__all__ = [
    "ActivityError",
    "AionError",
    "ApplicationError",
    "CancelledError",
    "Client",
    "Engine",
    "IdConflictPolicy",
    "IdReusePolicy",
    "InvalidArgumentError",
    "LocalQueue",
    "NonDeterminismError",
    "NonDeterministicCallError",
    "PayloadCodec",
    "PayloadError",
    "PayloadTooLargeError",
    "QueryError",
    "RayQueue",
    "RetryPolicy",
    "RunInfo",
    "ScheduleAlreadyExistsError",
    "ScheduleNotFoundError",
    "SequenceConflictError",
    "StoreError",
    "UpdateFailedError",
    "UpdateRejectedError",
    "WorkflowAlreadyStartedError",
    "WorkflowDescription",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WorkflowNotRunningError",
    "WorkflowStatus",
    "__version__",
    "activity",
    "codec",
    "workflow",
]
