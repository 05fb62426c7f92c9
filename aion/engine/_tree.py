"""Finding the process that hosts a run in a snapshot of the engine's supervision tree."""

from __future__ import annotations

from typing import Any

from aion._tree import RUN_ROLE, walk

__all__ = ["RUN_ROLE", "run_node", "walk"]


def run_node(tree: dict[str, Any], workflow_id: str) -> dict[str, Any] | None:
    """The node of the live process hosting ``workflow_id``'s run, or ``None`` if it has none now."""
    for _, node in walk(tree):
        meta = node.get("meta") or {}
        if meta.get("workflow_id") == workflow_id and meta.get("role") == RUN_ROLE and node.get("pid"):
            return node
    return None
