"""The executor of a Ray queue: attempts as Ray tasks, owned by one thread of the engine.

The core calls :meth:`RayExecutor.start`, ``cancel`` and ``kill`` from its own thread; they only queue the
order for the executor's thread, which owns every call into Ray (submitting a task pickles its function and
arguments, which must not stall the sequencer). The core hands an attempt over only once its ``ActivityStarted``
is durable (``record_first``): a Ray task may run on another machine and outlive a SIGKILLed engine's process.

What comes back is told to the core as messages: ``RayAttemptDone`` when a task's object is ready (the attempt's
``result`` frame, or the reason it was lost: its Ray worker or node died, or the engine killed it with
``ray.cancel(force=True)``), and ``RayHeartbeats`` from a long poll of the engine's hub actor
(``_ray_attempt.Hub``), which also carries cancellations to the attempts' next heartbeat. Every task runs with
``max_retries=0``: retries are aion's, recorded with their backoff.

An engine that is SIGKILLed leaves no attempt behind to report: Ray ends the tasks and the hub of a driver that
died, and on restart the attempts whose ``ActivityStarted`` has no outcome count as lost and are retried.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import pykka

from aion.engine._activities import ActivityTask
from aion.engine._messages import RayAttemptDone, RayHeartbeats
from aion.engine._registry import Registry
from aion.engine._task_queues import QueueConfig, RayQueue
from aion.errors import ExecutorUnavailableError

log = logging.getLogger(__name__)

_STOP = ("stop", None)


class RayExecutor:
    """Runs one Ray queue's attempts as Ray tasks (see the module docstring)."""

    record_first = True

    def __init__(self, name: str, config: RayQueue, registry: Registry) -> None:
        self.name = name
        self._config = config
        self._registry = registry
        self._orders: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._refs: dict[int, Any] = {}
        self._thread: threading.Thread | None = None
        self._tell: Callable[[Any], None] = lambda _: None
        self._hub: Any = None
        self._owns_ray = False
        self._closing = False

    @property
    def owns_ray(self) -> bool:
        """Whether this executor started (or connected) this process's Ray, and shuts it down on close."""
        return self._owns_ray

    # -- the engine's side ----------------------------------------------------------------------------------

    def open(self, tell: Callable[[Any], None]) -> None:
        """Connect to Ray (start a local instance for ``address=None`` when this process is not connected yet),
        start the hub and the executor's thread; ``tell`` hands a message to the core."""
        try:
            import ray  # noqa: PLC0415 - an optional extra, needed only by engines with a Ray queue

            from aion.engine import _ray_attempt  # noqa: PLC0415
        except ImportError as error:
            raise ExecutorUnavailableError(
                f"task queue {self.name!r} is a RayQueue, but Ray is not installed: pip install 'aion[ray]'"
            ) from error
        self._tell = tell
        if not ray.is_initialized():
            try:
                ray.init(address=self._config.address, include_dashboard=False, log_to_driver=False)
            except Exception as error:
                raise ExecutorUnavailableError(
                    f"task queue {self.name!r} could not connect to Ray at {self._config.address!r}: {error}"
                ) from error
            self._owns_ray = True
        self._hub = _ray_attempt.Hub.remote()
        self._thread = threading.Thread(target=self._serve, name=f"aion-ray-{self.name}", daemon=True)
        self._thread.start()
        self._orders.put(("drain", None))

    def close(self) -> None:
        """Kill the attempts still running, the hub, and Ray itself if this executor started it."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._orders.put(_STOP)
        thread.join(timeout=30)

    def capacity(self) -> int:
        """Ray queues attempts itself: the queue's ``max_concurrent`` is the bound."""
        return 1 << 30

    def start(self, task: ActivityTask) -> str:
        """Submit ``task`` as a Ray task; returns the name the attempt runs under."""
        self._orders.put(("start", task))
        return f"ray:{self.name}:{task.task_id}"

    def cancel(self, task_id: int) -> None:
        """Tell the attempt at its next heartbeat that it is cancelled."""
        self._orders.put(("cancel", task_id))

    def kill(self, task_id: int) -> None:
        """Kill the attempt's Ray worker (``ray.cancel(force=True)``)."""
        self._orders.put(("kill", task_id))

    # -- the executor's thread ------------------------------------------------------------------------------

    def _serve(self) -> None:
        import ray  # noqa: PLC0415

        while True:
            order, item = self._orders.get()
            try:
                if order == "stop":
                    self._shutdown(ray)
                    return
                if order == "start":
                    self._submit(item)
                elif order == "cancel":
                    self._hub.cancel.remote(item)
                elif order == "kill":
                    ref = self._refs.get(item)
                    if ref is not None:
                        ray.cancel(ref, force=True)
                elif order == "forget":
                    if self._refs.pop(item, None) is not None and not self._closing:
                        self._hub.forget.remote(item)
                elif order == "drain":
                    self._hub.drain.remote().future().add_done_callback(self._drained)
            except Exception:
                log.exception("Ray queue %r failed to carry out %s of %r", self.name, order, item)
                if order == "start":
                    self._tell(RayAttemptDone(self.name, item.task_id, None, "it could not be submitted to Ray"))

    def _submit(self, task: ActivityTask) -> None:
        from aion.engine._ray_attempt import run_on_ray  # noqa: PLC0415

        definition = self._registry.activity(task.activity_type)
        config = self._config
        options: dict[str, Any] = {
            "num_cpus": config.num_cpus,
            "num_gpus": config.num_gpus,
            "name": f"aion:{task.activity_type}",
        }
        if config.resources:
            options["resources"] = dict(config.resources)
        if config.runtime_env is not None:
            options["runtime_env"] = dict(config.runtime_env)
        ref = run_on_ray.options(**options).remote(definition.function, definition.is_async, task.message(), self._hub)
        self._refs[task.task_id] = ref
        ref.future().add_done_callback(lambda future: self._finished(task.task_id, future))

    def _finished(self, task_id: int, future: Future[Any]) -> None:
        """On a Ray thread: the task's object is ready (its result frame, or the error that lost it). Nothing is
        reported of the tasks the engine kills as it stops: after a restart they count as lost, from history."""
        if self._closing:
            return
        self._orders.put(("forget", task_id))
        try:
            reply = future.result()
        except Exception as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            self._tell(RayAttemptDone(self.name, task_id, None, reason[:500]))
            return
        self._tell(RayAttemptDone(self.name, task_id, reply, None))

    def _drained(self, future: Future[Any]) -> None:
        """On a Ray thread: heartbeats arrived at the hub; hand them to the core and poll again."""
        try:
            beats = future.result()
        except Exception as error:
            if not self._closing:
                log.error("the heartbeat hub of Ray queue %r failed: %s", self.name, error)
            return
        if beats:
            self._tell(RayHeartbeats(self.name, beats))
        if not self._closing:
            self._orders.put(("drain", None))

    def _shutdown(self, ray: Any) -> None:
        self._closing = True
        for ref in self._refs.values():
            try:
                ray.cancel(ref, force=True)
            except Exception:
                log.debug("could not cancel a Ray task at shutdown", exc_info=True)
        self._refs.clear()
        try:
            ray.kill(self._hub)
        except Exception:
            log.debug("could not kill the heartbeat hub", exc_info=True)
        if self._owns_ray:
            ray.shutdown()


def ray_executors(queues: Mapping[str, QueueConfig], registry: Registry) -> dict[str, RayExecutor]:
    """An executor (not connected yet) for each Ray queue of ``queues``."""
    return {
        name: RayExecutor(name, config, registry) for name, config in queues.items() if isinstance(config, RayQueue)
    }


def teller(core: pykka.ActorRef[Any]) -> Callable[[Any], None]:
    """Tells ``core`` a message from any thread; silent once the core has stopped."""

    def tell(message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            core.tell(message)

    return tell
