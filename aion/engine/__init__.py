"""The engine: the actor system that runs workflows durably, and its Python API."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aion.engine._engine import Engine
    from aion.engine._handle import WorkflowDescription, WorkflowHandle
    from aion.engine._options import IdConflictPolicy, IdReusePolicy
    from aion.engine._task_queues import LocalQueue, RayQueue

__all__ = [
    "Engine",
    "IdConflictPolicy",
    "IdReusePolicy",
    "LocalQueue",
    "RayQueue",
    "WorkflowDescription",
    "WorkflowHandle",
]

# Loaded on first use: the CLI reads the engine's small modules (child ids, the tree) without starting the engine's
# imports (pykka, LMDB, the supervision library).
_LAZY = {
    "Engine": "aion.engine._engine",
    "WorkflowDescription": "aion.engine._handle",
    "WorkflowHandle": "aion.engine._handle",
    "IdConflictPolicy": "aion.engine._options",
    "IdReusePolicy": "aion.engine._options",
    "LocalQueue": "aion.engine._task_queues",
    "RayQueue": "aion.engine._task_queues",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aion.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
