"""The seams between the engine core and the rest: how it starts processes, and how it wakes result waiters."""

from __future__ import annotations

import threading
from typing import Any, Protocol


class Processes(Protocol):
    """How the core starts and stops workflow processes (the engine implements it with supervisors)."""

    def start_run_process(self, workflow_type: str, child_id: str, meta: dict[str, Any]) -> None:
        """Start, under the type's supervisor, the process ``child_id`` hosting a run (``meta`` is shown in
        the supervision tree)."""

    def terminate_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill the process ``child_id`` for good (no restart): its run has been closed from outside."""

    def start_query_process(self, workflow_type: str, child_id: str) -> None:
        """Start a temporary process ``child_id`` that replays a run to answer one query."""

    def stop_run_process(self, workflow_type: str, child_id: str) -> None:
        """Kill the process ``child_id`` if it runs (its supervisor restarts it if the run is open)."""

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL activity worker ``worker_id`` (its supervisor replaces it)."""


class Closures:
    """Wakes whoever waits for a run to close (``handle.result()``)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        """A run closed: wake every waiter so it re-reads the store."""
        with self.condition:
            self.generation += 1
            self.condition.notify_all()
