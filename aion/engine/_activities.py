"""An activity attempt as it is sent (``ActivityTask``), and the local queues' executor: which worker is idle, which
worker runs what."""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from aion._codec import encode_payload
from aion.engine import _protocol as protocol
from supervisors import ChannelClosedError

log = logging.getLogger(__name__)

_task_ids = itertools.count(1)


class WorkerKiller(Protocol):
    """Kills an activity worker process (its supervisor replaces it)."""

    def kill_worker(self, worker_id: str) -> None:
        """SIGKILL the worker ``worker_id``."""


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


class LocalPool:
    """The executor of a local queue: matches attempts with its idle worker processes. Workers come and go as
    their supervisor restarts them; a worker's exit loses the attempt it ran."""

    #: A local worker dies with the engine, so an attempt is handed over as its ``ActivityStarted`` is recorded.
    record_first = False

    def __init__(self, workers: WorkerKiller) -> None:
        self._killer = workers
        self._idle: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._channels: dict[str, Any] = {}
        self._busy: dict[str, ActivityTask] = {}
        self._worker_of: dict[int, str] = {}

    def worker_up(self, worker_id: str, channel: Any) -> None:
        """A worker (re)started and is idle."""
        self._channels[worker_id] = channel
        self._idle[worker_id] = channel

    def worker_down(self, worker_id: str) -> ActivityTask | None:
        """A worker exited; returns the task it was running, if any (that attempt is lost)."""
        self._idle.pop(worker_id, None)
        self._channels.pop(worker_id, None)
        task = self._busy.pop(worker_id, None)
        if task is not None:
            self._worker_of.pop(task.task_id, None)
        return task

    def capacity(self) -> int:
        """How many workers are idle."""
        return len(self._idle)

    def start(self, task: ActivityTask) -> str:
        """Send ``task`` to the next idle worker; returns the worker's id."""
        worker_id, channel = self._idle.popitem(last=False)
        self._busy[worker_id] = task
        self._worker_of[task.task_id] = worker_id
        # A worker that just died drops the task here; its WorkerDown reports the attempt lost.
        with contextlib.suppress(ChannelClosedError):
            channel.send(task.message())
        return worker_id

    def cancel(self, task_id: int) -> None:
        """Tell the worker running ``task_id`` that it is cancelled."""
        worker_id = self._worker_of.get(task_id)
        channel = None if worker_id is None else self._channels.get(worker_id)
        if channel is None:
            return
        try:
            channel.send({"t": protocol.CANCEL, "task": task_id})
        except ChannelClosedError:
            log.info("worker died before it could be told to cancel task %s", task_id)

    def kill(self, task_id: int) -> None:
        """Kill the worker running ``task_id``: it stays busy with the abandoned task until its exit is seen; then
        it is replaced."""
        worker_id = self._worker_of.get(task_id)
        if worker_id is not None:
            self._killer.kill_worker(worker_id)

    def task_of(self, worker_id: str) -> ActivityTask | None:
        """The task a worker is running, if any."""
        return self._busy.get(worker_id)

    def finished(self, worker_id: str) -> ActivityTask | None:
        """The worker finished its task and is idle again; returns that task."""
        task = self._busy.pop(worker_id, None)
        if task is not None:
            self._worker_of.pop(task.task_id, None)
        channel = self._channels.get(worker_id)
        if channel is not None:
            self._idle[worker_id] = channel
        return task

    def running(self) -> dict[str, ActivityTask]:
        """The task each busy worker runs."""
        return dict(self._busy)
