"""The options of ``aion.Engine(...)``, checked once when the engine is built: :class:`EngineSettings`.

Every bad option raises ``InvalidArgumentError`` naming it, at construction, never at ``start()``. The checks run
in a fixed order (the data directory, the workflows and activities, the codec, metrics and tracing, the search
attributes, ...), so of several bad options the same one is always named.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aion._checks import count, data_dir_path
from aion._durations import to_seconds
from aion.clock import Clock
from aion.codec import PayloadCodec
from aion.engine._holds import CodeMismatch
from aion.engine._placement import AUTO, EngineCpu, check_engine_cpu
from aion.engine._registry import Registry
from aion.engine._task_queues import LocalQueue, QueueConfig, RayQueue, check_queues
from aion.errors import InvalidArgumentError
from aion.observability._setup import MetricsOption, Telemetry
from aion.recorder import DEFAULT_HOLD
from aion.visibility import SearchAttributeSchema

#: The longest ``Engine(commit_hold=...)``: a run's own step waits at most this long for a caller's commit.
MAX_COMMIT_HOLD = 0.1

#: Warnings about the engine's configuration go where its start and stop are logged.
log = logging.getLogger("aion.engine")

#: The fewest activity worker processes an engine gets by default (more with more CPUs). With one worker per CPU
#: (the first default), short activities left a 2-core engine's workers idle: each waited for the core to take its
#: result before it was sent the next attempt (docs/architecture.md, "Task queues and executors").
MIN_DEFAULT_ACTIVITY_WORKERS = 8


def default_activity_workers() -> int:
    """The activity worker processes of an engine not told how many: one per CPU, at least 8, at most 1,024."""
    return min(max(MIN_DEFAULT_ACTIVITY_WORKERS, os.cpu_count() or 1), 1024)


@dataclass(frozen=True)
class EngineSettings:
    """An engine's checked options: what every start of it is built from (see ``aion.Engine`` for each)."""

    data_dir: Path
    payload_codec: PayloadCodec | None
    telemetry: Telemetry
    search_attributes: SearchAttributeSchema
    on_code_mismatch: CodeMismatch
    registry: Registry
    activity_workers: int
    max_restarts: int
    max_seconds: float
    max_resident: int
    evict_idle_after: float | None
    warm_pool: int
    clock: Clock
    task_queues: dict[str, QueueConfig]
    cancel_grace: float
    map_size: int | None
    engine_cpu: EngineCpu = AUTO
    commit_hold: float = DEFAULT_HOLD

    @classmethod
    def check(
        cls,
        data_dir: str | os.PathLike[str],
        workflows: Iterable[Callable[..., Any]],
        activities: Iterable[Callable[..., Any]],
        *,
        activity_workers: int | None,
        warm_pool: int,
        max_restarts: int,
        max_seconds: float,
        activity_cancel_grace: float,
        max_resident: int,
        evict_idle_after: float | None,
        clock: Clock,
        metrics: MetricsOption,
        tracer_provider: Any,
        search_attributes: Mapping[str, str] | None,
        on_code_mismatch: CodeMismatch,
        payload_codec: PayloadCodec | None,
        task_queues: Mapping[str, LocalQueue | RayQueue] | None,
        map_size: int | None,
        engine_cpu: object = AUTO,
        commit_hold: object = DEFAULT_HOLD,
    ) -> EngineSettings:
        """``Engine(...)``'s arguments, checked (``InvalidArgumentError`` naming the first bad one) and normalised:
        the registry built, the default queue and worker count filled in."""
        checked_dir = data_dir_path(data_dir)
        for name, given in (("workflows", workflows), ("activities", activities)):
            if isinstance(given, str) or not isinstance(given, Iterable):
                raise InvalidArgumentError(f"{name} must be a list of decorated functions, got {given!r}")
        if payload_codec is not None and not isinstance(payload_codec, PayloadCodec):
            raise InvalidArgumentError(f"payload_codec must be an aion.PayloadCodec, got {payload_codec!r}")
        telemetry = Telemetry(metrics, tracer_provider, clock)
        schema = SearchAttributeSchema(search_attributes)
        if on_code_mismatch not in ("block", "fail"):
            raise InvalidArgumentError(f"on_code_mismatch must be 'block' or 'fail', got {on_code_mismatch!r}")
        registry = Registry.build(workflows, activities)
        workers = activity_workers if activity_workers is not None else default_activity_workers()
        checked_workers = count(workers, "activity_workers", minimum=1, maximum=1024)
        checked_restarts = count(max_restarts, "max_restarts", minimum=0)
        checked_seconds = to_seconds(max_seconds, "max_seconds", allow_zero=False)
        checked_resident = count(max_resident, "max_resident", minimum=1)
        checked_idle = (
            None if evict_idle_after is None else to_seconds(evict_idle_after, "evict_idle_after", allow_zero=False)
        )
        checked_pool = count(warm_pool, "warm_pool", minimum=0, maximum=1024)
        if not all(callable(getattr(clock, name, None)) for name in ("time", "now", "monotonic", "wait_until")):
            raise InvalidArgumentError(f"clock must be an aion.clock.Clock, got {clock!r}")
        queues = check_queues(task_queues, checked_workers)
        registry.task_queues = frozenset(queues)
        _warn_of_undeclared_queues(registry, queues)
        cancel_grace = to_seconds(activity_cancel_grace, "activity_cancel_grace")
        if map_size is not None and (isinstance(map_size, bool) or not isinstance(map_size, int) or map_size < 1 << 20):
            raise InvalidArgumentError(f"map_size must be an int of at least 1 MiB (bytes), got {map_size!r}")
        hold = to_seconds(commit_hold, "commit_hold")
        if hold > MAX_COMMIT_HOLD:
            raise InvalidArgumentError(f"commit_hold is at most {MAX_COMMIT_HOLD:g} seconds, got {commit_hold!r}")
        return cls(
            data_dir=checked_dir,
            payload_codec=payload_codec,
            telemetry=telemetry,
            search_attributes=schema,
            on_code_mismatch=on_code_mismatch,
            registry=registry,
            activity_workers=checked_workers,
            max_restarts=checked_restarts,
            max_seconds=checked_seconds,
            max_resident=checked_resident,
            evict_idle_after=checked_idle,
            warm_pool=checked_pool,
            clock=clock,
            task_queues=queues,
            cancel_grace=cancel_grace,
            map_size=map_size,
            engine_cpu=check_engine_cpu(engine_cpu),
            commit_hold=hold,
        )


def _warn_of_undeclared_queues(registry: Registry, queues: Mapping[str, QueueConfig]) -> None:
    """Log a warning for each registered activity whose default task queue the engine does not declare: its calls
    that name no other queue fail their run. Not an error: a workflow may always name a declared queue instead."""
    declared = ", ".join(sorted(queues))
    for definition in sorted(registry.activities.values(), key=lambda definition: definition.name):
        if definition.task_queue not in queues:
            log.warning(
                "activity %r sends its calls to task queue %r, which this engine does not declare (declared: %s): "
                "a call that names no other queue fails its run; declare the queue (Engine(task_queues=...), "
                "aion serve --task-queue)",
                definition.name,
                definition.task_queue,
                declared,
                extra={"activity_type": definition.name, "task_queue": definition.task_queue},
            )
