"""Task queues: what ``Engine(task_queues=...)`` declares, and how each queue's backlog is let through.

A queue is served by one executor (``LocalQueue``: a supervised pool of forked worker processes, the
``"default"`` queue's kind; ``RayQueue``: Ray tasks on a Ray cluster). Whatever the executor, the core applies the
queue's limits here, in its own thread: ``max_concurrent`` attempts at once, ``rate_limit`` attempts started per
second (a token bucket read on the engine's clock, so a ``ManualClock`` drives it), and the backlog is taken
highest ``priority`` first (FIFO among equals). The executor only runs what it is handed (``Executor``).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aion.errors import InvalidArgumentError

#: The queue an activity goes to unless its definition or its call names another.
DEFAULT_QUEUE = "default"


def _check_limits(max_concurrent: int | None, rate_limit: float | None) -> None:
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1
    ):
        raise InvalidArgumentError(f"max_concurrent must be an int of at least 1, got {max_concurrent!r}")
    if rate_limit is not None and (
        isinstance(rate_limit, bool)
        or not isinstance(rate_limit, int | float)
        or not math.isfinite(rate_limit)
        or rate_limit <= 0
    ):
        raise InvalidArgumentError(f"rate_limit must be a positive number of attempts per second, got {rate_limit!r}")


@dataclass(frozen=True)
class LocalQueue:
    """A queue served by ``workers`` supervised worker processes forked by the engine (today's pool).

    ``workers`` defaults to the engine's ``activity_workers`` (one per CPU, at least 8). ``max_concurrent`` (attempts
    at once, at most ``workers`` anyway) and ``rate_limit`` (attempts started per second) limit it further.

    ``use_engine_cpu``: whether the workers may also run on the engine's own CPU (``Engine(engine_cpu=...)``). By
    default they run on the other CPUs, beside the workflow processes, so that activities taking CPU time cannot
    slow the engine's threads (and every run with them); ``True`` lets a queue of CPU-bound activities use every
    CPU of a small machine, at that cost while they run. With no CPU of its own (``engine_cpu=None``, one CPU),
    both mean every CPU.
    """

    workers: int | None = None
    max_concurrent: int | None = None
    rate_limit: float | None = None
    use_engine_cpu: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise InvalidArgumentError(f"LocalQueue workers must be an int of at least 1, got {self.workers!r}")
        _check_limits(self.max_concurrent, self.rate_limit)
        if not isinstance(self.use_engine_cpu, bool):
            raise InvalidArgumentError(f"LocalQueue use_engine_cpu must be True or False, got {self.use_engine_cpu!r}")


@dataclass(frozen=True)
class RayQueue:
    """A queue whose attempts run as Ray tasks (needs ``aion[ray]``).

    ``address``: ``None`` (start a local Ray instance, or use the one this process is already connected to),
    ``"auto"`` (the cluster running on this machine) or ``"ray://host:port"`` / ``"host:port"``. ``num_cpus``,
    ``num_gpus``, ``resources`` and ``runtime_env`` are each attempt's Ray task options (a node offering a custom
    resource is where ``resources={"name": amount}`` routes). ``max_concurrent`` and ``rate_limit`` as for
    :class:`LocalQueue`.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)
    runtime_env: Mapping[str, Any] | None = None
    max_concurrent: int | None = None
    rate_limit: float | None = None

    def __post_init__(self) -> None:
        if self.address is not None and (not isinstance(self.address, str) or not self.address):
            raise InvalidArgumentError(f"RayQueue address must be None, 'auto' or an address, got {self.address!r}")
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidArgumentError(f"RayQueue {name} must be a number >= 0, got {value!r}")
        if not isinstance(self.resources, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for k, v in self.resources.items()
        ):
            raise InvalidArgumentError(f"RayQueue resources must map names to amounts >= 0, got {self.resources!r}")
        if self.runtime_env is not None and not isinstance(self.runtime_env, Mapping):
            raise InvalidArgumentError(f"RayQueue runtime_env must be a mapping, got {self.runtime_env!r}")
        _check_limits(self.max_concurrent, self.rate_limit)


QueueConfig = LocalQueue | RayQueue


def check_queue_name(name: object) -> str:
    """A task queue's name: a non-empty string of at most 200 characters without ``/``."""
    if not isinstance(name, str) or not name or len(name) > 200 or "/" in name:
        raise InvalidArgumentError(
            f"a task queue name must be a non-empty string of at most 200 characters without '/', got {name!r}"
        )
    return name


def check_queues(queues: Mapping[str, Any] | None, default_workers: int) -> dict[str, QueueConfig]:
    """The engine's queues: ``queues`` validated, with ``"default"`` (a ``LocalQueue``) added when absent, and each
    local queue's worker count filled in."""
    declared: dict[str, QueueConfig] = {}
    for name, config in dict(queues or {}).items():
        check_queue_name(name)
        if isinstance(config, LocalQueue):
            workers = config.workers if config.workers is not None else default_workers
            declared[name] = dataclasses.replace(config, workers=workers)
        elif isinstance(config, RayQueue):
            declared[name] = config
        else:
            raise InvalidArgumentError(f"task queue {name!r} must be a LocalQueue or a RayQueue, got {config!r}")
    declared.setdefault(DEFAULT_QUEUE, LocalQueue(default_workers))
    return declared


class Executor(Protocol):
    """What runs a queue's attempts. Its methods are called in the core's thread and must not block; outcomes,
    heartbeats and losses come back to the core as messages."""

    #: Whether an attempt may only be handed over once its ``ActivityStarted`` is durable (an executor whose
    #: attempts outlive the engine's process); else it is handed over as it is recorded.
    record_first: bool

    def capacity(self) -> int:
        """How many more attempts it can take now."""

    def start(self, task: Any) -> str:
        """Run ``task`` (an ``ActivityTask``); returns the name of what runs it (a worker id)."""

    def cancel(self, task_id: int) -> None:
        """Tell the running attempt it is cancelled (it sees it at its next heartbeat)."""

    def kill(self, task_id: int) -> None:
        """Stop the attempt now, for real."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; times are the engine clock's seconds."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            return True
        return False

    def next_at(self, now: float) -> float:
        """When the next token will be there."""
        self._refill(now)
        return now + max(0.0, 1.0 - self._tokens) / self.rate


class TaskQueue:
    """One queue's backlog, limits and attempts in flight; the executor serving it."""

    def __init__(self, name: str, config: QueueConfig, executor: Executor, now: float) -> None:
        self.name = name
        self.config = config
        self.executor = executor
        self.max_concurrent = config.max_concurrent
        self.bucket = None if config.rate_limit is None else TokenBucket(config.rate_limit, 1.0, now)
        self._backlog: list[tuple[int, int, Any]] = []
        self._order = itertools.count()
        self._withdrawn: set[int] = set()
        #: Task ids taken off the backlog and not ended yet.
        self.in_flight: set[int] = set()

    def submit(self, task: Any, priority: int) -> None:
        """Queue ``task`` (an ``ActivityTask``); higher ``priority`` is taken first, FIFO among equals."""
        heapq.heappush(self._backlog, (-priority, next(self._order), task))

    def withdraw(self, task_id: int) -> None:
        """Drop a task from the backlog (it is skipped when its turn comes)."""
        self._withdrawn.add(task_id)

    def ended(self, task_id: int) -> None:
        """The attempt ``task_id`` is over: it no longer counts against ``max_concurrent``."""
        self.in_flight.discard(task_id)

    def ready(self, now: float) -> Iterator[Any]:
        """Take tasks off the backlog while the limits and the executor allow; each is in flight as yielded."""
        while self._backlog:
            _, _, task = self._backlog[0]
            if task.task_id in self._withdrawn:
                heapq.heappop(self._backlog)
                self._withdrawn.discard(task.task_id)
                continue
            if self.max_concurrent is not None and len(self.in_flight) >= self.max_concurrent:
                return
            if self.executor.capacity() <= 0:
                return
            if self.bucket is not None and not self.bucket.take(now):
                return
            heapq.heappop(self._backlog)
            self.in_flight.add(task.task_id)
            yield task

    def throttled_until(self, now: float) -> float | None:
        """When the rate limit lets the next task of a waiting backlog through, if that is what holds it."""
        if self.bucket is None or not self.backlog():
            return None
        if self.max_concurrent is not None and len(self.in_flight) >= self.max_concurrent:
            return None
        if self.executor.capacity() <= 0:
            return None
        return self.bucket.next_at(now)

    def backlog(self) -> int:
        """How many tasks wait (withdrawn ones aside)."""
        return len(self._backlog) - len(self._withdrawn)

    def busy(self) -> bool:
        """Whether a task waits or runs."""
        return self.backlog() > 0 or bool(self.in_flight)
