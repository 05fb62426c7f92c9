"""What the control server needs of an engine, as protocols: the control package types against these and never
imports ``aion.engine`` (the engine imports ``aion.control`` to serve its socket).

It owns this contract and nothing else. ``aion.Engine`` and its ``WorkflowHandle`` satisfy it structurally
(mypy checks that where the engine calls :func:`~aion.control.start_control_server`); a change to either side
that breaks it is a type error, not a surprise at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from aion.store import EventStore, RunInfo
from aion.visibility import SearchAttributeSchema

__all__ = ["ControlledEngine", "ControlledRun"]


class ControlledRun(Protocol):
    """A handle to one run, as the control operations use it (``aion.WorkflowHandle``)."""

    @property
    def workflow_id(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    def result(self, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds for the run's result (``ResultTimeoutError`` when it passes)."""
        ...

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name``; returns once it is durable."""
        ...

    def cancel(self, reason: str | None = None) -> bool:
        """Request cancellation; False if the run had already closed."""
        ...

    def terminate(self, reason: str | None = None) -> bool:
        """Terminate the run; False if it had already closed."""
        ...

    def query(self, name: str, *args: Any) -> Any:
        """Answer query ``name`` with ``args``."""
        ...

    def unblock(self) -> bool:
        """Try the blocked run again; False if it is not blocked or its code is still missing."""
        ...

    def pause(self, reason: str | None = None) -> bool:
        """Pause the run; False if it was paused already."""
        ...

    def resume(self) -> bool:
        """Resume the paused run; False if it was not paused."""
        ...

    def reset(self, *, to_seq: int | None = None, reason: str) -> str:
        """Start a new run from a copy of this run's history up to ``to_seq``; returns its id."""
        ...

    def execute_update(self, name: str, *args: Any) -> Any:
        """Apply update ``name`` with ``args``; its handler's result once durable."""
        ...


class ControlledEngine(Protocol):
    """A running engine, as the control server and its operations use it (``aion.Engine``)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def store(self) -> EventStore: ...

    @property
    def search_attributes(self) -> SearchAttributeSchema: ...

    def supervision_tree(self) -> dict[str, Any]:
        """A JSON-able snapshot of the live supervision tree."""
        ...

    def residency(self) -> dict[str, int]:
        """The residency counts (resident, waiting, evictions, max_resident)."""
        ...

    def run_waits(self, runs: Sequence[tuple[str, str]]) -> list[list[str] | None]:
        """What each (workflow id, run id)'s code last reported waiting on beyond its history."""
        ...

    def list_workflows(
        self, *, status: str | None = None, workflow_type: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        """Current runs, newest first, filtered by status and type."""
        ...

    def start_workflow(
        self,
        workflow: str,
        *args: Any,
        workflow_id: str | None = None,
        search_attributes: dict[str, Any] | None = None,
        memo: Any = None,
    ) -> ControlledRun:
        """Start a run of the workflow type ``workflow``; returns once it is durable."""
        ...

    def unblock_all(self) -> int:
        """Try every blocked run again; returns how many were given a process."""
        ...

    def signal_with_start(
        self,
        workflow: str,
        *args: Any,
        workflow_id: str,
        signal: str,
        payload: Any = None,
        search_attributes: dict[str, Any] | None = None,
        memo: Any = None,
    ) -> ControlledRun:
        """Deliver ``signal`` to ``workflow_id``, starting it with ``args`` first if it is not running."""
        ...

    def get_workflow(self, workflow_id: str) -> ControlledRun:
        """A handle to ``workflow_id``'s current run (``WorkflowNotFoundError`` if unknown)."""
        ...
