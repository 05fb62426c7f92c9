"""The shape of what the engine shows of itself: a supervision-tree snapshot and the child ids of its processes.

The engine writes these (``Engine.supervision_tree()``, the child ids of the processes hosting runs); the
control server and the CLI read them. This module holds the reader's side of that contract so that readers
need not import the engine: :data:`RUN_ROLE`, :func:`walk`, :func:`parse_child_id` and
:func:`run_id_of_token` read what ``aion.engine._child_ids`` writes (a test checks that they agree). It never
builds a tree or a child id, and imports nothing of aion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["RUN_ROLE", "parse_child_id", "run_id_of_token", "walk"]

#: ``meta["role"]`` of a process hosting a workflow run.
RUN_ROLE = "run"


def walk(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every node of a supervision tree with its depth, parents first."""
    yield depth, node
    for child in node.get("children") or []:
        yield from walk(child, depth + 1)


def parse_child_id(child_id: str) -> tuple[str, str, str]:
    """``(kind, token, workflow_id)`` of the child id of a process hosting a run (``run:<token>:<workflow id>``)
    or answering a query (``query:<n>:<workflow id>``)."""
    kind, token, workflow_id = child_id.split(":", 2)
    return kind, token, workflow_id


def run_id_of_token(token: str) -> str:
    """The run id in the token of a run's child id: the run id, then ``.N`` for its (N+1)th process (after an
    eviction or a resync)."""
    return token.partition(".")[0]
