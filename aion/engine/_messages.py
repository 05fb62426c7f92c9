"""The messages told to the engine core by the Python API, the supervisors' hub, the timer thread and the
supervisor callbacks, and the supervisor child ids of workflow processes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka


@dataclass(frozen=True)
class Call:
    """Run one of the core's API methods (``EngineCore.signal``, ...) with ``args`` and ``reply=reply``.

    Told, not asked: the method resolves ``reply`` (the core sets the error there if the method raises), so the
    caller waits once, on ``reply``, rather than for a proxy's future and then for the future it returns."""

    method: Callable[..., Any]
    args: tuple[Any, ...]
    reply: pykka.Future[Any]


@dataclass(frozen=True)
class ProcessUp:
    """A workflow process (re)started and can be sent its history."""

    child_id: str
    channel: Any


@dataclass(frozen=True)
class ProcessMessage:
    """A frame from a workflow process."""

    child_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class ProcessDown:
    """A workflow process exited."""

    child_id: str
    reason: str


@dataclass(frozen=True)
class ProcessGaveUp:
    """A workflow process crashed more often than its restart intensity allows."""

    child_id: str
    reason: str


@dataclass(frozen=True)
class WorkerUp:
    """An activity worker (re)started."""

    worker_id: str
    channel: Any


@dataclass(frozen=True)
class WorkerMessage:
    """A frame from an activity worker."""

    worker_id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class WorkerDown:
    """An activity worker exited (its attempt, if any, is lost)."""

    worker_id: str
    reason: str


@dataclass(frozen=True)
class Due:
    """A timer of the core is due: ``key[0]`` says which kind, ``key[1:3]`` the workflow and run."""

    key: tuple[Any, ...]


def run_child_id(run_id: str, workflow_id: str) -> str:
    """The supervisor child id of the process hosting one run."""
    return f"run:{run_id}:{workflow_id}"


def run_id_of_token(token: str) -> str:
    """The run id in the token of a run's child id (``Run.process_token``: the run id, then ``.N`` for its
    (N+1)th process, after an eviction or a resync)."""
    return token.partition(".")[0]


def query_child_id(query_id: int, workflow_id: str) -> str:
    """The supervisor child id of a one-off process that replays a closed run to answer a query."""
    return f"query:{query_id}:{workflow_id}"


def parse_child_id(child_id: str) -> tuple[str, str, str]:
    """``(kind, token, workflow_id)`` of a child id made by :func:`run_child_id` or :func:`query_child_id`."""
    kind, token, workflow_id = child_id.split(":", 2)
    return kind, token, workflow_id
