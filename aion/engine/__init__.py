"""The engine: the actor system that runs workflows durably, and its Python API."""

from aion.engine._engine import Engine
from aion.engine._handle import WorkflowDescription, WorkflowHandle

__all__ = ["Engine", "WorkflowDescription", "WorkflowHandle"]
