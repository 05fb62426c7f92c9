"""Reading a snapshot of the engine's supervision tree: walking it, finding the process that hosts a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: ``meta["role"]`` of a process hosting a workflow run (the engine sets it; see ``Engine._workflow_spec``).
RUN_ROLE = "run"


def walk(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every node of a supervision tree with its depth, parents first."""
    yield depth, node
    for child in node.get("children") or []:
        yield from walk(child, depth + 1)


def run_node(tree: dict[str, Any], workflow_id: str) -> dict[str, Any] | None:
    """The node of the live process hosting ``workflow_id``'s run, or ``None`` if it has none now."""
    for _, node in walk(tree):
        meta = node.get("meta") or {}
        if meta.get("workflow_id") == workflow_id and meta.get("role") == RUN_ROLE and node.get("pid"):
            return node
    return None
