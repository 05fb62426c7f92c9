"""What workflow code sees of its run (:class:`WorkflowInfo`) and the exceptions that unwind it
(:class:`ContinueAsNewSignal`, :class:`Diverged`).

It owns these small types and nothing that runs: it never runs workflow code, never records anything, and holds
no state (the runtime running now is ``aion.workflow._runtime.current_runtime()``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

WorkflowFunction = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class WorkflowInfo:
    """What a workflow knows about its own run (``workflow.info()``)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    attempt: int


class Diverged(BaseException):
    """Stops workflow code at the command where it diverged (a BaseException so ``except Exception`` won't
    swallow it; the runtime fails the run whatever the code does with it)."""


class ContinueAsNewSignal(BaseException):
    """Raised by ``workflow.continue_as_new`` to unwind the workflow; the runtime turns it into the command."""

    def __init__(self, args: list[Any], workflow_type: str | None, version: int | None = None) -> None:
        super().__init__("continue-as-new")
        self.arguments = args
        self.workflow_type = workflow_type
        self.version = version
