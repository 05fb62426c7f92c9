"""What runs on the Ray cluster: one attempt as a Ray task, and the heartbeat hub actor.

Imported by Ray workers (and by the engine's Ray executor, which needs Ray installed: ``aion[ray]``). The task
runs the same attempt code as a local worker (``_attempt.run_attempt``), so results and failures keep their types
and the payload limit, and ``activity.info()`` / ``activity.heartbeat()`` work. A heartbeat is a call to the
engine's hub actor, which answers whether the attempt was cancelled; the engine drains the hub's heartbeats
with a long poll (``Hub.drain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ray

from aion.engine._attempt import run_attempt


def _run_on_ray(function: Callable[..., Any], is_async: bool, task: dict[str, Any], hub: Any) -> dict[str, Any]:
    """A Ray task: run the attempt ``task`` of ``function``, heartbeating to ``hub``. It first tells the hub that
    it runs (a heartbeat without details): a task may wait for a worker process long after its dispatch (Ray starts
    fresh workers for each driver), and the heartbeat timeout counts from here."""
    task_id = task["task"]
    hub.beat.remote(task_id, None)

    def beat(details: bytes) -> bool:
        return bool(ray.get(hub.beat.remote(task_id, details)))

    return run_attempt(task, function, is_async, beat)


run_on_ray = ray.remote(max_retries=0)(_run_on_ray)


class _Hub:
    """Collects the heartbeats of one engine's attempts and the cancellations the engine asks for."""

    def __init__(self) -> None:
        self._beats: list[tuple[int, bytes | None]] = []
        self._cancelled: set[int] = set()
        self._arrived = asyncio.Event()

    async def beat(self, task_id: int, details: bytes | None) -> bool:
        """An attempt heartbeated (``None``: it started running); returns whether it was cancelled."""
        self._beats.append((task_id, details))
        self._arrived.set()
        return task_id in self._cancelled

    async def cancel(self, task_id: int) -> None:
        """The engine cancelled the attempt ``task_id``: its next heartbeat says so."""
        self._cancelled.add(task_id)

    async def forget(self, task_id: int) -> None:
        """The attempt ``task_id`` is over."""
        self._cancelled.discard(task_id)

    async def drain(self) -> list[tuple[int, bytes | None]]:
        """Wait for heartbeats and return those that arrived since the last drain."""
        await self._arrived.wait()
        self._arrived.clear()
        beats, self._beats = self._beats, []
        return beats


Hub = ray.remote(num_cpus=0, max_restarts=0)(_Hub)
