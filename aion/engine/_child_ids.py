"""The supervisor child ids of workflow processes: which run (and which of its processes) or which one-off
query a process serves."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import Final, NamedTuple

from aion import _tree
from aion._tree import run_id_of_token

__all__ = ["ChildId", "ProcessRole", "parse_child_id", "query_child_id", "run_child_id", "run_id_of_token"]


class ProcessRole(StrEnum):
    """What a workflow process is for."""

    RUN = "run"
    QUERY = "query"


class ChildId(NamedTuple):
    """A parsed child id."""

    role: ProcessRole
    token: str
    workflow_id: str


def run_child_id(token: str, workflow_id: str) -> str:
    """The child id of the process hosting one run (``token``: ``Run.process_token``)."""
    return f"run:{token}:{workflow_id}"


def query_child_id(query_id: int, workflow_id: str) -> str:
    """The child id of a one-off process that replays a closed run to answer a query."""
    return f"query:{query_id}:{workflow_id}"


_ROLES: Final = {role.value: role for role in ProcessRole}


# Cached: the core parses a process's child id at each thing the process says or does (about eight times in a
# run's life, all while it is resident), and ``ProcessRole(...)`` alone costs more than the rest.
@functools.lru_cache(maxsize=4096)
def parse_child_id(child_id: str) -> ChildId:
    """The parts of a child id made by :func:`run_child_id` or :func:`query_child_id`."""
    role, token, workflow_id = _tree.parse_child_id(child_id)
    if role not in _ROLES:
        raise ValueError(f"{child_id!r} is not a workflow process's child id: unknown role {role!r}")
    return ChildId(_ROLES[role], token, workflow_id)
