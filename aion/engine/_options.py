"""Typed options: what a start and an activity call ask for, as the core reads them.

History keeps options as plain maps (``ActivityScheduled.options``, the start options of a child), so the
format on disk does not change with these classes; the core turns a map into one of them where it enters.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aion.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class ActivityOptions:
    """The timeouts (seconds), retry policy, task queue and priority of one activity call."""

    start_to_close_timeout: float | None = None
    schedule_to_close_timeout: float | None = None
    heartbeat_timeout: float | None = None
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    #: Recorded only when not ``"default"`` (histories written before task queues have no such key).
    task_queue: str = "default"
    #: Higher is taken first within the queue; recorded only when not 0.
    priority: int = 0

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> ActivityOptions:
        """The options recorded on ``ActivityScheduled`` (absent keys take their defaults)."""
        return cls(
            start_to_close_timeout=options.get("start_to_close_timeout"),
            schedule_to_close_timeout=options.get("schedule_to_close_timeout"),
            heartbeat_timeout=options.get("heartbeat_timeout"),
            retry_policy=RetryPolicy.from_dict(options.get("retry_policy")),
            task_queue=options.get("task_queue") or "default",
            priority=int(options.get("priority") or 0),
        )


@dataclass(frozen=True, slots=True)
class StartOptions:
    """What a start records beyond the type, id and input: search attributes, the run's timeouts (seconds)
    and its memo."""

    search_attributes: Mapping[str, Any] = field(default_factory=dict)
    execution_timeout: float | None = None
    run_timeout: float | None = None
    #: The starter's trace context (``traceparent``), recorded on ``WorkflowStarted`` when the engine traces.
    trace_context: Mapping[str, str] | None = None
    #: Any payload shown with the run and never indexed.
    memo: Any = None
    #: The workflow version to start (``None``: the highest registered).
    version: int | None = None
    #: What a start does when the id has a running run, or a closed one (see ``Engine.start_workflow``).
    id_conflict_policy: IdConflictPolicy = field(default_factory=lambda: IdConflictPolicy.FAIL)
    id_reuse_policy: IdReusePolicy = field(default_factory=lambda: IdReusePolicy.ALLOW_DUPLICATE)
    #: The caller's idempotency key: a start retried with it returns the run it started.
    request_id: str | None = None

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> StartOptions:
        """The options of a child's start, as its parent recorded them (absent keys take their defaults)."""
        return cls(
            search_attributes=dict(options.get("search_attributes") or {}),
            execution_timeout=options.get("execution_timeout"),
            run_timeout=options.get("run_timeout"),
            memo=options.get("memo"),
        )


class IdConflictPolicy(enum.Enum):
    """What a start does when its workflow id has a running run."""

    FAIL = "fail"
    """Raise ``WorkflowAlreadyStartedError`` (the default)."""
    USE_EXISTING = "use_existing"
    """Return a handle to the running run; nothing is started."""
    TERMINATE_EXISTING = "terminate_existing"
    """Terminate the running run (``WorkflowTerminated``), then start the new one."""


class IdReusePolicy(enum.Enum):
    """Whether a start may open a new run for a workflow id whose last run has closed."""

    ALLOW_DUPLICATE = "allow_duplicate"
    """Always (the default)."""
    ALLOW_DUPLICATE_FAILED_ONLY = "allow_duplicate_failed_only"
    """Only if the last run did not complete (it failed, was cancelled, terminated or timed out)."""
    REJECT_DUPLICATE = "reject_duplicate"
    """Never: raise ``WorkflowAlreadyStartedError``."""
