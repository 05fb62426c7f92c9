"""Event builders shared by the store tests."""

from __future__ import annotations

from typing import Any

from aion._ids import new_run_id
from aion.events import SignalReceived, WorkflowStarted


def started(workflow_id: str, workflow_type: str = "Order", **fields: Any) -> WorkflowStarted:
    """A ``WorkflowStarted`` with a fresh run id unless one is given."""
    fields.setdefault("run_id", new_run_id())
    fields.setdefault("input", {"n": 1})
    return WorkflowStarted(workflow_id=workflow_id, workflow_type=workflow_type, **fields)


def signal(workflow_id: str, n: int = 0, payload: Any = None) -> SignalReceived:
    """A small ``SignalReceived``."""
    return SignalReceived(workflow_id=workflow_id, name=f"s{n}", payload=payload)
