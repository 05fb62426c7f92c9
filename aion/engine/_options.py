"""Typed options: what a start and an activity call ask for, as the core reads them.

History keeps options as plain maps (``ActivityScheduled.options``, the start options of a child), so the
format on disk does not change with these classes; the core turns a map into one of them where it enters.
"""

from __future__ import annotations

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
    """What a start records beyond the type, id and input: search attributes and the run's timeouts (seconds)."""

    search_attributes: Mapping[str, Any] = field(default_factory=dict)
    execution_timeout: float | None = None
    run_timeout: float | None = None
    #: The starter's trace context (``traceparent``), recorded on ``WorkflowStarted`` when the engine traces.
    trace_context: Mapping[str, str] | None = None

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> StartOptions:
        """The options of a child's start, as its parent recorded them (absent keys take their defaults)."""
        return cls(
            search_attributes=dict(options.get("search_attributes") or {}),
            execution_timeout=options.get("execution_timeout"),
            run_timeout=options.get("run_timeout"),
        )
