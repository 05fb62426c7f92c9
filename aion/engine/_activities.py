"""The activity pool's bookkeeping: which worker is idle, which task waits, which worker runs what."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aion._codec import encode_payload
from aion.engine import _protocol as protocol

_task_ids = itertools.count(1)


@dataclass
class ActivityTask:
    """One attempt of one activity, as sent to a worker."""

    workflow_id: str
    run_id: str
    activity_id: int
    activity_type: str
    args: list[Any]
    attempt: int
    heartbeat_details: Any = None
    task_id: int = field(default_factory=lambda: next(_task_ids))
    #: The attempt span's trace context (``traceparent``), when the engine traces.
    trace: dict[str, str] | None = None

    def message(self) -> dict[str, Any]:
        """The ``task`` frame for a worker."""
        message = {
            "t": protocol.TASK,
            "task": self.task_id,
            "args": encode_payload(self.args, limit=None),
            "heartbeat": encode_payload(self.heartbeat_details, limit=None),
            "info": {
                "workflow_id": self.workflow_id,
                "run_id": self.run_id,
                "activity_id": self.activity_id,
                "activity_type": self.activity_type,
                "attempt": self.attempt,
            },
        }
        if self.trace is not None:
            message["trace"] = self.trace
        return message

    def __str__(self) -> str:
        return f"activity {self.activity_id} ({self.activity_type}) of {self.workflow_id} attempt {self.attempt}"


class ActivityPool:
    """Matches queued tasks with idle workers. Workers come and go as the supervisor restarts them."""

    def __init__(self) -> None:
        self._idle: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._channels: dict[str, Any] = {}
        self._busy: dict[str, ActivityTask] = {}
        self._queue: collections.deque[ActivityTask] = collections.deque()

    def worker_up(self, worker_id: str, channel: Any) -> None:
        """A worker (re)started and is idle."""
        self._channels[worker_id] = channel
        self._idle[worker_id] = channel

    def worker_down(self, worker_id: str) -> ActivityTask | None:
        """A worker exited; returns the task it was running, if any (that attempt is lost)."""
        self._idle.pop(worker_id, None)
        self._channels.pop(worker_id, None)
        return self._busy.pop(worker_id, None)

    def submit(self, task: ActivityTask) -> None:
        """Queue a task for the next idle worker."""
        self._queue.append(task)

    def assignments(self) -> Iterator[tuple[str, Any, ActivityTask]]:
        """Pair queued tasks with idle workers: ``(worker_id, channel, task)``, marked busy as yielded."""
        while self._queue and self._idle:
            worker_id, channel = self._idle.popitem(last=False)
            task = self._queue.popleft()
            self._busy[worker_id] = task
            yield worker_id, channel, task

    def withdraw(self, task_id: int) -> None:
        """Remove a queued task that no worker has taken yet."""
        self._queue = collections.deque(task for task in self._queue if task.task_id != task_id)

    def channel_of(self, worker_id: str) -> Any:
        """The channel of a live worker, or ``None``."""
        return self._channels.get(worker_id)

    def task_of(self, worker_id: str) -> ActivityTask | None:
        """The task a worker is running, if any."""
        return self._busy.get(worker_id)

    def finished(self, worker_id: str) -> ActivityTask | None:
        """The worker finished its task and is idle again; returns that task."""
        task = self._busy.pop(worker_id, None)
        channel = self._channels.get(worker_id)
        if channel is not None:
            self._idle[worker_id] = channel
        return task

    def busy(self) -> bool:
        """Whether a task is queued or running."""
        return bool(self._queue or self._busy)

    def running(self) -> dict[str, ActivityTask]:
        """The task each busy worker runs."""
        return dict(self._busy)
