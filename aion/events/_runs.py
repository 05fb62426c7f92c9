"""The events of a run's lifecycle (started, closed in each way, cancellation asked, search attributes, markers)
and of the holds on it (blocked and unblocked code, paused and resumed by an operator, reset; docs/versioning.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from aion.events._base import Event, Failure

# --- workflow run lifecycle -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkflowStarted(Event):
    """A new run begins. Opens the run's slice of the history."""

    version: ClassVar[int] = 2  # 2: memo, reset, request_id

    workflow_type: str
    input: Any
    run_id: str
    #: The run this one continues (continue-as-new), if any.
    parent_run_id: str | None = None
    #: The first run of a continue-as-new chain (this run's own id when it starts a chain).
    first_run_id: str | None = None
    workflow_version: str | None = None
    #: The parent workflow when this run is a child workflow.
    parent_workflow_id: str | None = None
    parent_workflow_run_id: str | None = None
    search_attributes: dict[str, Any] = field(default_factory=dict)
    #: Seconds allowed for the whole chain (across continue-as-new); ``execution_deadline`` is its end.
    execution_timeout: float | None = None
    execution_deadline: datetime | None = None
    #: Seconds allowed for this run alone.
    run_timeout: float | None = None
    #: Attempt number of the run (1 for a fresh start).
    attempt: int = 1
    #: The trace context the run's span continues (W3C ``traceparent``), when the engine traces.
    trace_context: dict[str, str] | None = None
    #: Any payload shown with the run (``describe``, ``list``) and never indexed (format version 2).
    memo: Any = None
    #: The run this one was reset from (``handle.reset``): its history up to the reset point is copied after this.
    reset_from_run_id: str | None = None
    #: The last sequence number of the old run that was copied (its events follow this one, renumbered).
    reset_to_seq: int | None = None
    #: The starter's idempotency key (``start_workflow(request_id=...)``): a retried start finds its run by it.
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowCompleted(Event):
    """The run returned a value."""

    terminal: ClassVar[bool] = True
    result: Any = None


@dataclass(frozen=True, kw_only=True)
class WorkflowFailed(Event):
    """The run raised, or crashed past its restart intensity, or diverged from its history."""

    terminal: ClassVar[bool] = True
    failure: Failure


@dataclass(frozen=True, kw_only=True)
class WorkflowCancelRequested(Event):
    """Cancellation was asked for; the workflow sees ``aion.CancelledError`` at its current await."""

    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowCancelled(Event):
    """The run ended by cancellation."""

    terminal: ClassVar[bool] = True
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowTerminated(Event):
    """The run was terminated: its process was killed and nothing of it runs afterwards."""

    terminal: ClassVar[bool] = True
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowTimedOut(Event):
    """The run passed its run timeout or its chain's execution timeout (``kind`` says which)."""

    terminal: ClassVar[bool] = True
    kind: str = "execution"


@dataclass(frozen=True, kw_only=True)
class WorkflowContinuedAsNew(Event):
    """The run ended by starting a new run of the same workflow id with ``input``."""

    terminal: ClassVar[bool] = True
    input: Any
    new_run_id: str
    workflow_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class SearchAttributesUpserted(Event):
    """The workflow set (or, with a ``None`` value, removed) search attributes.

    ``upsert_id`` is the ordinal of the upsert in its run: the anchor of ``workflow.upsert_search_attributes``,
    matched by key on replay (format version 2)."""

    attributes: dict[str, Any]
    upsert_id: int = 0

    version: ClassVar[int] = 2


@dataclass(frozen=True, kw_only=True)
class MarkerRecorded(Event):
    """A named marker, used for version patches and side-effect results."""

    name: str
    details: Any = None


# --- code changes under live runs (docs/versioning.md) ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkflowBlocked(Event):
    """The run's code cannot make progress (its type or version is not registered, it diverged from its history,
    or replaying it failed inside aion): the run waits, holding no process, until code that fits is deployed.

    ``cause`` is one of ``unknown_type``, ``unknown_version``, ``non_determinism``, ``internal``; ``at_seq``,
    ``expected`` and ``found`` describe a divergence. Recorded once per blocking, not on each retry."""

    cause: str
    message: str
    at_seq: int | None = None
    expected: str | None = None
    found: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowUnblocked(Event):
    """The run's code fits its history again (a retry replayed it without divergence): it runs on."""


@dataclass(frozen=True, kw_only=True)
class WorkflowPaused(Event):
    """An operator paused the run: nothing new is dispatched, and arrivals wait until it is resumed."""

    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkflowResumed(Event):
    """An operator resumed a paused run: what arrived while it was paused is delivered."""


@dataclass(frozen=True, kw_only=True)
class WorkflowReset(Event):
    """The run was closed by a reset: run ``new_run_id`` goes on from a copy of its history up to ``to_seq``."""

    terminal: ClassVar[bool] = True
    new_run_id: str
    to_seq: int
    reason: str | None = None
