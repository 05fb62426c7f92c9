"""What workflow code sees of its run, and which runtime is running now.

It owns the one piece of global state of the workflow package: the runtime whose code is running on this
thread's deterministic loop (``None`` outside workflow code), set only by :class:`~aion.workflow._runtime.
WorkflowRuntime` around the code it runs. It never runs workflow code itself and never records anything.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aion.workflow._runtime import WorkflowRuntime

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

    def __init__(self, args: list[Any], workflow_type: str | None) -> None:
        super().__init__("continue-as-new")
        self.arguments = args
        self.workflow_type = workflow_type


_current: WorkflowRuntime | None = None


def current_runtime() -> WorkflowRuntime:
    """The runtime whose code is running now; raises outside workflow code."""
    if _current is None:
        raise RuntimeError("this function can only be called from workflow code, while the workflow runs")
    return _current


def in_workflow_code() -> bool:
    """True while a runtime runs workflow code (the guard of non-deterministic calls asks)."""
    return _current is not None


def enter(runtime: WorkflowRuntime) -> WorkflowRuntime | None:
    """Make ``runtime`` the current one; return the one it replaces, for :func:`leave`."""
    global _current
    previous, _current = _current, runtime
    return previous


def leave(previous: WorkflowRuntime | None) -> None:
    """Give back the runtime that :func:`enter` replaced."""
    global _current
    _current = previous
